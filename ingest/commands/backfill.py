"""`ingest backfill`: enqueue a range of days, work it until every job is done or dead,
report."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import structlog

from ingest import ledger
from ingest.commands import EXIT_DEAD, EXIT_OK
from ingest.config import Settings
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
from ingest.pipeline import Context
from ingest.progress import BackfillResult, Progress, summary
from ingest.topology import resolve_scope
from ingest.wiring import Wired, open_context, open_pool, require_migrated
from ingest.worker import loops_for, work_vendor

log = structlog.get_logger(__name__)


async def main(args: argparse.Namespace, settings: Settings, registry: Registry = REGISTRY) -> int:
    vendor = Vendor(args.vendor)
    days = days_between(args.first, args.last)
    # every usage error is found before any I/O
    plan: _Plan = (
        _vidicenter_plan(args, settings, days, registry)
        if vendor is Vendor.vidicenter
        else _angus_plan(args, settings, days, registry)
    )
    progress = Progress()
    async with open_pool(settings) as pool:
        await require_migrated(pool)
        async with open_context(
            settings, pool, on_outcome=progress.update, registry=registry
        ) as wired:
            specs = await plan.specs(wired)
            progress.total = len(specs)
            result = await run_backfill(
                wired.ctx,
                vendor,
                specs,
                force=args.force,
                enqueue_only=args.enqueue_only,
                progress=progress,
            )
    if args.enqueue_only:
        print(f"enqueued {len(specs)} job(s); `ingest run` will work them")
        return EXIT_OK
    print(summary(result))
    return EXIT_DEAD if result.counts["dead"] else EXIT_OK


class _Plan:
    async def specs(self, wired: Wired) -> list[JobSpec]:
        raise NotImplementedError


@dataclass(frozen=True)
class _VidiCenterPlan(_Plan):
    request: VidiCenterRequest
    default_locations: Sequence[str] | None  # None: every active location

    async def specs(self, wired: Wired) -> list[JobSpec]:
        req = self.request
        if req.data_type.scope_kind is ScopeKind.extrapolated:
            return vidicenter_specs(req)
        assert wired.vidicenter is not None
        ids = await resolve_scope(
            wired.vidicenter,
            req.sources,
            req.data_type.scope_kind,
            default_locations=self.default_locations,
        )
        return vidicenter_specs(req, location_ids=ids, site_ids=ids)


@dataclass(frozen=True)
class _AngusPlan(_Plan):
    streams: Sequence[str]
    resolution: str
    days: Sequence[date]

    async def specs(self, wired: Wired) -> list[JobSpec]:
        return angus_specs(self.streams, self.resolution, self.days)


def _data_type(args: argparse.Namespace, settings: Settings, registry: Registry) -> DataType:
    if not settings.vidicenter_configured:
        raise UsageError(
            "INGEST_VIDICENTER_USERNAME and INGEST_VIDICENTER_TOKEN must be set "
            "to backfill VidiCenter"
        )
    if not args.data_type:
        raise UsageError("--data-type is required with --vendor vidicenter")
    try:
        return registry.get(args.data_type)
    except KeyError as error:
        raise UsageError(f"--data-type: {error.args[0]}") from None


def _vidicenter_plan(
    args: argparse.Namespace, settings: Settings, days: Sequence[date], registry: Registry
) -> _VidiCenterPlan:
    dt = _data_type(args, settings, registry)
    sources = {kind: getattr(args, kind) for kind in SOURCE_KINDS if getattr(args, kind)}
    if not sources and dt.scope_kind is ScopeKind.extrapolated:
        if settings.vidicenter_all_locations or not settings.vidicenter_locations:
            raise UsageError(
                "extrapolated types need --locations, --sites or tags "
                "(or a list in INGEST_VIDICENTER_LOCATIONS)"
            )
        sources = {"locations": list(settings.vidicenter_locations)}
    req = VidiCenterRequest(
        data_type=dt,
        resolution=args.resolution or dt.default_resolution,
        days=days,
        sources=sources,
        options={o.name: getattr(args, o.name) for o in registry.options()},
    )
    request_params(req)  # refuse a bad option or resolution before any I/O
    default = None if settings.vidicenter_all_locations else settings.vidicenter_locations
    return _VidiCenterPlan(req, default)


def _angus_plan(
    args: argparse.Namespace, settings: Settings, days: Sequence[date], registry: Registry
) -> _AngusPlan:
    if not settings.angus_configured:
        raise UsageError("INGEST_ANGUS_STREAMS must be set to backfill Angus")
    vidicenter_only = ["data_type", *SOURCE_KINDS, *(o.name for o in registry.options())]
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


async def run_backfill(
    ctx: Context,
    vendor: Vendor,
    specs: Sequence[JobSpec],
    *,
    force: bool,
    enqueue_only: bool,
    progress: Progress | None = None,
) -> BackfillResult:
    """Enqueue the specs' jobs and, unless `enqueue_only`, work them to the end."""
    started = time.monotonic()
    async with ctx.pool.acquire() as conn:
        ids = await ledger.enqueue_jobs(conn, specs, force=force)
    log.info("backfill.enqueued", vendor=vendor.value, jobs=len(ids), force=force)
    if not enqueue_only:
        if progress is not None:
            already = await ledger.job_counts(ctx.pool, ids)
            progress.done += already["done"]
            progress.dead += already["dead"]
        state = await work_vendor(ctx, vendor, loops=loops_for(ctx.settings, vendor), only_ids=ids)
        if state.auth_error is not None:
            await ledger.give_up_untried(ctx.pool, ids, f"not tried: {state.auth_error}")
        if progress is not None:
            progress.finish()
    return BackfillResult(
        counts=await ledger.job_counts(ctx.pool, ids),
        rows=await reports.rows_loaded(ctx.pool, ids),
        seconds=time.monotonic() - started,
        dead=await reports.dead_jobs(ctx.pool, ids),
    )
