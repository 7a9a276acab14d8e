"""One batch of jobs end to end: fetch, normalize, load and mark done, or record what the
failure policy decided. Written against small Protocols; the composition root wires it."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol, cast
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import anyio
import asyncpg
import structlog

from ingest import ledger, planner
from ingest.buckets import bucket_end
from ingest.config import AngusStream, Settings
from ingest.datatypes import REGISTRY, DataType, Registry, TableSpec, query_pairs, table_for
from ingest.domain import Job, ScopeKind, Vendor
from ingest.errors import IngestError, RowError, TerminalError
from ingest.loader import Key, Loaded, Slices, load_export, rows_by_job, upsert_records
from ingest.normalize import angus as angus_normalize
from ingest.normalize.vidicenter import NormalizedExport, OnBadRow, TableRows, normalize_slices
from ingest.policy import Action, Decision, RetryPolicy, decide
from ingest.schedule import angus_day_final, final_by_silence, vidicenter_day_final
from ingest.topology import Fleet
from ingest.vendors.body import ExportAnswer
from ingest.vendors.vidicenter import export_query, request_line_length

log = structlog.get_logger(__name__)


class ExportSource(Protocol):
    async def run_export(
        self,
        query: str,
        *,
        force: bool = False,
        on_started: Callable[[], Awaitable[None]] | None = None,
        expected_rows: int = 0,
    ) -> ExportAnswer: ...


class FleetSource(Protocol):
    # the account's locations, their sites and last uploads (`fresh`: listed by the vendor now)
    async def fleet(self, *, fresh: bool = False) -> Fleet: ...


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
    released: int = 0  # handed back untried (no export place, shutdown)
    split: int = 0  # their export was cut in two; each half is pending again, untried
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
                    log.warning("job.lease_lost", job_ids=job_ids(jobs))
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
    vendor's work. An export cut in two: each half goes back to the queue as one.
    """
    # a batch is as tried as its most tried job
    worst = replace(
        jobs[0],
        attempts=max(j.attempts for j in jobs),
        export_rebuilds=max(j.export_rebuilds for j in jobs),
    )
    cut = planner.halves(jobs) if jobs[0].vendor is Vendor.vidicenter else None
    decision = decide(error, worst, ctx.policy, splittable=cut is not None)
    if decision.action is Action.split_export and cut is not None:
        await ledger.record_split(ctx.pool, cut, decision.reason, owner=ctx.owner)
        log.warning(
            "export.split",
            jobs=len(jobs),
            halves=[len(half) for half in cut],
            error=decision.reason,
        )
        return Outcome(split=len(jobs), reason=type(error).__name__)
    await ledger.record_decision(ctx.pool, jobs, decision, owner=ctx.owner)
    return _outcome_of(decision, jobs, error)


def job_ids(jobs: Sequence[Job], most: int = 20) -> list[int]:
    """The jobs' ids for a log line, at most `most` of them (an export may carry tens of
    thousands; the line's `jobs` counts them)."""
    return sorted(j.id for j in jobs)[:most]


def _outcome_of(decision: Decision, jobs: Sequence[Job], error: Exception) -> Outcome:
    reason = type(error).__name__
    ids = job_ids(jobs)
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


def block_query(registry: Registry, block: planner.Block) -> str:
    """The export query of a planned block of jobs (its whole sites named, see
    `planner.Sites`)."""
    group = block.group
    dt = registry.get(group.data_type)
    params = json.loads(group.params)
    return export_query(
        dt.name,
        group.resolution,
        block.start,
        block.end,
        block.sources,
        query_pairs(dt, params),
    )


async def packing(
    ctx: Context, vendor: Vendor, accounts: Sequence[str] | None = None
) -> ledger.Packing | None:
    """How the vendor's claims pack jobs into exports (VidiCenter), or None (one at a time),
    with the site membership of the accounts (None: every one configured)."""
    if vendor is not Vendor.vidicenter:
        return None
    names = ctx.fleets if accounts is None else [a for a in accounts if a in ctx.fleets]
    sites = {}
    for account in names:
        try:
            sites[account] = await site_membership(ctx, account)
        except _JOB_ERRORS as error:  # the claim goes on: its exports list every location
            log.warning("topology.sites_unknown", account=account, error=str(error))
    return ledger.Packing(
        limits=limits_of(ctx.settings),
        line_length=line_length_for(ctx.settings, ctx.registry),
        registry=ctx.registry,
        sites=sites,
    )


