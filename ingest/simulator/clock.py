"""Simulated time: a scaled real clock, or an injected one that tests move by hand."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime


class ManualClock:
    """A clock that only moves when told to; pass it as `SimConfig(clock=...)` in tests."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by `seconds`."""
        self.now += seconds


class SimClock:
    """Simulated seconds since the simulator started, and the simulated wall clock.

    Without an injected clock, simulated time runs `time_scale` times faster than
    `time.monotonic()`; with one, it is the injected clock's own time (no scaling).
    `advance()` adds to either.
    """

    def __init__(self, source: Callable[[], float] | None, time_scale: float) -> None:
        self._wall0 = time.time()
        self._source = source
        self._scale = 1.0 if source is not None else time_scale
        self._anchor_sim = 0.0
        self._anchor_src = self._read()

    def _read(self) -> float:
        return self._source() if self._source is not None else time.monotonic()

    def now(self) -> float:
        """Simulated seconds since start."""
        return self._anchor_sim + (self._read() - self._anchor_src) * self._scale

    @property
    def scale(self) -> float:
        """Simulated seconds per real second (1 with an injected clock)."""
        return self._scale

    def set_time_scale(self, time_scale: float) -> None:
        """Change the speed from now on; time already elapsed is kept."""
        if self._source is not None:
            return
        self._anchor_sim = self.now()
        self._anchor_src = self._read()
        self._scale = time_scale

    def advance(self, seconds: float) -> None:
        """Jump simulated time forward."""
        self._anchor_sim += seconds

    def wall(self) -> float:
        """Simulated epoch seconds: the real start time plus simulated elapsed time."""
        return self._wall0 + self.now()

    def wall_datetime(self) -> datetime:
        """Simulated wall clock, in UTC."""
        return datetime.fromtimestamp(self.wall(), UTC)
