"""A vendor on a real port that answers from a script: what the client sends over the wire,
drops and slow answers included, which aioresponses cannot show."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Answer = Callable[[web.Request], Awaitable[web.StreamResponse]]


def reply(payload: Any, status: int = 200) -> Answer:
    async def answer(_request: web.Request) -> web.StreamResponse:
        return web.json_response(payload, status=status)

    return answer


def drop() -> Answer:
    """Take the request, then close the connection without an answer (as a lost reply)."""

    async def answer(request: web.Request) -> web.StreamResponse:
        if request.transport is not None:
            request.transport.abort()
        return web.Response()

    return answer


def slow(seconds: float, then: Answer) -> Answer:
    async def answer(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(seconds)
        return await then(request)

    return answer


def trickle(payload: Any, *, pieces: int, gap_s: float, stall_s: float = 0.0) -> Answer:
    """Send the JSON answer in `pieces`, `gap_s` apart (a slow link), with a pause of
    `stall_s` before the last piece when given (a link that stops)."""

    async def answer(request: web.Request) -> web.StreamResponse:
        body = json.dumps(payload).encode()
        size = -(-len(body) // pieces)
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        for i in range(pieces):
            if i:
                await asyncio.sleep(stall_s if stall_s and i == pieces - 1 else gap_s)
            await resp.write(body[i * size : (i + 1) * size])
        await resp.write_eof()
        return resp

    return answer


def redirect(location: str) -> Answer:
    async def answer(_request: web.Request) -> web.StreamResponse:
        return web.Response(status=302, headers={"Location": location})

    return answer


@dataclass
class ScriptedVendor:
    """Answers the n-th request with the n-th answer (the last one again after the end)."""

    url: str = ""
    script: list[Answer] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)  # every request's query, as it arrived

    @property
    def requests(self) -> int:
        return len(self.queries)

    def forced(self) -> list[int]:
        """Which requests (by order) carried force_rebuild."""
        return [i for i, q in enumerate(self.queries) if "force_rebuild" in q]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        n = len(self.queries)
        self.queries.append(request.query_string)
        return await self.script[min(n, len(self.script) - 1)](request)


@asynccontextmanager
async def scripted_vendor(*script: Answer) -> AsyncIterator[ScriptedVendor]:
    vendor = ScriptedVendor(script=list(script))
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", vendor.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        vendor.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        yield vendor
    finally:
        await runner.cleanup()
