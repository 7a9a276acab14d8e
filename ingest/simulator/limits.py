"""The published limits (calls per minute, connections per IP) and the /_sim/stats counters."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

WINDOW_S = 60.0


@dataclass
class Violations:
    """Calls refused for breaking a published limit, by limit."""

    exports: int = 0  # a build refused because max_exports were running
    calls: int = 0  # a call over calls_per_minute in the sliding window
    connections: int = 0  # a request over max_connections in flight from one IP


@dataclass
class FaultCounts:
    """Faults injected, by kind."""

    errors: int = 0
    slow: int = 0
    malformed: int = 0
    dropped: int = 0


@dataclass
class Stats:
    """What clients did to the simulator; `/_sim/` calls are not counted."""

    violations: Violations = field(default_factory=Violations)
    faults: FaultCounts = field(default_factory=FaultCounts)
    calls: int = 0  # every vendor call, VidiCenter and Angus, whatever its answer
    vidicenter_calls: int = 0
    angus_calls: int = 0
    exports_started: int = 0  # builds started, rebuilds included
    exports_rebuilt: int = 0  # builds started by force_rebuild
    exports_failed: int = 0  # builds that end failed
    exports_served: int = 0  # finished answers sent
    # builds started, by the rows they hold ("<1k", "1k-10k", ... "1M+") and by days spanned
    exports_by_rows: dict[str, int] = field(default_factory=dict)
    exports_by_days: dict[str, int] = field(default_factory=dict)
    largest_export_rows: int = 0
    requests_too_long: int = 0  # requests answered 414: their request line was too long
    max_concurrent_exports: int = 0
    max_connections_seen: int = 0  # most requests in flight at once from one IP, refused ones too
    vidicenter_unauthorized: int = 0
    bad_requests: int = 0
    angus_tokens_issued: int = 0
    angus_unauthorized: int = 0
    angus_bad_requests: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The counters as JSON-ready data."""
        return asdict(self)


_ROW_SIZES = ((1_000, "<1k"), (10_000, "1k-10k"), (100_000, "10k-100k"), (1_000_000, "100k-1M"))
_DAY_SIZES = ((1, "1"), (7, "2-7"), (31, "8-31"))


def size_label(rows: int) -> str:
    """The size class of an export of `rows` rows."""
    return next((label for limit, label in _ROW_SIZES if rows < limit), "1M+")


def days_label(days: int) -> str:
    """The class of an export that spans `days` days."""
    return next((label for limit, label in _DAY_SIZES if days <= limit), "32+")


def retry_after_header(seconds: float) -> str:
    """Whole seconds, at least 1, as the Retry-After header wants them."""
    return str(max(1, math.ceil(seconds)))


class CallWindow:
    """Calls per user in a sliding window of real time.

    Every call is recorded, refused ones included: a client that keeps calling while
    refused stays refused, as a server counting requests at its door would behave.
    """

    def __init__(self, window_s: float = WINDOW_S) -> None:
        self._window_s = window_s
        self._calls: dict[str, deque[float]] = {}

    def record(self, user: str, now: float, limit: int) -> float | None:
        """Count a call; None if within the limit, else seconds until a call would be allowed."""
        calls = self._calls.setdefault(user, deque())
        while calls and calls[0] <= now - self._window_s:
            calls.popleft()
        calls.append(now)
        if len(calls) <= limit:
            return None
        # allowed again once all but limit - 1 of the recorded calls have left the window
        return calls[len(calls) - limit] + self._window_s - now

    def clear(self) -> None:
        """Forget every call."""
        self._calls.clear()


class ConnectionTracker:
    """Requests in flight per client IP."""

    def __init__(self) -> None:
        self._in_flight: dict[str, int] = {}

    @contextmanager
    def hold(self, ip: str) -> Iterator[int]:
        """Count one request from `ip` while the block runs; yields the count including it."""
        self._in_flight[ip] = self._in_flight.get(ip, 0) + 1
        try:
            yield self._in_flight[ip]
        finally:
            self._in_flight[ip] -= 1
            if not self._in_flight[ip]:
                del self._in_flight[ip]
