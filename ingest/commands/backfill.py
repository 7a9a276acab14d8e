"""`ingest backfill`: enqueue a range of days, work it until every job is done or dead,
report."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import anyio
import anyio.abc
import asyncpg
import structlog

from ingest import ledger, planner
from ingest.commands import EXIT_DEAD, EXIT_INTERRUPTED, EXIT_OK
from ingest.config import Settings, VidiCenterAccount
from ingest.datatypes import REGISTRY, DataType, Registry
from ingest.domain import SOURCE_KINDS, JobSpec, ScopeKind, Vendor
from ingest.errors import UsageError
from ingest.jobspecs import (
    VidiCenterRequest,
    angus_specs,
    days_between,
    request_params,
    vidicenter_specs,
)
from ingest.ledger import reports
from ingest.ledger.fleets import stored_fleet
from ingest.ledger.jobs import Executor
from ingest.pipeline import Context, limits_of, line_length_for
from ingest.progress import BackfillResult, Progress, shown_while, summary
from ingest.topology import fleet_from, resolve_scope
from ingest.wiring import (
    Wired,
    hand_over_unassigned,
    open_context,
    open_pool,
    require_migrated,
)
from ingest.worker import DB_DOWN, loops_for, work_vendor

log = structlog.get_logger(__name__)


async def main(args: argparse.Namespace, settings: Settings, registry: Registry = REGISTRY) -> int:
    if getattr(args, "plan", False):
        return await print_plan(args, settings, registry)
    vendor = Vendor(args.vendor)
    today = datetime.now(UTC).astimezone(ZoneInfo(settings.day_timezone)).date()
    days = days_between(args.first, args.last, today=today)
    # every usage error is found before any I/O
    plan: _Plan = (
        _vidicenter_plan(args, settings, days, registry)
        if vendor is Vendor.vidicenter
        else _angus_plan(args, settings, days, registry)
    )
    progress = Progress()
    async with open_pool(settings) as pool:
        await require_migrated(pool)
        async with pool.acquire() as conn:
            await hand_over_unassigned(conn, settings, registry)
        async with open_context(
            settings,
            pool,
            on_outcome=progress.on_outcome,
            on_budget_wait=progress.on_budget_wait,
            on_poll_wait=progress.on_poll_wait,
            registry=registry,
        ) as wired:
            if args.enqueue_only:
                ids = await enqueue(wired.ctx, vendor, await plan.specs(wired), force=args.force)
                print(f"enqueued {len(ids)} job(s); `ingest run` will work them")
                return EXIT_OK
            result = await _work_shown(wired, vendor, plan, args, progress)
    print(summary(result))
    if result.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_DEAD if result.counts["dead"] else EXIT_OK


class _Plan:
    @property
    def accounts(self) -> list[str]:
        """The accounts whose jobs the backfill works."""
        raise NotImplementedError

    async def specs(self, wired: Wired) -> list[JobSpec]:
        raise NotImplementedError


@dataclass(frozen=True)
class _VidiCenterPlan(_Plan):
    request: VidiCenterRequest
    default_locations: Sequence[str] | None  # None: every active location
    account: str = ""
    default_from: str = "INGEST_VIDICENTER_LOCATIONS"  # where the default locations are set

    @property
    def accounts(self) -> list[str]:
        return [self.account]

    async def specs(self, wired: Wired) -> list[JobSpec]:
        req = self.request
        client = wired.vidicenter[self.account]
        # every location, site and tag named is checked: an unknown one is a usage error
        ids = await resolve_scope(
            client,
            req.sources,
            req.data_type.scope_kind,
            default_locations=self.default_locations,
            account=self.account,
            default_from=self.default_from,
            watch=wired.fleets.get(self.account),
        )
        if req.data_type.scope_kind is ScopeKind.extrapolated:
            return vidicenter_specs(req, account=self.account)
        return vidicenter_specs(req, account=self.account, location_ids=ids, site_ids=ids)

    def unchecked_specs(self) -> list[JobSpec]:
        """The specs with no vendor call (for `--plan`): the locations given by id, taken as
        they are; sites, tags or every location would need the vendor (UsageError)."""
        req = self.request
        if req.data_type.scope_kind is ScopeKind.extrapolated:
            return vidicenter_specs(req, account=self.account)
        sources = req.sources
        named = list(sources.get("locations") or [])
        if not any(sources.values()):
            named = list(self.default_locations or [])
        others = any(v for k, v in sources.items() if k != "locations")
        if req.data_type.scope_kind is not ScopeKind.location or others or not named:
            _refuse_lookup()
        return vidicenter_specs(req, account=self.account, location_ids=sorted(set(named)))


@dataclass(frozen=True)
class _AngusPlan(_Plan):
    streams: Sequence[str]
    resolution: str
    days: Sequence[date]

    @property
    def accounts(self) -> list[str]:
        return list(self.streams)

    async def specs(self, wired: Wired) -> list[JobSpec]:
        return angus_specs(self.streams, self.resolution, self.days)


def vidicenter_account(name: str | None, settings: Settings) -> VidiCenterAccount:
    """The account a VidiCenter command works for: the one named, or the only one."""
    configured = settings.vidicenter_account_list
    if not configured:
        raise UsageError(
            "INGEST_VIDICENTER_USERNAME and INGEST_VIDICENTER_TOKEN (or "
            "INGEST_VIDICENTER_ACCOUNTS) must be set to backfill VidiCenter"
        )
    names = ", ".join(a.name for a in configured)
    if name is None:
        if len(configured) > 1:
            raise UsageError(f"--account: {len(configured)} accounts are configured ({names})")
        return configured[0]
    found = next((a for a in configured if a.name == name), None)
    if found is None:
        raise UsageError(f"--account: {name} is not configured; configured: {names}")
    return found


def _data_type(args: argparse.Namespace, settings: Settings, registry: Registry) -> DataType:
    if not args.data_type:
        raise UsageError("--data-type is required with --vendor vidicenter")
    try:
        return registry.get(args.data_type)
    except KeyError as error:
        raise UsageError(f"--data-type: {error.args[0]}") from None


def _vidicenter_plan(
    args: argparse.Namespace, settings: Settings, days: Sequence[date], registry: Registry
) -> _VidiCenterPlan:
    account = vidicenter_account(args.account, settings)
    dt = _data_type(args, settings, registry)
    where = settings.locations_variable(account)
    sources = {kind: getattr(args, kind) for kind in SOURCE_KINDS if getattr(args, kind)}
    if not sources and dt.scope_kind is ScopeKind.extrapolated:
        if account.all_locations or not account.locations:
            raise UsageError(
                f"extrapolated types need --locations, --sites or tags (or a list in {where})"
            )
        sources = {"locations": list(account.locations)}
    req = VidiCenterRequest(
        data_type=dt,
        resolution=args.resolution or dt.default_resolution,
        days=days,
        sources=sources,
        options={o.name: getattr(args, o.name) for o in registry.options()},
    )
    request_params(req)  # refuse a bad option or resolution before any I/O
    default = None if account.all_locations else account.locations
    return _VidiCenterPlan(req, default, account.name, where)


def _angus_plan(
    args: argparse.Namespace, settings: Settings, days: Sequence[date], registry: Registry
) -> _AngusPlan:
    if not settings.angus_configured:
        raise UsageError("INGEST_ANGUS_STREAMS must be set to backfill Angus")
    vidicenter_only = [
        "data_type",
        "account",
        *SOURCE_KINDS,
        *(o.name for o in registry.options()),
    ]
    for name in vidicenter_only:
        if getattr(args, name):
            raise UsageError(f"--{name.replace('_', '-')} does not apply to --vendor angus")
    resolution = args.resolution or settings.angus_resolution
    if resolution not in ("by_hour", "by_day", "global"):
        raise UsageError("--resolution: Angus accepts by_hour, by_day or global")
    configured = [s.client_id for s in settings.angus_streams]
    streams = args.streams or configured
    if unknown := sorted(set(streams) - set(configured)):
        raise UsageError(f"--streams: {', '.join(unknown)} not in INGEST_ANGUS_STREAMS")
    return _AngusPlan(streams, resolution, days)


# --- working the run, its progress, its summary and Ctrl-C ----------------------------------


async def _work_shown(
    wired: Wired, vendor: Vendor, plan: _Plan, args: argparse.Namespace, progress: Progress
) -> BackfillResult:
    """Plan, enqueue and work the run with its progress shown from the start; SIGINT or
    SIGTERM stops it (its jobs are handed back) and the summary is still made."""
    ctx = wired.ctx

    async def work() -> str | None:
        async def plan_and_work() -> None:
            specs = await plan.specs(wired)
            await run_backfill(
                ctx, vendor, specs, force=args.force, progress=progress, accounts=plan.accounts
            )

        return await until_signal(plan_and_work)

    interrupted = await shown_while(
        progress,
        ctx.pool,
        work,
        title=_title(plan),
        out=sys.stderr,
        every_s=args.progress_every,
    )
    return await backfill_result(ctx.pool, progress, interrupted=interrupted)


def _title(plan: _Plan) -> str:
    """What the display is about: vendor, data type and resolution."""
    if isinstance(plan, _VidiCenterPlan):
        req = plan.request
        return f"vidicenter {req.data_type.name} {req.resolution}"
    assert isinstance(plan, _AngusPlan)
    return f"angus entities {plan.resolution}"


async def until_signal(work: Callable[[], Awaitable[None]]) -> str | None:
    """Run `work` until it ends or SIGINT/SIGTERM arrives; a signal cancels it, which hands
    its claimed jobs back to the queue. Returns the signal's name, or None."""
    caught: list[str] = []
    error: Exception | None = None
    scope = anyio.CancelScope()

    async def watch(*, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            task_status.started()
            async for signum in signals:
                if not caught:
                    caught.append(signal.Signals(signum).name)
                    log.info("backfill.interrupted", signal=caught[0])
                scope.cancel()

    async with anyio.create_task_group() as tg:
        await tg.start(watch)
        try:
            with scope:
                await work()
        except Exception as e:
            error = e
        tg.cancel_scope.cancel()
    if error is not None:
        raise error
    return caught[0] if caught else None


async def enqueue(
    ctx: Context, vendor: Vendor, specs: Sequence[JobSpec], *, force: bool
) -> list[int]:
    """Create the run's jobs (done ones stay done unless `force`); their ids."""
    async with ctx.pool.acquire() as conn:
        ids = await ledger.enqueue_jobs(conn, specs, force=force)
    log.info("backfill.enqueued", vendor=vendor.value, jobs=len(ids), force=force)
    return ids


async def run_backfill(
    ctx: Context,
    vendor: Vendor,
    specs: Sequence[JobSpec],
    *,
    force: bool,
    progress: Progress,
    accounts: Sequence[str] | None = None,
) -> None:
    """Enqueue the specs' jobs and work them (of `accounts`, None: every account of the
    specs) until each is done or dead.

    Credentials refused: the untried jobs stay pending (a later run with the right
    credentials does them) and the AuthError goes up, to end the command in one line.
    """
    if accounts is None:
        accounts = sorted({s.account for s in specs})
    ids = await enqueue(ctx, vendor, specs, force=force)
    progress.begin(ids, await reports.run_state(ctx.pool, ids))
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(_stop_when_finished, ctx.pool, ids, progress, stop)
        loops = loops_for(ctx.settings, vendor)
        state = await work_vendor(
            ctx, vendor, loops=loops, only_ids=ids, stop=stop, accounts=accounts
        )
        tg.cancel_scope.cancel()
    if state.auth_error is not None:
        raise state.auth_error


async def _stop_when_finished(
    pool: Executor, ids: Sequence[int], progress: Progress, stop: anyio.Event
) -> None:
    """Set `stop` once every job of the run is done or dead, so that no claim loop sits out
    an idle poll after the last one ends."""
    while True:
        with suppress(*DB_DOWN, asyncpg.PostgresError):
            counts = await ledger.job_counts(pool, ids)
            if counts["pending"] + counts["running"] == 0:
                stop.set()
                return
        await progress.next_outcome()


async def backfill_result(
    pool: Executor, progress: Progress, *, interrupted: str | None = None
) -> BackfillResult:
    """The run's summary from the ledger, with the rows this run loaded (not earlier runs)."""
    ids = progress.ids
    return BackfillResult(
        counts=await ledger.job_counts(pool, ids),
        rows=progress.rows,
        seconds=progress.elapsed_s(),
        dead=await reports.dead_jobs(pool, ids),
        already_done=progress.already_done,
        budget_wait_s=progress.budget_waited_s,
        interrupted=interrupted,
    )


# --- --plan: the exports a backfill would go out in, without calling the vendor ------------


def _refuse_lookup() -> None:
    """`--plan` asked for something only the vendor knows."""
    raise UsageError(
        "--plan calls no vendor, so it cannot look up sites, tags or every location: "
        "give --locations (or a list in INGEST_VIDICENTER_LOCATIONS)"
    )


async def print_plan(args: argparse.Namespace, settings: Settings, registry: Registry) -> int:
    """`backfill --plan`: print the jobs, the exports they would be packed into and what those
    cost at the configured budget; read the ledger, call no vendor, enqueue nothing."""
    if args.vendor != Vendor.vidicenter.value:
        raise UsageError("--plan: only VidiCenter jobs are packed into exports")
    if args.enqueue_only:
        raise UsageError("--plan and --enqueue-only do not go together")
    today = datetime.now(UTC).astimezone(ZoneInfo(settings.day_timezone)).date()
    days = days_between(args.first, args.last, today=today)
    request = _vidicenter_plan(args, settings, days, registry)
    specs = request.unchecked_specs()
    async with open_pool(settings) as pool:
        await require_migrated(pool)
        done = set() if args.force else await ledger.done_specs(pool, specs)
        todo = [s for i, s in enumerate(specs) if i not in done]
        seen: dict[str, int] = {}
        dt, res = request.request.data_type, request.request.resolution
        if todo and planner.observed(dt, res):
            first = todo[0]
            same = (first.vendor.value, first.data_type, res, ledger.params_json(first.params))
            scopes = sorted({s.scope for s in todo})
            seen = await ledger.rows_seen(
                pool, same, scopes, around=first.day, account=first.account
            )
        listing = await stored_fleet(pool, request.account)
    estimate = planner.estimator(dt, res, todo[0].params if todo else {}, seen)
    line = line_length_for(settings, registry)
    sites = fleet_from(listing[0]).sites if listing else planner.NO_SITES
    blocks = planner.plan_exports(
        todo,
        estimate_for=lambda _group: estimate,
        limits=limits_of(settings),
        line_length=line,
        force=args.force,
        sites=sites,
    )
    note = None
    if dt.scope_kind is ScopeKind.location:
        note = _sites_note(listing[1] if listing else None, len(sites.active))
    print(_plan_text(specs, len(done), blocks, estimate, line, settings, note))
    return EXIT_OK


def _sites_note(listed_at: datetime | None, sites: int) -> str:
    """Where the sites a plan names come from."""
    if listed_at is None:
        return (
            "no listing of the account's locations is stored yet: every location is listed"
            " by id (`ingest run` or a backfill of the account stores one)"
        )
    when = listed_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    return (
        "a site whose every active location is in an export is named (sites=) instead of its"
        f" locations: {sites} site(s), as listed at {when} UTC"
    )


_SHOWN = 20  # exports listed one by one; the others are counted


def _plan_text(
    specs: Sequence[JobSpec],
    done: int,
    blocks: Sequence[planner.Block],
    estimate: planner.Estimate,
    line: planner.LineLength,
    settings: Settings,
    note: str | None = None,
) -> str:
    first = specs[0]
    scopes = len({s.scope for s in specs})
    spans = sorted({s.day for s in specs})
    kind = first.scope.kind.value
    lines = [
        f"{len(specs)} job(s) of {first.data_type} at {first.time_resolution}: {scopes} {kind}"
        f"(s) x {len(spans)} day(s) from {spans[0]} to {spans[-1]}; {done} already done"
    ]
    lines.append(
        f"{len(blocks)} export(s), at most {settings.vidicenter_max_exports} running at once:"
    )
    for block in blocks[:_SHOWN]:
        rows = sum(estimate(s) for s in block.scopes) * len(block.days)
        named = block.sources.get("sites", []) if block.group.kind is ScopeKind.location else []
        through = len(block.scopes) - len(block.sources.get("locations", []))
        lines.append(
            f"  {block.start} to {block.end - timedelta(days=1)}: {len(block.days)} day(s) x "
            f"{len(block.scopes)} {kind}(s), {block.jobs} job(s), about {rows:,} rows, "
            f"request line {line(block)} bytes"
            + (f" ({len(named)} site(s) named for {through} location(s))" if named else "")
        )
    if len(blocks) > _SHOWN:
        lines.append(f"  ... and {len(blocks) - _SHOWN} more")
    if note is not None:
        lines.append(note)
    cost = planner.cost(blocks, calls_per_minute=settings.vidicenter_calls_per_minute)
    lines.append(
        f"at least {cost.calls} vendor call(s) (2 an export; more while a build is slow): "
        f"{cost.minutes:.1f} min at {settings.vidicenter_calls_per_minute} calls a minute, "
        "plus the vendor's build times"
    )
    lines.append("nothing was sent to VidiCenter and nothing was enqueued")
    return "\n".join(lines)
