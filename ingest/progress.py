"""A backfill's progress: what it has done and what it waits for, shown on a terminal
(rich) or logged once an interval (`backfill.progress`); and its closing summary."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, TextIO, TypeVar

import anyio
import asyncpg
import structlog
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from ingest.ledger import reports
from ingest.ledger.jobs import Executor
from ingest.ledger.reports import DeadJob, RunState
from ingest.pipeline import Outcome

log = structlog.get_logger(__name__)
T = TypeVar("T")

PROGRESS_EVERY_S = 10.0  # off a terminal: one log line this often
LIVE_EVERY_S = 1.0  # on a terminal: the display's facts are read this often


@dataclass(frozen=True)
class Snapshot:
    """The facts the display and the log line show, at one moment."""

    total: int  # jobs of the run; 0 while the scope is being resolved
    done: int
    dead: int
    running: int
    pending: int
    rows: int  # loaded by this run
    elapsed_s: float
    rows_per_s: float
    eta_s: float | None  # None until a job of this run has finished
    budget_wait_s: float | None  # until the call budget allows the next call; None: not waiting
    budget_account: str | None
    exports_building: int  # exports at the vendor this run waits on between polls
    next_poll_s: float | None
    retrying: int  # failed jobs waiting out their back-off
    next_retry_s: float | None
    held_back: int  # jobs waiting for an export place

    @property
    def finished(self) -> int:
        return self.done + self.dead

    def waits(self) -> list[str]:
        """What the run waits for, in words (each reads after "waiting for"); empty when
        it is busy."""
        out = []
        if self.budget_wait_s is not None:
            out.append(
                f"the call budget of {self.budget_account} "
                f"(next call in {_secs(self.budget_wait_s)})"
            )
        if n := self.exports_building:
            out.append(
                f"{_count(n, 'export')} building at the vendor "
                f"(next poll in {_secs(self.next_poll_s or 0.0)})"
            )
        if n := self.retrying:
            out.append(
                f"the back-off of {_count(n, 'failed job')} "
                f"(next retry in {_secs(self.next_retry_s or 0.0)})"
            )
        if n := self.held_back:
            out.append(f"an export place for {_count(n, 'job')}")
        return out

    def fields(self) -> dict[str, Any]:
        """The log line's fields: counts as plural nouns, seconds as `*_s`."""
        return {
            "jobs": self.total,
            "done": self.done,
            "dead": self.dead,
            "running": self.running,
            "pending": self.pending,
            "rows": self.rows,
            "rows_per_s": round(self.rows_per_s, 1),
            "elapsed_s": round(self.elapsed_s, 1),
            "eta_s": _rounded(self.eta_s),
            "waiting_for": self.waiting_for(),
            "budget_wait_s": _rounded(self.budget_wait_s),
            "exports_building": self.exports_building,
            "next_poll_s": _rounded(self.next_poll_s),
            "retrying": self.retrying,
            "next_retry_s": _rounded(self.next_retry_s),
            "held_back": self.held_back,
        }

    def waiting_for(self) -> list[str]:
        """Short names of the waits: budget, export, retry, export_place."""
        named = (
            ("budget", self.budget_wait_s is not None),
            ("export", self.exports_building > 0),
            ("retry", self.retrying > 0),
            ("export_place", self.held_back > 0),
        )
        return [name for name, on in named if on]


class Progress:
    """What a backfill has done and waits for: fed by the worker's hooks (outcomes, budget
    waits, export polls) and by the ledger's view of the run's jobs."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.started = clock()
        self.ids: list[int] = []
        self.baseline = 0  # jobs of the run already finished when its work began
        self.already_done = 0  # jobs of the run done before it (not forced again)
        self.work_started: float | None = None
        self.rows = 0  # loaded by this run
        self.state: RunState | None = None
        self._state_at = 0.0
        self._budget_until: dict[str, float] = {}
        self._budget_end = 0.0
        self.budget_waited_s = 0.0  # wall time with at least one call waiting for the budget
        self._polls_until: list[float] = []
        self._finished_one: anyio.Event | None = None

    def begin(self, ids: list[int], state: RunState) -> None:
        """The run's jobs are enqueued: from now on they are what the progress counts."""
        self._finished_one = anyio.Event()
        self.ids = ids
        self.baseline = state.counts["done"] + state.counts["dead"]
        self.already_done = state.counts["done"]
        self.work_started = self._clock()
        self.observe(state)

    def elapsed_s(self) -> float:
        return self._clock() - self.started

    def observe(self, state: RunState) -> None:
        """The ledger's latest view of the run's jobs."""
        self.state = state
        self._state_at = self._clock()

    def on_outcome(self, _vendor: str, outcome: Outcome) -> None:
        self.rows += outcome.rows
        if self._finished_one is not None:
            self._finished_one.set()

    async def next_outcome(self) -> None:
        """Wait for a batch of the run to end (at once if one ended since the last call)."""
        assert self._finished_one is not None, "begin() first"
        await self._finished_one.wait()
        self._finished_one = anyio.Event()

    def on_budget_wait(self, account: str, seconds: float) -> None:
        now = self._clock()
        until = now + seconds
        self._budget_until[account] = until
        self.budget_waited_s += max(0.0, until - max(now, self._budget_end))
        self._budget_end = max(self._budget_end, until)

    def on_poll_wait(self, seconds: float) -> None:
        now = self._clock()
        self._polls_until = [t for t in self._polls_until if t > now]
        self._polls_until.append(now + seconds)

    def snapshot(self) -> Snapshot:
        now = self._clock()
        st = self.state
        counts = st.counts if st is not None else {}
        total = sum(counts.values())
        finished = counts.get("done", 0) + counts.get("dead", 0)
        elapsed = now - self.started
        eta = None
        if self.work_started is not None and finished > self.baseline:
            rate = (finished - self.baseline) / max(1e-6, now - self.work_started)
            eta = (total - finished) / rate
        budget = {a: t - now for a, t in self._budget_until.items() if t > now}
        account = max(budget, key=lambda a: budget[a]) if budget else None
        polls = [t - now for t in self._polls_until if t > now]
        since = now - self._state_at
        return Snapshot(
            total=total,
            done=counts.get("done", 0),
            dead=counts.get("dead", 0),
            running=counts.get("running", 0),
            pending=counts.get("pending", 0),
            rows=self.rows,
            elapsed_s=elapsed,
            rows_per_s=self.rows / elapsed if elapsed > 0 else 0.0,
            eta_s=eta,
            budget_wait_s=budget[account] if account is not None else None,
            budget_account=account,
            exports_building=len(polls),
            next_poll_s=min(polls) if polls else None,
            retrying=st.retrying if st is not None else 0,
            next_retry_s=(
                max(0.0, st.next_retry_s - since)
                if st is not None and st.next_retry_s is not None
                else None
            ),
            held_back=st.held_back if st is not None else 0,
        )


