"""When to poll an export: from the build times seen, by data type, resolution and size.

Every poll is a call taken from the account's 50 a minute. An export costs at least two
calls (start, then the finished answer); polling one that is not ready costs a third. So
the first poll is put just after the build is expected to end, from the builds seen for
the account, scaled by the export's size (its expected rows). The builds seen come from
the database when the process starts (`seed`: other processes' and earlier runs') and
each new one is handed to `on_observe` to be kept there.

Until a build of any kind has been seen, one export polls on a growing schedule (the
probe) while the others wait for what it learns. Its first poll comes later for a bigger
export: a build's time grows with its rows.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace

import anyio
import structlog

log = structlog.get_logger(__name__)

MARGIN = 1.15  # the first poll comes this much after the expected end of the build ...
SLACK_S = 0.5  # ... plus this
# A build that ended between two polls is taken to have ended this far between them: with
# the margin, the next first poll covers the whole of a doubling probe's interval.
BETWEEN = 0.75
SETTLE = 0.98  # a build that was ready at the first poll: expect a little less next time
KEPT = 16  # builds remembered per kind of export
# With nothing seen, an export of up to this many rows first polls after the initial wait
# (INGEST_VIDICENTER_POLL_INITIAL_S); a bigger one after that times the square root of
# its size over this (as `predict` scales up from one size seen).
COLD_ROWS = 10_000
SAVE_TIMEOUT_S = 5.0  # keeping a build seen never holds up its export longer than this


@dataclass(frozen=True)
class Seen:
    kind: str  # data type and resolution (`viewers:1h`)
    rows: int  # the export's expected rows
    seconds: float  # its build time, as well as the polls tell it


class BuildTimes:
    """The build times seen for one account, to predict the next ones.

    `seed`: builds seen before (oldest first), by this process or others. `on_observe`:
    awaited with each build this process sees, to keep it (its failure is logged, not
    raised: it costs only a probe later).
    """

    def __init__(
        self,
        seed: Iterable[Seen] = (),
        on_observe: Callable[[Seen], Awaitable[None]] | None = None,
        *,
        save_timeout_s: float = SAVE_TIMEOUT_S,
    ) -> None:
        self._seen: dict[str, deque[Seen]] = {}
        self._recent: deque[Seen] = deque(maxlen=4 * KEPT)  # every kind's, in order
        for seen in seed:
            self._keep(seen)
        self._on_observe = on_observe
        self._save_timeout_s = save_timeout_s
        self._probing = 0
        self._learned: anyio.Event | None = None

    def predict(self, kind: str, rows: int) -> float | None:
        """Expected build seconds of an export of `kind` and `rows`; None before any.

        From the newest build of about that size (of its own kind, else of any kind), in
        proportion to the size. Further off in size: from the nearest build, by how build
        times grow with size on a line through builds of several sizes (its kind's, else
        the other kinds': they share the shape, each at its own level); with one size
        seen, by a root of the ratio (`_one_size_scale`).
        """
        own = list(self._seen.get(kind, ()))
        seen = own or list(self._recent)
        if not seen:
            return None
        rows = max(1, rows)
        close = [s for s in seen if 2 / 3 <= rows / s.rows <= 1.5]
        if close:
            newest = close[-1]
            return newest.seconds * rows / newest.rows
        # the nearest in size, the newest of equals
        nearest = min(reversed(seen), key=lambda s: abs(math.log(rows / s.rows)))
        spans = [own] if _sizes(own) >= 2 else [list(q) for q in self._seen.values()]
        ratios = [r for r in (_ratio(q, rows, nearest.rows) for q in spans) if r is not None]
        if ratios:
            return nearest.seconds * statistics.median(ratios)
        return nearest.seconds * _one_size_scale(rows, nearest.rows)

    async def observe(
        self, kind: str, rows: int, *, ready_after: float, not_ready_at: float
    ) -> Seen:
        """A build ended between `not_ready_at` (0: the first poll found it ready) and
        `ready_after` seconds from its start; returns what is kept of it."""
        if not_ready_at > 0:
            seconds = not_ready_at + BETWEEN * (ready_after - not_ready_at)
        else:
            predicted = self.predict(kind, rows)
            seconds = ready_after if predicted is None else min(ready_after, predicted * SETTLE)
        seen = Seen(kind, max(1, rows), seconds)
        self._keep(seen)
        self._wake()
        if self._on_observe is not None:
            try:
                with anyio.fail_after(self._save_timeout_s):
                    await self._on_observe(seen)
            except Exception as error:  # kept in this process all the same
                log.warning("build_times.not_kept", error=f"{type(error).__name__}: {error}")
        return seen

    def _keep(self, seen: Seen) -> None:
        seen = replace(seen, rows=max(1, seen.rows))
        self._seen.setdefault(seen.kind, deque(maxlen=KEPT)).append(seen)
        self._recent.append(seen)

    def _wake(self) -> None:
        if self._learned is not None:
            self._learned.set()
            self._learned = None

    @property
    def probing(self) -> bool:
        return self._probing > 0

    def start_probe(self) -> None:
        self._probing += 1

    def end_probe(self) -> None:
        """The probe is over; if it saw no build (it failed), a waiting export takes over."""
        self._probing -= 1
        self._wake()

    async def wait_learned(self, timeout_s: float) -> None:
        """Wait until a build is seen (by the probe), at most `timeout_s`."""
        if self._learned is None:
            self._learned = anyio.Event()
        learned = self._learned
        with anyio.move_on_after(timeout_s):
            await learned.wait()


def _one_size_scale(rows: int, seen_rows: int) -> float:
    """How much longer a build of `rows` is taken to be than one of `seen_rows`, with no
    other size seen: the square root of the ratio upwards, its fourth root downwards (a
    build predicted too short costs polls, one predicted too long only time). Exports of up
    to COLD_ROWS rows count as that many: a small build's time is mostly its fixed part."""
    ratio = max(rows, COLD_ROWS) / max(seen_rows, COLD_ROWS)
    return math.sqrt(ratio) if ratio >= 1 else ratio**0.25


def _sizes(seen: list[Seen]) -> int:
    return len({s.rows for s in seen})


def _ratio(seen: list[Seen], rows: int, other: int) -> float | None:
    """How much longer a build of `rows` takes than one of `other` rows, on the line through
    `seen`; None unless `seen` spans two sizes."""
    if _sizes(seen) < 2:
        return None
    line = _fit(seen)
    return line(rows) / line(other) if line(other) > 0 else None


def _fit(seen: list[Seen]) -> Callable[[int], float]:
    """The least-squares line seconds = a + b * rows, with a, b >= 0 (two sizes at least)."""
    n = len(seen)
    mean_r = sum(s.rows for s in seen) / n
    mean_t = sum(s.seconds for s in seen) / n
    var = sum((s.rows - mean_r) ** 2 for s in seen)
    b = max(0.0, sum((s.rows - mean_r) * (s.seconds - mean_t) for s in seen) / var)
    a = max(0.0, mean_t - b * mean_r)
    return lambda rows: a + b * rows


def first_poll_after(predicted: float) -> float:
    """Seconds from the start of a build to its first poll."""
    return predicted * MARGIN + SLACK_S


def cold_first_wait(rows: int, initial_s: float) -> float:
    """The probe's first wait, before any build is seen: `initial_s`, longer for an export
    of more than COLD_ROWS rows."""
    return initial_s * math.sqrt(max(1.0, rows / COLD_ROWS))
