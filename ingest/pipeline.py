"""One batch of jobs end to end: fetch, normalize, load and mark done, or record what the
failure policy decided. Written against small Protocols; the composition root wires it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import anyio
import asyncpg
import structlog

from ingest import ledger
from ingest.config import AngusStream, Settings
from ingest.datatypes import REGISTRY, DataType, Registry, query_pairs, table_for
from ingest.domain import Job, ScopeKind, Vendor, export_sources
from ingest.errors import BadPayload, IngestError, TerminalError
from ingest.loader import load_export, upsert_records
from ingest.normalize import angus as angus_normalize
from ingest.normalize.vidicenter import normalize_chunks
from ingest.policy import Action, Decision, RetryPolicy, decide
from ingest.schedule import angus_day_final, final_by_silence, vidicenter_day_final
from ingest.topology import Fleet
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


class FleetSource(Protocol):
    async def fleet(self) -> Fleet: ...  # the account's locations and their last uploads


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
    reason: str | None = None  # the failure's error type, when there was one
    seconds: float = 0.0  # how long the batch took, claim to commit


@dataclass(frozen=True)
class Context:
    """What the pipeline needs; built once by the composition root (`ingest.wiring`)."""

    pool: asyncpg.Pool
    settings: Settings
    owner: str
    policy: RetryPolicy
    registry: Registry = REGISTRY
    # each configured VidiCenter account's client, and its fleet (for completeness)
    vidicenter: Mapping[str, ExportSource] = field(default_factory=dict)
    fleets: Mapping[str, FleetSource] = field(default_factory=dict)
    angus: EntitySource | None = None
    streams: Mapping[str, AngusStream] = field(default_factory=dict)
    on_outcome: Callable[[str, Outcome], None] | None = None
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    @property
    def export_stale_after_s(self) -> float:
        return ledger.exports.stale_after_s(self.settings.vidicenter_export_deadline_s)


# what a job's failure may be: recorded on the job, which is tried again or dead
_JOB_ERRORS = (IngestError, OSError, asyncpg.PostgresError, KeyError, ValueError, TypeError)


class _LeaseWatch:
    lost = False


@asynccontextmanager
async def _heartbeat(ctx: Context, jobs: Sequence[Job]) -> AsyncIterator[_LeaseWatch]:
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
                    log.warning("job.lease_lost", job_ids=[j.id for j in jobs])
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


async def _record_failure(ctx: Context, jobs: Sequence[Job], error: Exception) -> Outcome:
    """Let the policy decide what the failure leads to, and have the ledger record it.

    Credentials refused: the jobs go back untried and the error goes on up, to stop the
    vendor's work.
    """
    # a batch is as tried as its most tried job
    worst = replace(
        jobs[0],
        attempts=max(j.attempts for j in jobs),
        export_rebuilds=max(j.export_rebuilds for j in jobs),
    )
    decision = decide(error, worst, ctx.policy)
    await ledger.record_decision(ctx.pool, jobs, decision, owner=ctx.owner)
    return _outcome_of(decision, jobs, error)


def _outcome_of(decision: Decision, jobs: Sequence[Job], error: Exception) -> Outcome:
    reason = type(error).__name__
    ids = [j.id for j in jobs]
    match decision.action:
        case Action.hand_back:
            raise error
        case Action.abandon:
            log.warning("job.lease_lost", job_ids=ids)
            return Outcome()
        case Action.dead:
            log.warning("job.dead", job_ids=ids, error=decision.reason)
            return Outcome(dead=len(jobs), reason=reason)
        case _:
            log.warning(
                "job.retry_scheduled",
                job_ids=ids,
                error=decision.reason,
                retry_in_s=round(decision.delay_s, 2),
                rebuild=decision.action is Action.rebuild,
            )
            return Outcome(failed=len(jobs), reason=reason)


# --- VidiCenter ------------------------------------------------------------------------


def _query_of(ctx: Context, jobs: Sequence[Job], dt: DataType) -> str:
    """The batch's export query: the one stored on it (a resume), or a new one."""
    first = jobs[0]
    if first.export_query is not None:
        return first.export_query
    sources = export_sources([j.scope for j in jobs])
    return export_query(
        dt.name, first.time_resolution, first.day, sources, query_pairs(dt, first.params)
    )


