"""One batch of jobs end to end: fetch, normalize, load and mark done, or record the failure."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import anyio
import asyncpg
import structlog

from ingest import ledger
from ingest.config import AngusStream, Settings
from ingest.datatypes import ScopeKind, get_data_type, table_for
from ingest.errors import (
    AuthError,
    BadPayload,
    ExportFailed,
    ExportPending,
    IngestError,
    RateLimited,
    TerminalError,
    VendorUnavailable,
)
from ingest.ledger import Job, Vendor
from ingest.loader import load_export, upsert_records
from ingest.normalize import angus as angus_normalize
from ingest.normalize.vidicenter import normalize_chunks
from ingest.vendors.vidicenter import export_query

log = structlog.get_logger(__name__)


class ExportSource(Protocol):
    async def run_export(
        self,
        query: str,
        *,
        force: bool = False,
        on_started: Callable[[], Awaitable[None]] | None = None,
    ) -> dict[str, Any]: ...


class EntitySource(Protocol):
    async def fetch_entities(
        self,
        stream: AngusStream,
        *,
        metrics: Sequence[str],
        from_date: datetime,
        to_date: datetime,
        time_bucket: str,
    ) -> list[dict[str, Any]]: ...


@dataclass
class Outcome:
    """What became of a batch, for progress and metrics."""

    done: int = 0
    failed: int = 0
    dead: int = 0
    released: int = 0
    rows: int = 0
    table: str | None = None


@dataclass
class Context:
    """What the pipeline needs; built by the command line, the one composition root."""

    pool: asyncpg.Pool
    settings: Settings
    owner: str
    vidicenter: ExportSource | None = None
    angus: EntitySource | None = None
    streams: Mapping[str, AngusStream] = field(default_factory=dict)
    on_outcome: Callable[[str, Outcome], None] | None = None


# what a job's failure may be: recorded on the job, which is tried again or dead
_JOB_ERRORS = (IngestError, OSError, asyncpg.PostgresError, KeyError, ValueError, TypeError)


class _LeaseWatch:
    lost = False


@asynccontextmanager
async def _heartbeat(ctx: Context, jobs: Sequence[Job]) -> Any:
    """Keep the jobs' lease alive while the body runs; cancel the body if it is lost.

    An error of the body leaves as itself, not wrapped in the task group's ExceptionGroup,
    so the callers' `except` clauses see it.
    """
    watch = _LeaseWatch()
    lease = ctx.settings.job_lease_s
    body_error: Exception | None = None
    async with anyio.create_task_group() as tg:

        async def beat() -> None:
            while True:
                await anyio.sleep(lease / 3)
                try:
                    await ledger.extend_lease(ctx.pool, jobs, owner=ctx.owner, lease_s=lease)
                except ledger.LeaseLost:
                    watch.lost = True
                    log.warning("job.lease_lost", jobs=[j.id for j in jobs])
                    tg.cancel_scope.cancel()
                    return
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                    log.warning("job.heartbeat_failed", error=str(error))

        tg.start_soon(beat)
        try:
            yield watch
        except Exception as error:
            body_error = error
        finally:
            tg.cancel_scope.cancel()
    if body_error is not None:
        raise body_error


def _keeps_export(error: BaseException) -> bool:
    """After these errors the export may still be running or cached at the vendor."""
    return isinstance(error, VendorUnavailable | RateLimited | ExportPending)


async def _record_failure(
    ctx: Context,
    jobs: Sequence[Job],
    error: BaseException,
    *,
    rebuild: bool = False,
    terminal: bool = False,
) -> Outcome:
    s = ctx.settings
    if terminal and not isinstance(error, TerminalError):
        error = TerminalError(str(error))
    status = await ledger.fail_jobs(
        ctx.pool,
        jobs,
        error,
        owner=ctx.owner,
        max_attempts=s.job_max_attempts,
        base_s=s.job_retry_base_s,
        max_s=s.job_retry_max_s,
        keep_export=_keeps_export(error),
        rebuild=rebuild,
    )
    event = "job.dead" if status == ledger.JobStatus.dead else "job.retry_scheduled"
    log.warning(event, jobs=[j.id for j in jobs], error=f"{type(error).__name__}: {error}")
    if status == ledger.JobStatus.dead:
        return Outcome(dead=len(jobs))
    return Outcome(failed=len(jobs))


def _sources(jobs: Sequence[Job]) -> dict[str, list[str]]:
    first = jobs[0]
    kind = first.scope_kind
    if kind == "location":
        return {"locations": [j.scope_id for j in jobs]}
    if kind == "site":
        return {"sites": [j.scope_id for j in jobs]}
    # extrapolated: the scope is the whole request, e.g. "locations:1,2,3;sites:4"
    sources: dict[str, list[str]] = {}
    for part in first.scope.split(";"):
        name, _, ids = part.partition(":")
        sources[name] = ids.split(",")
    return sources


async def work_vidicenter(ctx: Context, jobs: Sequence[Job]) -> Outcome:
    """Run one export for a batch of jobs that share it and load its rows."""
    assert ctx.vidicenter is not None
    first = jobs[0]
    s = ctx.settings
    try:
        dt = get_data_type(first.data_type)
        query = first.export_query
        if query is None:
            query = export_query(
                dt.name, first.time_resolution, first.day, _sources(jobs), first.params
            )
            async with ctx.pool.acquire() as conn:
                got = await ledger.reserve_export(
                    conn,
                    jobs,
                    query,
                    owner=ctx.owner,
                    max_exports=s.vidicenter_max_exports,
                    stale_after_s=2 * s.vidicenter_export_deadline_s + 600,
                )
            if not got:
                async with ctx.pool.acquire() as conn:
                    await ledger.release_jobs(conn, jobs, owner=ctx.owner, delay_s=5.0)
                log.debug("export.no_place")
                return Outcome(released=len(jobs))
            log.info("export.reserved", locations=len(jobs))
        else:
            log.info("export.resumed")

        async def started() -> None:
            async with ctx.pool.acquire() as conn:
                await ledger.mark_export_started(conn, jobs)

        try:
            async with _heartbeat(ctx, jobs) as watch:
                payload = await ctx.vidicenter.run_export(
                    query, force=first.force and not first.export_started, on_started=started
                )
                table = table_for(dt, first.time_resolution)
                chunks = normalize_chunks(
                    dt,
                    first.time_resolution,
                    payload["data"],
                    scope=first.scope,
                    extrapolation_amount=first.params.get("extrapolation_amount"),
                )
                extrapolated = dt.scope_kind is ScopeKind.extrapolated
                wanted = {} if extrapolated else {int(j.scope_id): j.id for j in jobs}
                async with ctx.pool.acquire() as conn, conn.transaction():
                    loaded = await load_export(
                        conn, table, chunks, scope_ids=list(wanted), day=first.day
                    )
                    if extrapolated:
                        rows_by_job = {first.id: loaded.rows}
                    else:
                        stray = sorted(set(loaded.by_scope) - set(wanted))
                        if stray:
                            raise BadPayload(
                                f"the export has rows for scopes not asked for: {stray[:5]}"
                            )
                        rows_by_job = {
                            job_id: loaded.by_scope.get(sid, 0) for sid, job_id in wanted.items()
                        }
                    await ledger.mark_done(conn, rows_by_job, owner=ctx.owner)
                n = loaded.rows
            if watch.lost:
                return Outcome()
        except ExportFailed as error:
            rebuilds = await ctx.pool.fetchval(
                "SELECT max(export_rebuilds) FROM ingest.jobs WHERE id = ANY($1)",
                [j.id for j in jobs],
            )
            if rebuilds >= s.vidicenter_rebuilds_after_failure:
                return await _record_failure(ctx, jobs, error, terminal=True)
            return await _record_failure(ctx, jobs, error, rebuild=True)
        log.info("job.done", rows=n, table=table.name)
        return Outcome(done=len(jobs), rows=n, table=f"vidicenter.{table.name}")
    except AuthError:
        # no retries with a bad token: the jobs go back untried and the vendor's work stops
        await ledger.release_jobs(ctx.pool, jobs, owner=ctx.owner)
        raise
    except ledger.LeaseLost:
        log.warning("job.lease_lost")
        return Outcome()
    except _JOB_ERRORS as error:
        return await _record_failure(ctx, jobs, error)


def day_window(day: date, tz: str) -> tuple[datetime, datetime]:
    """The day's start and last second in the configured time zone, as aware datetimes."""
    start = datetime.combine(day, time.min, tzinfo=ZoneInfo(tz))
    nxt = datetime.combine(day + timedelta(days=1), time.min, tzinfo=ZoneInfo(tz))
    return start, nxt - timedelta(seconds=1)


