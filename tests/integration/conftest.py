"""Shared fixtures of the integration tests: aioresponses that works with aiohttp 3.14."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses
from yarl import URL


class _CompatResponse(aiohttp.ClientResponse):
    """aioresponses 0.7.9 builds responses without the `stream_writer` that aiohttp 3.14
    requires (pnuckowski/aioresponses#289); supply an already-finished one."""

    class _FinishedWriter:
        output_size = 0

    def __init__(self, method: str, url: URL, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", self._FinishedWriter())
        super().__init__(method, url, **kwargs)


@dataclass(frozen=True)
class Sent:
    """One request as the client made it."""

    method: str
    url: str  # exactly as given to the session: query order and escaping untouched
    headers: dict[str, str]


class Mocked(aioresponses):
    """aioresponses that also keeps every request in the order it was made.

    `requests` groups calls by URL with the query sorted; `sent` keeps their order and
    the URL as the client wrote it (the query string is what identifies an export).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sent: list[Sent] = []

    async def _request_mock(
        self,
        orig_self: aiohttp.ClientSession,
        method: str,
        url: URL | str,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        headers = {str(k): str(v) for k, v in dict(kwargs.get("headers") or {}).items()}
        self.sent.append(Sent(method, str(url), headers))
        return await super()._request_mock(orig_self, method, url, *args, **kwargs)


@pytest.fixture
def mocked(monkeypatch: pytest.MonkeyPatch) -> Iterator[Mocked]:
    """Every aiohttp request answered by aioresponses, on aiohttp 3.14 too."""
    if "stream_writer" in inspect.signature(aiohttp.ClientResponse.__init__).parameters:
        monkeypatch.setattr("aioresponses.core.ClientResponse", _CompatResponse)
    mock = Mocked()
    with mock:
        yield mock


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain client session; aioresponses answers its requests."""
    async with aiohttp.ClientSession() as client_session:
        yield client_session