async def _take_export_place(ctx: Context, jobs: Sequence[Job], query: str) -> bool:
    """Reserve one of the account's export places for the batch; when none is free, hand
    the jobs back for a few seconds."""
    s = ctx.settings
    async with ctx.pool.acquire() as conn:
        if await ledger.reserve_export(
            conn,
            jobs,
            query,
            owner=ctx.owner,
            max_exports=s.vidicenter_max_exports,
            stale_after_s=ctx.export_stale_after_s,
        ):
            log.info("export.reserved", locations=len(jobs))
            return True
        await ledger.release_jobs(conn, jobs, owner=ctx.owner, delay_s=5.0)
    log.debug("export.no_place")
    return False


def _client(ctx: Context, account: str) -> ExportSource:
    client = ctx.vidicenter.get(account)
    if client is None:
        raise TerminalError(f"VidiCenter account {account!r} is not configured")
    return client


async def _fetch_export(
    ctx: Context, jobs: Sequence[Job], query: str, *, rebuild: bool = False
) -> dict[str, Any]:
    """Start (or resume) the export and poll it until it is finished; `rebuild` asks for
    a new build even when the jobs were not forced."""
    first = jobs[0]

    async def started() -> None:
        async with ctx.pool.acquire() as conn:
            await ledger.mark_export_started(conn, jobs)

    return await _client(ctx, first.account).run_export(
        query, force=(first.force or rebuild) and not first.export_started, on_started=started
    )


def _long_final(ctx: Context, jobs: Sequence[Job]) -> bool:
    """True when the jobs' days are so old that they are final whatever the uploads."""
    s = ctx.settings
    now = ctx.now()
    return all(
        final_by_silence(j.day, now=now, settle_s=s.settle_s, silence_s=s.upload_silence_s)
        for j in jobs
    )


async def _open_jobs(ctx: Context, jobs: Sequence[Job]) -> set[int]:
    """The jobs whose day the vendor does not have whole yet, asked before the export is
    built: every location it covers (but the silent ones) has uploaded past the day's
    end plus the settle margin, or the job stays open."""
    s = ctx.settings
    now = ctx.now()
    if _long_final(ctx, jobs):
        return set()  # days this old are final: no need to ask the vendor
    source = ctx.fleets.get(jobs[0].account)
    if source is None:
        return {j.id for j in jobs}
    fleet = await source.fleet()
    return {
        j.id
        for j in jobs
        if not vidicenter_day_final(
            j.day,
            fleet.last_uploads(fleet.covered(j.scope)),
            now=now,
            settle_s=s.settle_s,
            silence_s=s.upload_silence_s,
        )
    }


async def _load_export_rows(
    ctx: Context, jobs: Sequence[Job], dt: DataType, payload: dict[str, Any], open_ids: set[int]
) -> int:
    """Normalize the rows, load them and mark the jobs done, in one transaction; each job
    is credited with its own scope's rows, and those of `open_ids` stay open."""
    first = jobs[0]
    table = table_for(dt, first.time_resolution)
    chunks = normalize_chunks(
        dt,
        first.time_resolution,
        payload["data"],
        scope=first.scope.encode(),
        extrapolation_amount=first.params.get("extrapolation_amount"),
        account=first.account,
    )
    extrapolated = dt.scope_kind is ScopeKind.extrapolated
    wanted = {} if extrapolated else {int(j.scope.id): j.id for j in jobs}
    async with ctx.pool.acquire() as conn, conn.transaction():
        loaded = await load_export(
            conn, table, chunks, scope_ids=list(wanted), day=first.day, account=first.account
        )
        if extrapolated:
            rows_by_job = {first.id: loaded.rows}
        else:
            if stray := sorted(set(loaded.by_scope) - set(wanted)):
                raise BadPayload(f"the export has rows for scopes not asked for: {stray[:5]}")
            rows_by_job = {job_id: loaded.by_scope.get(sid, 0) for sid, job_id in wanted.items()}
        await ledger.mark_done(conn, rows_by_job, owner=ctx.owner, open_ids=open_ids)
    log.info("job.done", rows=loaded.rows, table=table.qualified_name, open=len(open_ids) or None)
    return loaded.rows


