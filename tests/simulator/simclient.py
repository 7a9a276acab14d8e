"""A test client of a running simulator (shared by the simulator's tests)."""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from ingest.simulator import ManualClock, RunningSimulator

AUTH = {"Authorization": "Basic " + base64.b64encode(b"demo:demo-token").decode()}
STREAM = {"username": "demo@example.com", "client_id": "stream-1", "access_token": "demo-access-1"}
BUILD_SECONDS = 10.0


class Answer:
    """A response read whole: status, headers, body text."""

    def __init__(self, status: int, headers: Any, text: str) -> None:
        self.status = status
        self.headers = headers
        self.text = text

    def json(self) -> Any:
        return json.loads(self.text)


class Vendor:
    """A test client of one running simulator."""

    def __init__(
        self, sim: RunningSimulator, session: aiohttp.ClientSession, clock: ManualClock
    ) -> None:
        self.sim = sim
        self.session = session
        self.clock = clock

    @property
    def url(self) -> str:
        return self.sim.url

    async def get(
        self, path: str, params: Any = None, headers: dict[str, str] | None = AUTH
    ) -> Answer:
        url = path if path.startswith("http") else self.url + path
        async with self.session.get(url, params=params, headers=headers) as response:
            return Answer(response.status, response.headers, await response.text())

    async def post(self, path: str, body: Any = None) -> Answer:
        async with self.session.post(self.url + path, json=body) as response:
            return Answer(response.status, response.headers, await response.text())

    async def export(self, params: dict[str, str] | None = None, /, **more: str) -> Any:
        """One call of the data endpoint with `params` and `more` of them; its JSON answer."""
        answer = await self.get("/api/v1/data/", (params or {}) | more)
        assert answer.status == 200, answer.text
        return answer.json()

    async def rows(self, params: dict[str, str] | None = None, /, **more: str) -> list[Any]:
        """Start an export, let its build time pass, and read its rows."""
        params = (params or {}) | more
        assert (await self.export(params))["state"] == "started"
        self.clock.advance(self.sim.state.config.build_seconds)
        finished = await self.export(params)
        assert finished["state"] == "finished", finished
        rows: list[Any] = finished["data"]
        return rows

    async def stats(self) -> Any:
        return (await self.get("/_sim/stats", headers=None)).json()

    async def token(self, stream: dict[str, str] = STREAM) -> str:
        answer = await self.post("/api-token-authstream/", stream)
        assert answer.status == 200, answer.text
        token: str = answer.json()["token"]
        return token


Start = Callable[..., Awaitable[Vendor]]


THREE_DAYS_ANGUS = {
    "metrics": "passing_by,interested",
    "from_date": "2024-03-04T00:00:00+00:00",
    "to_date": "2024-03-07T00:00:00+00:00",
    "time": "by_hour",
}
