"""The worker's health as `/readyz` reports it: paused vendors, a stalled worker, and the
database as the worker's loops last found it (one log line when lost, one when back)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import structlog

log = structlog.get_logger(__name__)


class DatabaseWatch:
    """Whether the database answered the worker's last statement; logs `db.lost` once per
    outage and `db.back` once, with its length, whichever loop sees it first."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.lost_at: float | None = None  # when the outage began; None while it answers
        self.last_error: str | None = None

    def lost(self, error: BaseException) -> None:
        """A statement failed because the database went away."""
        self.last_error = f"{type(error).__name__}: {error}"
        if self.lost_at is None:
            self.lost_at = self._clock()
            log.warning("db.lost", error=self.last_error)
        else:
            log.debug("db.unavailable", error=self.last_error)

    def answered(self) -> None:
        """A statement went through: the outage, if there was one, is over."""
        if self.lost_at is not None:
            log.info("db.back", outage_s=round(self._clock() - self.lost_at, 1))
            self.lost_at = None

    @property
    def down(self) -> bool:
        return self.lost_at is not None


class Health:
    """What `/readyz` says beyond "the database answers and is migrated".

    - A vendor (or, later, an account) can be paused, with its reason: `pause`/`resume`.
    - The worker is stalled when jobs are due, none of its batches is running, and no job
      has moved (done, retried or dead) for `stall_s` seconds (0: never reported).
    """

    def __init__(
        self,
        *,
        stall_s: float,
        vendors: Sequence[str] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stall_s = stall_s
        self.vendors = tuple(vendors)  # whose due jobs this worker should be working
        self.db = DatabaseWatch(clock)
        self._clock = clock
        self._paused: dict[str, str] = {}
        self._last_progress = clock()
        self._batches = 0

    # --- pauses ---------------------------------------------------------------------------

    def pause(self, who: str, reason: str) -> None:
        """Work for `who` (a vendor, or vendor:account) stops until `resume(who)`."""
        self._paused[who] = reason

    def resume(self, who: str) -> None:
        self._paused.pop(who, None)

    @property
    def paused(self) -> dict[str, str]:
        """Who is paused, and why."""
        return dict(self._paused)

    def working_vendors(self) -> list[str]:
        """The vendors whose due jobs count for a stall: those served and not paused (nor
        one of their accounts: its due jobs wait for the pause's end)."""
        return [
            v
            for v in self.vendors
            if not any(who == v or who.startswith(f"{v}:") for who in self._paused)
        ]

    # --- progress -------------------------------------------------------------------------

    def progressed(self) -> None:
        """A job moved: done, tried again later, or dead."""
        self._last_progress = self._clock()

    @contextmanager
    def working(self) -> Iterator[None]:
        """A batch is being worked for the block's life."""
        self._batches += 1
        try:
            yield
        finally:
            self._batches -= 1

    def stalled(self, due: int) -> str | None:
        """Why the worker is stalled, or None: `due` is the number of jobs due now."""
        idle_s = self._clock() - self._last_progress
        if not self.stall_s or not due or self._batches or idle_s <= self.stall_s:
            return None
        return (
            f"stalled: {due} job(s) due and none moved for {idle_s:.0f} s "
            f"(INGEST_STALL_S={self.stall_s:g})"
        )

    def reasons(self, due: int) -> list[str]:
        """Everything that makes the worker not ready, besides the database itself."""
        out = [f"{who} paused: {reason}" for who, reason in sorted(self._paused.items())]
        if stalled := self.stalled(due):
            out.append(stalled)
        return out
