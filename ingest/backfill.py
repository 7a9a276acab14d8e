"""`ingest backfill`: enqueue a range, work it until every job is done or dead, report."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TextIO

import structlog

from ingest import ledger
from ingest.ledger import JobSpec, Vendor
from ingest.pipeline import Context, Outcome
from ingest.worker import work_vendor

log = structlog.get_logger(__name__)


@dataclass
class Progress:
    """Counts for the progress line and the summary."""

    total: int
    out: TextIO = field(default_factory=lambda: sys.stderr)
    done: int = 0
    dead: int = 0
    rows: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def live(self) -> bool:
        return self.out.isatty()

    def update(self, _vendor: str, outcome: Outcome) -> None:
        self.done += outcome.done
        self.dead += outcome.dead
        self.rows += outcome.rows
        if self.live:
            width = 30
            finished = min(self.total, self.done + self.dead)
            filled = int(width * finished / max(1, self.total))
            self.out.write(
                f"\r[{'#' * filled}{'.' * (width - filled)}] {finished}/{self.total} jobs"
                f"  {self.rows} rows  {self.dead} dead "
            )
            self.out.flush()

    def finish(self) -> None:
        if self.live:
            self.out.write("\n")


@dataclass
class BackfillResult:
    counts: dict[str, int]
    rows: int
    seconds: float
    dead: list[tuple[int, str, str, str]]  # id, scope, day, reason


async def backfill(
    ctx: Context,
    vendor: Vendor,
    specs: Sequence[JobSpec],
    *,
    force: bool,
    enqueue_only: bool,
    loops: int,
    progress: Progress | None = None,
) -> BackfillResult:
    """Enqueue the specs' jobs and, unless `enqueue_only`, work them to the end."""
    started = time.monotonic()
    async with ctx.pool.acquire() as conn:
        ids = await ledger.enqueue_jobs(conn, specs, force=force)
    log.info("backfill.enqueued", vendor=vendor.value, jobs=len(ids), force=force)
    if not enqueue_only:
        if progress is not None:
            async with ctx.pool.acquire() as conn:
                already = await ledger.job_counts(conn, ids)
            progress.done += already["done"]
            progress.dead += already["dead"]
            ctx.on_outcome = progress.update
        state = await work_vendor(ctx, vendor, loops=loops, only_ids=ids)
        if state.auth_error is not None:
            await ctx.pool.execute(
                """
                UPDATE ingest.jobs SET status = 'dead', last_error = $2, finished_at = now(),
                    updated_at = now()
                WHERE id = ANY($1) AND status = 'pending'
                """,
                ids,
                f"not tried: {state.auth_error}",
            )
        if progress is not None:
            progress.finish()
    async with ctx.pool.acquire() as conn:
        counts = await ledger.job_counts(conn, ids)
        rows = await conn.fetchval(
            "SELECT coalesce(sum(rows_loaded), 0) FROM ingest.jobs WHERE id = ANY($1)", ids
        )
        dead = await conn.fetch(
            "SELECT id, scope, day, last_error FROM ingest.jobs"
            " WHERE id = ANY($1) AND status = 'dead' ORDER BY id LIMIT 50",
            ids,
        )
    return BackfillResult(
        counts=counts,
        rows=int(rows),
        seconds=time.monotonic() - started,
        dead=[(r["id"], r["scope"], str(r["day"]), r["last_error"] or "") for r in dead],
    )


def summary(result: BackfillResult) -> str:
    c = result.counts
    lines = [
        f"{c['done']} done, {c['dead']} dead, {c['pending'] + c['running']} not finished; "
        f"{result.rows} rows in {result.seconds:.1f} s"
    ]
    for job_id, scope, day, reason in result.dead:
        lines.append(f"  dead: job {job_id} {scope} {day}: {reason}")
    return "\n".join(lines)