async def work_vidicenter(ctx: Context, jobs: Sequence[Job]) -> Outcome:
    """Run one export for a batch of jobs that share it and load its rows."""
    first = jobs[0]
    try:
        dt = ctx.registry.get(first.data_type)
        query = _query_of(ctx, jobs, dt)
        rebuild = False
        if first.export_query is None:
            open_ids = await _open_jobs(ctx, jobs)
            # an earlier try may have had the export built while the day was still open:
            # the vendor would serve that build again; a final day needs a new one
            retried = any(j.attempts > 1 for j in jobs)
            rebuild = retried and len(open_ids) < len(jobs) and not _long_final(ctx, jobs)
            if not await _take_export_place(ctx, jobs, query):
                return Outcome(released=len(jobs))
        else:
            # built before this worker knew the uploads: taken as open, refreshed later
            open_ids = {j.id for j in jobs}
            log.info("export.resumed")
        async with _heartbeat(ctx, jobs) as watch:
            payload = await _fetch_export(ctx, jobs, query, rebuild=rebuild)
            rows = await _load_export_rows(ctx, jobs, dt, payload, open_ids)
        if watch.lost:
            return Outcome()
        return Outcome(
            done=len(jobs), rows=rows, table=table_for(dt, first.time_resolution).qualified_name
        )
    except _JOB_ERRORS as error:
        return await _record_failure(ctx, jobs, error)


# --- Angus -----------------------------------------------------------------------------


def day_window(day: date, tz: str) -> tuple[datetime, datetime]:
    """The day's start and last second in the configured time zone, as aware datetimes."""
    start = datetime.combine(day, time.min, tzinfo=ZoneInfo(tz))
    nxt = datetime.combine(day + timedelta(days=1), time.min, tzinfo=ZoneInfo(tz))
    return start, nxt - timedelta(seconds=1)


async def work_angus(ctx: Context, jobs: Sequence[Job]) -> Outcome:
    """Fetch every page of one stream's day and upsert it; a stream with bad credentials
    fails alone, the other streams carry on."""
    assert ctx.angus is not None and len(jobs) == 1
    job = jobs[0]
    s = ctx.settings
    try:
        stream = ctx.streams.get(job.scope.id)
        if stream is None:
            raise TerminalError(f"stream {job.scope.id} is not in INGEST_ANGUS_STREAMS")
        start, end = day_window(job.day, s.day_timezone)
        final = angus_day_final(job.day, tz=s.day_timezone, now=ctx.now(), settle_s=s.settle_s)
        async with _heartbeat(ctx, jobs) as watch:
            pages = await ctx.angus.fetch_entities(
                stream,
                metrics=job.params.get("metrics") or s.angus_metrics,
                from_date=start,
                to_date=end,
                time_bucket=job.time_resolution,
            )
            records = angus_normalize.normalize_entities(
                pages, stream=job.scope.id, time_bucket=job.time_resolution, window_start=start
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
                await ledger.mark_done(
                    conn, {job.id: n}, owner=ctx.owner, open_ids=() if final else (job.id,)
                )
        if watch.lost:
            return Outcome()
        log.info("job.done", rows=n, table="angus.entities")
        return Outcome(done=1, rows=n, table="angus.entities")
    except _JOB_ERRORS as error:
        return await _record_failure(ctx, jobs, error)


async def work_batch(ctx: Context, jobs: Sequence[Job]) -> Outcome:
    """Dispatch a claimed batch to its vendor's pipeline, its context bound to the logs."""
    first = jobs[0]
    with structlog.contextvars.bound_contextvars(
        vendor=first.vendor.value,
        data_type=first.data_type,
        resolution=first.time_resolution,
        scope=str(first.scope) if len(jobs) == 1 else f"{len(jobs)} {first.scope.kind}s",
        day=first.day.isoformat(),
        job_ids=[j.id for j in jobs],
    ):
        if first.vendor is Vendor.vidicenter:
            return await work_vidicenter(ctx, jobs)
        return await work_angus(ctx, jobs)


def max_batch(ctx: Context, vendor: Vendor) -> int:
    return ctx.settings.vidicenter_locations_per_export if vendor is Vendor.vidicenter else 1