async def work_angus(ctx: Context, jobs: Sequence[Job]) -> Outcome:
    """Fetch every page of one stream's day and upsert it."""
    assert ctx.angus is not None and len(jobs) == 1
    job = jobs[0]
    s = ctx.settings
    try:
        stream = ctx.streams.get(job.scope_id)
        if stream is None:
            raise TerminalError(f"stream {job.scope_id} is not in INGEST_ANGUS_STREAMS")
        metrics = job.params.get("metrics") or s.angus_metrics
        start, end = day_window(job.day, s.day_timezone)
        async with _heartbeat(ctx, jobs) as watch:
            pages = await ctx.angus.fetch_entities(
                stream,
                metrics=metrics,
                from_date=start,
                to_date=end,
                time_bucket=job.time_resolution,
            )
            records = angus_normalize.normalize_entities(
                pages, stream=job.scope_id, time_bucket=job.time_resolution, window_start=start
            )
            async with ctx.pool.acquire() as conn, conn.transaction():
                n = await upsert_records(
                    conn,
                    schema="angus",
                    table="entities",
                    columns=angus_normalize.COLUMNS,
                    key=("stream", "time_bucket", "period_start"),
                    records=records,
                )
                await ledger.mark_done(conn, {job.id: n}, owner=ctx.owner)
        if watch.lost:
            return Outcome()
        log.info("job.done", rows=n, table="angus.entities")
        return Outcome(done=1, rows=n, table="angus.entities")
    except ledger.LeaseLost:
        return Outcome()
    except _JOB_ERRORS as error:
        # a stream with bad credentials fails alone; the other streams carry on
        return await _record_failure(ctx, jobs, error)


async def work_batch(ctx: Context, jobs: Sequence[Job]) -> Outcome:
    """Dispatch a claimed batch to its vendor's pipeline, its context bound to the logs."""
    first = jobs[0]
    with structlog.contextvars.bound_contextvars(
        vendor=first.vendor,
        data_type=first.data_type,
        resolution=first.time_resolution,
        scope=first.scope if len(jobs) == 1 else f"{len(jobs)} {first.scope_kind}s",
        day=first.day.isoformat(),
        jobs=[j.id for j in jobs],
    ):
        if first.vendor == Vendor.vidicenter:
            return await work_vidicenter(ctx, jobs)
        return await work_angus(ctx, jobs)


def max_batch(ctx: Context, vendor: Vendor) -> int:
    return ctx.settings.vidicenter_locations_per_export if vendor == Vendor.vidicenter else 1