# --- showing it ---------------------------------------------------------------------------

_LEDGER_DOWN = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


async def _read_ledger(progress: Progress, pool: Executor) -> None:
    """The ledger's view of the run's jobs; while the database is away, the last one stays."""
    if not progress.ids:
        return
    with suppress(*_LEDGER_DOWN):
        progress.observe(await reports.run_state(pool, progress.ids))


def render(snap: Snapshot, title: str) -> RenderableType:
    """The terminal display: a bar with the counts, and a line of what the run waits for."""
    grid = Table.grid(padding=(0, 1))
    if snap.total:
        bar = ProgressBar(total=snap.total, completed=snap.finished, width=30)
        eta = clock_text(snap.eta_s) if snap.eta_s is not None else "?"
        facts = (
            f"{snap.done} done · {snap.dead} dead · {snap.running} running of {snap.total} jobs"
            f" · {snap.rows:,} rows · {snap.rows_per_s:,.1f} rows/s"
            f" · elapsed {clock_text(snap.elapsed_s)} · ETA {eta}"
        )
    else:
        bar = ProgressBar(total=None, width=30)
        facts = f"resolving the scope · elapsed {clock_text(snap.elapsed_s)}"
    grid.add_row(Text(title, style="bold"), bar, Text(facts))
    waits = snap.waits()
    line = Text("waiting for " + "; ".join(waits), style="yellow") if waits else Text("")
    return Group(grid, line)


class _Shown:
    """Where the progress goes: a live display on a terminal, else a log line per interval."""

    def __init__(self, progress: Progress, title: str, out: TextIO, every_s: float) -> None:
        self.progress = progress
        self.title = title
        self.live: Live | None = None
        if out.isatty():
            self.live = Live(console=Console(file=out), refresh_per_second=4)
        self.every_s = LIVE_EVERY_S if self.live is not None else every_s

    def show(self) -> None:
        snap = self.progress.snapshot()
        if self.live is not None:
            self.live.update(render(snap, self.title))
        else:
            log.info("backfill.progress", **snap.fields())


async def shown_while(
    progress: Progress,
    pool: Executor,
    work: Callable[[], Awaitable[T]],
    *,
    title: str,
    out: TextIO,
    every_s: float = PROGRESS_EVERY_S,
) -> T:
    """Run `work` with its progress shown from the start, and once more at its end.

    An error of `work` leaves as itself, not wrapped in the task group's ExceptionGroup.
    """
    shown = _Shown(progress, title, out, every_s)
    results: list[T] = []
    error: Exception | None = None

    async def refresh() -> None:
        while True:
            await _read_ledger(progress, pool)
            shown.show()
            await anyio.sleep(shown.every_s)

    if shown.live is not None:
        shown.live.start()
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(refresh)
            try:
                results.append(await work())
            except Exception as e:
                error = e
            tg.cancel_scope.cancel()
        if error is None:  # the last frame, or line, with the run's end
            with anyio.move_on_after(5):
                await _read_ledger(progress, pool)
            shown.show()
    finally:
        if shown.live is not None:
            shown.live.stop()
    if error is not None:
        raise error
    return results[0]


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _secs(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds >= 1 else "<1 s"


def clock_text(seconds: float) -> str:
    """h:mm:ss."""
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


@dataclass
class BackfillResult:
    counts: dict[str, int]
    rows: int  # loaded by this run, not before it
    seconds: float
    dead: list[DeadJob]
    already_done: int = 0  # jobs of the run that were done before it began
    budget_wait_s: float = 0.0
    interrupted: str | None = None  # the signal that stopped the run


def summary(result: BackfillResult) -> str:
    c = result.counts
    wait = (
        f", {result.budget_wait_s:.1f} s of it waiting for the call budget"
        if result.budget_wait_s >= 0.1
        else ""
    )
    lines = [
        f"{c['done']} done, {c['dead']} dead, {c['pending'] + c['running']} not finished; "
        f"{result.rows} rows loaded in {result.seconds:.1f} s{wait}"
    ]
    if result.already_done:
        lines.append(
            f"  {result.already_done} of the jobs were done before this run "
            "(--force loads them again)"
        )
    if result.interrupted:
        lines.append(
            f"  interrupted ({result.interrupted}): the jobs not finished are back in the "
            "queue; the same command goes on with them"
        )
    for job in result.dead:
        lines.append(f"  dead: job {job.id} {job.scope} {job.day}: {job.reason}")
    return "\n".join(lines)