async def site_membership(ctx: Context, account: str) -> planner.Sites:
    """The account's sites as last listed (a few minutes old at most), for the planner and
    the export's query: both read the same listing."""
    source = ctx.fleets.get(account)
    if source is None:
        return planner.NO_SITES
    return (await source.fleet()).sites


def line_length_for(settings: Settings, registry: Registry) -> planner.LineLength:
    """The request line of a block's export, as the client would send it."""

    def line_length(block: planner.Block) -> int:
        return request_line_length(settings.vidicenter_url, block_query(registry, block))

    return line_length


def limits_of(settings: Settings) -> planner.Limits:
    return planner.Limits(
        max_rows=settings.vidicenter_max_rows_per_export,
        max_line=settings.vidicenter_max_request_line,
        max_scopes=settings.vidicenter_locations_per_export,
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
            log.info("export.reserved")
            return True
        await ledger.release_jobs(conn, jobs, owner=ctx.owner, delay_s=5.0)
    log.debug("export.no_place")
    return False


def _client(ctx: Context, account: str) -> ExportSource:
    client = ctx.vidicenter.get(account)
    if client is None:
        raise TerminalError(f"VidiCenter account {account!r} is not configured")
    return client


async def _expected_rows(ctx: Context, jobs: Sequence[Job], dt: DataType) -> int:
    """The rows the export is expected to bring, for its poll schedule."""
    first = jobs[0]
    seen: dict[str, int] = {}
    if planner.observed(dt, first.time_resolution):
        same = (first.vendor.value, first.data_type, first.time_resolution)
        scopes = sorted({j.scope for j in jobs})
        params = ledger.params_json(first.params)
        seen = await ledger.rows_seen(
            ctx.pool, (*same, params), scopes, around=first.day, account=first.account
        )
    estimate = planner.estimator(dt, first.time_resolution, first.params, seen)
    return sum(estimate(j.scope) for j in jobs)


async def _fetch_export(
    ctx: Context, jobs: Sequence[Job], query: str, expected_rows: int, *, rebuild: bool = False
) -> ExportAnswer:
    """Start (or resume) the export and poll it until it is finished; `rebuild` asks for
    a new build even when the jobs were not forced."""
    first = jobs[0]

    async def started() -> None:
        async with ctx.pool.acquire() as conn:
            await ledger.mark_export_started(conn, jobs)

    return await _client(ctx, first.account).run_export(
        query,
        force=(first.force or rebuild) and not first.export_started,
        on_started=started,
        expected_rows=expected_rows,
    )


def _last_day(job: Job) -> date:
    """The last day of the job's span (its bucket's for 7d, 30d, 1M)."""
    return bucket_end(job.time_resolution, job.day) - timedelta(days=1)


def _long_final(ctx: Context, jobs: Sequence[Job]) -> bool:
    """True when the jobs' days are so old that they are final whatever the uploads."""
    s = ctx.settings
    now = ctx.now()
    return all(
        final_by_silence(_last_day(j), now=now, settle_s=s.settle_s, silence_s=s.upload_silence_s)
        for j in jobs
    )


async def _open_jobs(ctx: Context, jobs: Sequence[Job]) -> set[int]:
    """The jobs whose span the vendor does not have whole yet, asked before the export is
    built: every location it covers (but the silent ones) has uploaded past the span's
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
            _last_day(j),
            fleet.last_uploads(fleet.covered(j.scope)),
            now=now,
            settle_s=s.settle_s,
            silence_s=s.upload_silence_s,
        )
    }


def _slices_of(jobs: Sequence[Job], dt: DataType, query: str) -> tuple[Slices, dict[Key, int]]:
    """Which slices of the export's rows the claimed jobs own, and the job of each."""
    first = jobs[0]
    params = parse_qs(query)
    start = datetime.fromisoformat(params["start"][0])
    end = datetime.fromisoformat(params["end"][0])
    owned: dict[Key, int]
    if dt.scope_kind is ScopeKind.extrapolated:
        owned = {(None, j.day): j.id for j in jobs}
        asked = None
    else:
        owned = {(int(j.scope.id), j.day): j.id for j in jobs}
        listed = params.get("locations" if dt.scope_kind is ScopeKind.location else "sites")
        asked = frozenset(int(i) for i in listed[0].split(",")) if listed else frozenset()
        if _named_sites(dt, query):
            # the claimed locations the named sites stand for: rows of any other location of
            # theirs are left out before the load (see _SiteCover)
            asked |= {int(j.scope.id) for j in jobs}
    table = table_for(dt, first.time_resolution)
    slices = Slices(
        table, first.time_resolution, start, end, frozenset(owned), asked, account=first.account
    )
    return slices, owned


def _named_sites(dt: DataType, query: str) -> list[str]:
    """The sites a location-scoped export names instead of listing their locations."""
    if dt.scope_kind is not ScopeKind.location:
        return []
    named = parse_qs(query).get("sites")
    return named[0].split(",") if named else []


class _Unverified(Exception):
    """Locations the export asked for through their site, which the vendor sent no row of:
    whether their site still holds them is asked of the vendor, outside the transaction."""

    def __init__(self, locations: set[int]) -> None:
        super().__init__(sorted(locations))
        self.locations = locations


@dataclass
class _SiteCover:
    """What an export that names sites (`sites=ID`) is checked for while it is loaded.

    The vendor sends the rows of the sites' locations as it holds them when it builds the
    export, which may not be the listing the query was written from: a location inactive
    or added to a site since has rows in it that no claimed job owns (they are left out,
    and counted in one log line), and a location moved out of a site has none. A claimed
    location with no row at all is looked up in a new listing: if its site no longer holds
    it, its jobs are not loaded but asked for again in an export of their own.
    """

    account: str
    sites: list[str]
    expected: frozenset[int]  # the claimed locations and the listed ones
    through_sites: frozenset[int]  # the claimed locations the named sites stand for
    verified: set[int] = field(default_factory=set)  # in their site as newly listed
    strays: Counter[int] = field(default_factory=Counter)  # rows left out, by location

    def within(
        self, chunks: Iterator[NormalizedExport], table: TableSpec
    ) -> Iterator[NormalizedExport]:
        """The chunks without the rows of locations the export has no claimed job for."""
        assert table.scope_column is not None
        at = table.column_names.index(table.scope_column)
        for chunk in chunks:
            ids = [r[at] for r in chunk.rows.records]
            if self.expected.issuperset(ids):
                yield chunk
                continue
            keep = [i in self.expected for i in ids]
            self.strays.update(cast(int, i) for i, kept in zip(ids, keep, strict=True) if not kept)
            yield _keeping(chunk, keep)

    def check(self, ctx: Context, loaded: Loaded, skip: frozenset[Key]) -> None:
        """_Unverified when a location asked for through its site had no row, and has not
        been looked up in a new listing yet (the transaction is then rolled back)."""
        seen = {k[0] for k, n in loaded.by_key.items() if n}
        quiet = set(self.through_sites) - seen - {k[0] for k in skip} - self.verified
        if quiet and ctx.fleets.get(self.account) is not None:
            raise _Unverified(quiet)

    async def left(self, ctx: Context, quiet: set[int]) -> set[int]:
        """Of the quiet locations, those whose site, as the vendor lists it now, no longer
        holds them (asked with no transaction open: the listing may wait for the budget)."""
        fleet = await ctx.fleets[self.account].fleet(fresh=True)
        left = {loc for loc in quiet if not any(fleet.holds(s, str(loc)) for s in self.sites)}
        self.verified |= quiet - left
        return left

    def report(self) -> None:
        if self.strays:
            log.info(
                "export.rows_not_claimed",
                rows=sum(self.strays.values()),
                locations=sorted(self.strays)[:20],
                location_count=len(self.strays),
                sites=self.sites,
                hint="rows of the named sites' locations that no job of this export holds"
                " (inactive, or in the site since it was listed) are not loaded;"
                " backfill those locations to load them",
            )


def _keeping(chunk: NormalizedExport, keep: list[bool]) -> NormalizedExport:
    """The chunk with the rows `keep` marks, their children following them."""
    rows = TableRows(
        chunk.rows.table, [r for r, k in zip(chunk.rows.records, keep, strict=True) if k]
    )
    if chunk.child is None:
        return NormalizedExport(rows)
    position: dict[object, int] = {}
    for i, kept in enumerate(keep):
        if kept:
            position[i] = len(position)
    children = [(position[r[0]], *r[1:]) for r in chunk.child.records if r[0] in position]
    return NormalizedExport(rows, TableRows(chunk.child.table, children))


def _site_cover(jobs: Sequence[Job], dt: DataType, query: str, slices: Slices) -> _SiteCover | None:
    named = _named_sites(dt, query)
    if not named:
        return None
    listed = parse_qs(query).get("locations")
    listed_ids = {int(i) for i in listed[0].split(",")} if listed else set()
    assert slices.asked is not None
    return _SiteCover(
        jobs[0].account,
        named,
        slices.asked,
        frozenset({int(j.scope.id) for j in jobs} - listed_ids),
    )


async def _load_pass(
    ctx: Context,
    jobs: Sequence[Job],
    dt: DataType,
    answer: ExportAnswer,
    slices: Slices,
    owned: Mapping[Key, int],
    on_bad_row: OnBadRow,
    open_ids: set[int],
    cover: _SiteCover | None,
) -> int:
    """Normalize the rows, load them and mark their jobs done, in one transaction; each job
    is credited with its own slice's rows."""
    chunks = _normalized(dt, jobs, answer, on_bad_row)
    if cover is not None:
        cover.strays.clear()
        chunks = cover.within(chunks, slices.table)
    good = {k: i for k, i in owned.items() if k not in slices.skip}
    async with ctx.pool.acquire() as conn, conn.transaction():
        loaded = await load_export(conn, chunks, slices)
        if cover is not None:
            # rare: a claimed location without a row; rolled back, looked up, loaded again
            cover.check(ctx, loaded, slices.skip)
        if good:
            await ledger.mark_done(
                conn,
                rows_by_job(loaded, good),
                owner=ctx.owner,
                open_ids=[i for i in good.values() if i in open_ids],
            )
    log.info(
        "job.done",
        jobs=len(good),
        rows=loaded.rows,
        table=slices.table.qualified_name,
        open=len(open_ids) or None,
    )
    return loaded.rows


def _bad_slices(
    dt: DataType, jobs: Sequence[Job], answer: ExportAnswer, slices: Slices
) -> dict[Key, RowError]:
    """Every slice with a bad row, and its first bad row's error (a pass with no database).
    A bad row that names no scope id or day fails the whole export: it is raised."""
    bad: dict[Key, RowError] = {}

    def found(error: RowError) -> None:
        key = _key_of(error, slices)
        if key is None:
            raise error
        bad.setdefault(key, error)

    for chunk in _normalized(dt, jobs, answer, found):
        del chunk
    return bad


def _normalized(
    dt: DataType, jobs: Sequence[Job], answer: ExportAnswer, on_bad_row: OnBadRow
) -> Iterator[NormalizedExport]:
    """The answer's rows, normalized slice by slice for the batch's table."""
    first = jobs[0]
    return normalize_slices(
        dt,
        first.time_resolution,
        answer.row_slices(),
        scope=first.scope.encode(),
        extrapolation_amount=first.params.get("extrapolation_amount"),
        account=first.account,
        on_bad_row=on_bad_row,
    )


async def _load_rows(
    ctx: Context,
    jobs: Sequence[Job],
    dt: DataType,
    answer: ExportAnswer,
    query: str,
    open_ids: set[int],
) -> Outcome:
    """Load the export's rows for its jobs. A bad row costs only its own scope-day: the other
    slices are loaded, and the job of the bad one fails with the row's error.

    The first pass stops at a bad row (the transaction is rolled back); a pass without the
    database then finds every slice with one, and a last pass loads the others. A bad row
    that names no location or day fails the whole export. A location that an export naming
    its site had no row of, and that the site no longer holds, is left out the same way,
    and its jobs go out again on their own (see _SiteCover).
    """
    slices, owned = _slices_of(jobs, dt, query)
    cover = _site_cover(jobs, dt, query, slices)
    bad: dict[Key, RowError] = {}
    moved: set[Key] = set()
    lenient = False
    while True:
        try:
            skipping = replace(slices, skip=frozenset(bad) | frozenset(moved))
            on_bad = _left_out if lenient else None
            rows = await _load_pass(ctx, jobs, dt, answer, skipping, owned, on_bad, open_ids, cover)
            break
        except _Unverified as unverified:
            assert cover is not None
            left = await cover.left(ctx, unverified.locations)
            moved |= {k for k in owned if k[0] in left}
        except RowError as error:
            key = _key_of(error, slices)
            if key is None or key in bad or (lenient and key not in owned):
                raise
            log.warning("export.bad_row", error=str(error))
            if not lenient:
                lenient = True
                found = _bad_slices(dt, jobs, answer, slices)
                bad.update((k, e) for k, e in found.items() if k in owned)
            if key in owned:
                bad.setdefault(key, error)
    if cover is not None:
        cover.report()
    outcome = Outcome(
        done=len(jobs) - len(bad) - len(moved), rows=rows, table=slices.table.qualified_name
    )
    by_id = {j.id: j for j in jobs}
    if moved:
        outcome.released = await _ask_again(ctx, [by_id[owned[k]] for k in moved], cover)
    for key, row_error in bad.items():
        failed = await _record_failure(ctx, [by_id[owned[key]]], row_error)
        outcome.failed += failed.failed
        outcome.dead += failed.dead
        outcome.reason = failed.reason
    return outcome


async def _ask_again(ctx: Context, jobs: Sequence[Job], cover: _SiteCover | None) -> int:
    """The jobs of locations that left the export's sites, pending again as an export of
    their own (not a try: the vendor had moved them), planned with the new listing."""
    assert cover is not None
    locations = sorted({int(j.scope.id) for j in jobs})
    reason = (
        f"VidiCenter sent no row of location(s) {', '.join(map(str, locations[:20]))}, asked"
        f" for through site(s) {', '.join(cover.sites)}, which no longer hold them:"
        " asked for again on their own"
    )
    await ledger.record_split(ctx.pool, [jobs], reason, owner=ctx.owner)
    log.warning("export.site_changed", locations=locations[:20], jobs=len(jobs), sites=cover.sites)
    return len(jobs)


def _left_out(error: RowError) -> None:
    """A bad row of a slice that is skipped anyway."""


def _key_of(error: RowError, slices: Slices) -> Key | None:
    """The slice of a bad row, or None if the row names no day (or no scope id, where rows
    have one)."""
    if error.day is None or (error.scope_id is None and slices.asked is not None):
        return None
    return slices.key_of(error.scope_id, error.day)


async def _new_query(ctx: Context, jobs: Sequence[Job], dt: DataType) -> str | None:
    """The query of a batch's new export, its whole sites named as the account's listing
    has them now; None when that listing changed since the claim so that the request line
    is over its bound (then the jobs are cut in two, not tried, and go out as two)."""
    sites = planner.NO_SITES
    if dt.scope_kind is ScopeKind.location and len({j.scope for j in jobs}) > 1:
        sites = await site_membership(ctx, jobs[0].account)
    block = planner.block_of(jobs, sites)
    query = block_query(ctx.registry, block)
    line = request_line_length(ctx.settings.vidicenter_url, query)
    if line <= ctx.settings.vidicenter_max_request_line or len(block.scopes) == 1:
        return query
    cut = planner.halves(jobs, scopes_first=True)
    assert cut is not None
    reason = f"a request line of {line} bytes, over INGEST_VIDICENTER_MAX_REQUEST_LINE"
    await ledger.record_split(ctx.pool, cut, reason, owner=ctx.owner)
    log.warning("export.split", jobs=len(jobs), halves=[len(h) for h in cut], error=reason)
    return None


async def work_vidicenter(ctx: Context, jobs: Sequence[Job]) -> Outcome:
    """Run one export for a batch of jobs that share it and load its rows."""
    first = jobs[0]
    try:
        dt = ctx.registry.get(first.data_type)
        query = first.export_query
        rebuild = False
        if query is None:
            query = await _new_query(ctx, jobs, dt)
            if query is None:
                return Outcome(released=len(jobs))
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
            expected = await _expected_rows(ctx, jobs, dt)
            with await _fetch_export(ctx, jobs, query, expected, rebuild=rebuild) as answer:
                outcome = await _load_rows(ctx, jobs, dt, answer, query, open_ids)
        if watch.lost:
            return Outcome()
        return outcome
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
    scopes = {j.scope for j in jobs}
    with structlog.contextvars.bound_contextvars(
        vendor=first.vendor.value,
        data_type=first.data_type,
        resolution=first.time_resolution,
        scope=str(first.scope) if len(scopes) == 1 else f"{len(scopes)} {first.scope.kind}s",
        day=first.day.isoformat(),
        days=len({j.day for j in jobs}),
        jobs=len(jobs),
        job_ids=job_ids(jobs),
    ):
        if first.vendor is Vendor.vidicenter:
            return await work_vidicenter(ctx, jobs)
        return await work_angus(ctx, jobs)
