"""Injected faults: server errors, slow answers, malformed bodies and dropped connections.

The n-th vendor call's faults are drawn from (seed, kind, n), so a run with the same
seed and the same sequence of calls meets the same faults.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from aiohttp import web

from ingest.simulator.config import SimConfig
from ingest.simulator.datagen import key_int, key_unit

ERROR_STATUSES = (500, 502, 503)
PROXY_PAGE = (
    "<html><head><title>{status} {reason}</title></head>"
    "<body><h1>{status} {reason}</h1></body></html>"
)


@dataclass(frozen=True)
class FaultDraw:
    """The faults one call meets."""

    error_status: int | None = None  # answered with this status instead of being handled
    slow: bool = False  # answered after slow_seconds
    malformed: bool = False  # a finished answer's body is cut short
    drop: bool = False  # handled, then the connection is closed before the answer


class FaultPlan:
    """Draws each call's faults from a counter and the seed."""

    def __init__(self) -> None:
        self._calls = 0

    def draw(self, config: SimConfig) -> FaultDraw:
        """The next call's faults; dropping and erroring exclude each other."""
        n = self._calls
        self._calls += 1
        seed = config.seed
        drop = key_unit(seed, "drop", n) < config.drop_share
        error = not drop and key_unit(seed, "error", n) < config.error_share
        status = ERROR_STATUSES[key_int(seed, "status", n) % len(ERROR_STATUSES)]
        return FaultDraw(
            error_status=status if error else None,
            slow=key_unit(seed, "slow", n) < config.slow_share,
            malformed=key_unit(seed, "malformed", n) < config.malformed_share,
            drop=drop,
        )

    def reset(self) -> None:
        """Start the sequence again."""
        self._calls = 0


class FinishedAnswer(web.Response):
    """An answer carrying data (finished export, entities page): what a malformed fault cuts."""


def finished_json(payload: object) -> FinishedAnswer:
    """A FinishedAnswer with a JSON body."""
    return FinishedAnswer(text=json.dumps(payload), content_type="application/json")


def error_response(status: int) -> web.Response:
    """A server error as the vendor's front would send it: JSON from the app, HTML from a proxy."""
    if status == 500:
        return web.json_response({"message": "Internal server error", "error": 500}, status=500)
    reason = {502: "Bad Gateway", 503: "Service Temporarily Unavailable"}[status]
    page = PROXY_PAGE.format(status=status, reason=reason)
    return web.Response(status=status, text=page, content_type="text/html")


def malform(body: bytes) -> bytes:
    """A body cut in the middle: a proper prefix of a JSON object is never valid JSON."""
    return body[: len(body) // 2] if len(body) > 2 else b'{"state": "fini'


def drop_connection(request: web.BaseRequest) -> None:
    """Close the client's connection at once: its client sees a disconnection, no answer."""
    if request.transport is not None:
        request.transport.abort()
