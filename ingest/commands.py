"""The commands' wiring: with cli.py, the one place that builds concrete objects."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import asyncpg
import structlog

from ingest import backfill as bf
from ingest.budget import CallBudget
from ingest.cli import EXIT_DEAD, EXIT_OK, open_pool, require_migrated, worker_id
from ingest.config import Settings
from ingest.datatypes import ScopeKind, get_data_type
from ingest.errors import UsageError
from ingest.jobspecs import (
    VidiCenterRequest,
    angus_specs,
    days_between,
    request_params,
    vidicenter_specs,
)
from ingest.ledger import Vendor
from ingest.metrics import Metrics
from ingest.pipeline import Context
from ingest.vendors.angus import AngusClient
from ingest.vendors.http import new_session
from ingest.vendors.vidicenter import VidiCenterClient

log = structlog.get_logger(__name__)


@asynccontextmanager
async def build_context(
    settings: Settings, pool: asyncpg.Pool, metrics: Metrics | None = None
) -> AsyncIterator[Context]:
    """A pipeline context with a client for every configured vendor."""
    ctx = Context(pool=pool, settings=settings, owner=worker_id())
    traces = [metrics.trace_config()] if metrics is not None else None
    async with AsyncExitStack() as stack:
        if settings.vidicenter_configured:
            assert settings.vidicenter_username and settings.vidicenter_token
            session = await stack.enter_async_context(
                new_session(
                    max_connections=settings.vidicenter_max_connections,
                    timeout_s=settings.http_timeout_s,
                    trace_configs=traces,
                )
            )
            budget = CallBudget(
                pool,
                f"vidicenter:{settings.vidicenter_username}",
                per_minute=settings.vidicenter_calls_per_minute,
                at_once=settings.vidicenter_max_connections,
                # a call cannot be in flight longer than its timeout: a killed worker's
                # calls stop holding connection places then, and not sooner, since the
                # vendor may still be answering them (releasing them when the worker dies
                # let a third connection through in a test)
                stale_s=settings.http_timeout_s + 1,
            )
            ctx.vidicenter = VidiCenterClient(
                session,
                base_url=settings.vidicenter_url,
                username=settings.vidicenter_username,
                token=settings.vidicenter_token,
                budget=budget,
                retries=settings.http_retries,
                poll_initial_s=settings.vidicenter_poll_initial_s,
                poll_max_s=settings.vidicenter_poll_max_s,
                deadline_s=settings.vidicenter_export_deadline_s,
                on_poll_wait=metrics.poll_wait.observe if metrics is not None else None,
            )
        if settings.angus_configured:
            session = await stack.enter_async_context(
                new_session(
                    max_connections=settings.angus_max_concurrency,
                    timeout_s=settings.http_timeout_s,
                    trace_configs=traces,
                )
            )
            ctx.angus = AngusClient(
                session,
                console_url=settings.angus_console_url,
                data_url=settings.angus_data_url,
                timeout_s=settings.http_timeout_s,
                retries=settings.http_retries,
                max_concurrency=settings.angus_max_concurrency,
                token_margin_s=settings.angus_token_margin_s,
                max_pages=settings.angus_max_pages,
            )
            ctx.streams = {s.client_id: s for s in settings.angus_streams}
        yield ctx


def _ids(items: list[Any], key: str = "id") -> set[str]:
    """Ids of API objects (or of bare ids, as tag members may be given)."""
    return {str(x[key]) if isinstance(x, dict) else str(x) for x in items}


def _members(tags: list[dict[str, Any]], wanted: list[str], key: str) -> set[str]:
    found = {str(t.get("id")): t for t in tags}
    unknown = sorted(set(wanted) - set(found), key=int)
    if unknown:
        raise UsageError(f"--{key[:-1].replace('_', '-')}-tags: no such tag {', '.join(unknown)}")
    return {m for tag_id in wanted for m in _ids(found[tag_id].get(key) or [])}


async def resolve_scopes(
    client: VidiCenterClient, args: argparse.Namespace, settings: Settings, kind: ScopeKind
) -> list[str]:
    """The location ids (or site ids, for a per-site type) the command's scope stands for,
    through the topology calls where it names sites, tags or `all`."""
    locations: set[str] = set(args.locations or [])
    sites: set[str] = set(args.sites or [])
    if args.location_tags:
        locations |= _members(await client.list_location_tags(), args.location_tags, "locations")
    if args.site_tags:
        sites |= _members(await client.list_site_tags(), args.site_tags, "sites")
    if not (args.locations or args.sites or args.location_tags or args.site_tags):
        if settings.vidicenter_all_locations:
            found = await client.list_locations()
            locations = {str(x["id"]) for x in found if x.get("active", True)}
        else:
            locations = set(settings.vidicenter_locations)
    if kind is ScopeKind.site:
        if locations:  # the sites of the named locations
            found = await client.list_locations()
            sites |= {str(x["site_id"]) for x in found if str(x["id"]) in locations}
        return sorted(sites, key=int)
    for site in sorted(sites, key=int):
        locations |= _ids(await client.list_site_locations(site))
    return sorted(locations, key=int)


async def backfill(args: argparse.Namespace, settings: Settings) -> int:
    vendor = Vendor(args.vendor)
    days = days_between(args.first, args.last)
    if vendor is Vendor.vidicenter:
        if not settings.vidicenter_configured:
            raise UsageError(
                "INGEST_VIDICENTER_USERNAME and INGEST_VIDICENTER_TOKEN must be set "
                "to backfill VidiCenter"
            )
        if not args.data_type:
            raise UsageError("--data-type is required with --vendor vidicenter")
        try:
            dt = get_data_type(args.data_type)
        except KeyError as error:
            raise UsageError(f"--data-type: {error.args[0]}") from None
        sources = {
            k: v
            for k, v in (
                ("locations", args.locations),
                ("sites", args.sites),
                ("location_tags", args.location_tags),
                ("site_tags", args.site_tags),
            )
            if v
        }
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
            group_by_demographics=args.group_by_demographics,
            content_ids=args.content_ids,
            extrapolation_amount=args.extrapolation_amount,
        )
        request_params(req)  # refuse a bad option or resolution before any I/O
    else:
        if not settings.angus_configured:
            raise UsageError("INGEST_ANGUS_STREAMS must be set to backfill Angus")
        for name in (
            "data_type",
            "locations",
            "sites",
            "location_tags",
            "site_tags",
            "content_ids",
            "extrapolation_amount",
        ):
            if getattr(args, name):
                raise UsageError(f"--{name.replace('_', '-')} does not apply to --vendor angus")
        resolution = args.resolution or settings.angus_resolution
        if resolution not in ("by_hour", "by_day", "global"):
            raise UsageError("--resolution: Angus accepts by_hour, by_day or global")
        configured = [s.client_id for s in settings.angus_streams]
        streams = args.streams or configured
        unknown = sorted(set(streams) - set(configured))
        if unknown:
            raise UsageError(f"--streams: {', '.join(unknown)} not in INGEST_ANGUS_STREAMS")

    async with open_pool(settings) as pool:
        await require_migrated(pool)
        async with build_context(settings, pool) as ctx:
            if vendor is Vendor.vidicenter:
                assert isinstance(ctx.vidicenter, VidiCenterClient)
                if dt.scope_kind is ScopeKind.extrapolated:
                    specs = vidicenter_specs(req)
                else:
                    ids = await resolve_scopes(ctx.vidicenter, args, settings, dt.scope_kind)
                    specs = vidicenter_specs(req, location_ids=ids, site_ids=ids)
                loops = settings.vidicenter_max_exports
            else:
                specs = angus_specs(streams, resolution, days)
                loops = settings.angus_max_concurrency
            progress = bf.Progress(total=len(specs))
            result = await bf.backfill(
                ctx,
                vendor,
                specs,
                force=args.force,
                enqueue_only=args.enqueue_only,
                loops=loops,
                progress=progress,
            )
    if args.enqueue_only:
        print(f"enqueued {len(specs)} job(s); `ingest run` will work them")
        return EXIT_OK
    print(bf.summary(result))
    return EXIT_DEAD if result.counts["dead"] else EXIT_OK


async def run(settings: Settings, *, once: bool) -> int:
    from ingest.service import run_service

    return await run_service(settings, once=once)


async def demo(settings: Settings) -> int:
    from ingest.demo import run_demo

    return await run_demo(settings)


async def simulate(args: argparse.Namespace) -> int:
    from ingest.simulator import config_from_args, serve

    await serve(config_from_args(args), args.host, args.port)
    return EXIT_OK
