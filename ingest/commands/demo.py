"""`ingest demo`: the whole job end to end on the built-in simulator."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import anyio
import asyncpg
from pydantic import SecretStr

from ingest import db, ledger, planner
from ingest.commands import EXIT_DEAD, EXIT_OK
from ingest.config import AngusStream, Settings, vidicenter_account_name
from ingest.datatypes import FINEST, DataType, OptionKind, Registry
from ingest.domain import JobSpec, Scope, Vendor
from ingest.errors import ConfigError
from ingest.jobspecs import VidiCenterRequest, angus_specs, vidicenter_specs
from ingest.ledger import accounts, reports
from ingest.pipeline import Context
from ingest.simulator import RunningSimulator, SimConfig, run_simulator
from ingest.topology import fleet_of
from ingest.wiring import open_connection, open_context, open_pool
from ingest.worker import loops_for, work_vendor

DEMO_DAYS = 3
# The demo makes fewer VidiCenter calls than the published 50 a minute (36), but the call
# budget counts every run's calls in the database: at 50, running it again within the
# minute would wait for the budget (59 s instead of 10). Its simulator (and so its client)
# allow more; the 3 exports and 2 connections at once stay as published.
DEMO_CALLS_PER_MINUTE = 600


def demo_requests(registry: Registry) -> list[tuple[DataType, str, dict[str, Any]]]:
    """Every data type of the registry at its default resolution and at `finest` where it
    offers it, each option at its default, and once more with each on/off option on.

    The biggest first, by the rows the worker expects of a job: it claims jobs in the
    order they were enqueued, and puts an export's first poll where the builds it has seen
    say the build ends, scaled by expected rows. Learned on a small aggregated export and
    scaled up to a raw one, that was 20 s after a 0.3 s build (an export place held all
    along); learned on a raw export first, the predictions only ever scale down."""
    out: list[tuple[DataType, str, dict[str, Any]]] = []
    for dt in registry:
        resolutions = [dt.default_resolution]
        if FINEST in dt.resolutions and dt.default_resolution != FINEST:
            resolutions.append(FINEST)
        for resolution in resolutions:
            out.append((dt, resolution, {}))
            for option in dt.options:
                usable = not (option.aggregate_only and resolution == FINEST)
                if option.kind is OptionKind.flag and usable:
                    out.append((dt, resolution, {option.name: True}))
    return sorted(out, key=lambda r: -_expected_rows_per_job(*r))


def _expected_rows_per_job(dt: DataType, resolution: str, options: dict[str, Any]) -> int:
    """The rows the worker expects of one location-day of the request, none seen yet."""
    return planner.estimator(dt, resolution, options, {})(Scope.location(0))


def demo_specs(
    registry: Registry,
    days: Sequence[date],
    locations: Sequence[str],
    sites: Sequence[str],
    streams: Sequence[str],
    account: str,
) -> list[JobSpec]:
    """The days of every VidiCenter data type (of the account) and of every Angus stream."""
    specs: list[JobSpec] = []
    for dt, resolution, options in demo_requests(registry):
        req = VidiCenterRequest(dt, resolution, days, {"locations": locations}, options)
        specs += vidicenter_specs(req, account=account, location_ids=locations, site_ids=sites)
    return specs + angus_specs(streams, "by_hour", days)


def demo_accounts(sim_config: SimConfig) -> tuple[str, list[str]]:
    """The demo's VidiCenter account (the simulator's user on the loopback host) and its
    Angus streams: the only accounts whose data a database the demo writes to may hold."""
    vidicenter = vidicenter_account_name("http://127.0.0.1", sim_config.vidicenter_username)
    return vidicenter, [s["client_id"] for s in sim_config.angus_streams]


async def refuse_real_data(settings: Settings, sim_config: SimConfig) -> None:
    """ConfigError (one line) when the database holds another account's jobs or rows;
    nothing is written before this check, not even a migration."""
    vidicenter, streams = demo_accounts(sim_config)
    async with open_connection(settings) as conn:
        found = await accounts.foreign_data(conn, vidicenter=[vidicenter], streams=streams)
    if found is not None:
        raise ConfigError(
            f"INGEST_DATABASE_URL: the demo writes simulated data, and this database holds "
            f"real data ({found}); point INGEST_DATABASE_URL at a database of its own"
        )


async def main(_args: argparse.Namespace, settings: Settings) -> int:
    """Serve the simulator in-process, ingest into the configured database, report."""
    started = time.monotonic()
    sim_config = SimConfig(
        build_seconds=0.3, finest_rows_per_hour=40, calls_per_minute=DEMO_CALLS_PER_MINUTE
    )
    await refuse_real_data(settings, sim_config)
    async with run_simulator(sim_config) as sim:
        demo = _demo_settings(settings, sim, sim_config)
        print(f"simulator serving at {sim.url}; database {_safe_url(settings.database_url)}")
        async with open_pool(demo) as pool:
            async with pool.acquire() as conn:
                applied = await db.migrate(conn)
            print(f"migrations applied: {len(applied)}")
            async with open_context(demo, pool) as wired:
                ((account, client),) = wired.vidicenter.items()
                fleet = await fleet_of(client)
                today = datetime.now(UTC).date()
                days = [today - timedelta(days=n) for n in range(DEMO_DAYS, 0, -1)]
                sites = fleet.sites_of(fleet.locations)
                specs = demo_specs(
                    wired.ctx.registry,
                    days,
                    fleet.locations,
                    sites,
                    list(wired.ctx.streams),
                    account,
                )
                _announce(wired.ctx, specs, days, fleet.locations)
                ids = await _work(wired.ctx, specs)
            rows = await reports.outcome_by_type(pool, ids)
            tables = await _table_counts(pool)
        stats = sim.state.stats()
    _report(rows, tables, stats, time.monotonic() - started)
    return EXIT_DEAD if any(r["status"] == "dead" for r in rows) else EXIT_OK


def _demo_settings(settings: Settings, sim: RunningSimulator, config: SimConfig) -> Settings:
    """The configured settings, pointed at the simulator and its credentials."""
    return settings.model_copy(
        update={
            "vidicenter_url": sim.url,
            "vidicenter_username": config.vidicenter_username,
            "vidicenter_token": SecretStr(config.vidicenter_token),
            "vidicenter_locations": ["all"],
            "vidicenter_accounts": [],
            "angus_console_url": sim.url,
            "angus_data_url": sim.url,
            "angus_streams": [AngusStream.model_validate(s) for s in config.angus_streams],
            "vidicenter_calls_per_minute": DEMO_CALLS_PER_MINUTE,
            "vidicenter_poll_initial_s": 0.5,
            "vidicenter_poll_max_s": 2.0,
            "worker_idle_poll_s": 0.5,
        }
    )


def _announce(
    ctx: Context, specs: Sequence[JobSpec], days: Sequence[date], locations: Sequence[str]
) -> None:
    requests = len(demo_requests(ctx.registry))
    print(
        f"ingesting {len(specs)} jobs, {days[0]} to {days[-1]}: every VidiCenter "
        f"data type ({requests} requests, each packed into as few exports as the limits "
        f"allow) for {len(locations)} locations, and {len(ctx.streams)} Angus streams\n"
        f"(the simulator allows {DEMO_CALLS_PER_MINUTE} calls a minute instead of the "
        "published 50, so that running the demo again within the minute does not wait "
        "for the call budget; 3 exports and 2 connections at once, as published) ..."
    )


async def _work(ctx: Context, specs: Sequence[JobSpec]) -> list[int]:
    """Enqueue the specs (forced: the demo always fetches) and work every vendor's jobs."""
    by_vendor: dict[Vendor, list[int]] = {}
    async with ctx.pool.acquire() as conn:
        for vendor in Vendor:
            mine = [s for s in specs if s.vendor is vendor]
            by_vendor[vendor] = await ledger.enqueue_jobs(conn, mine, force=True)
    async with anyio.create_task_group() as tg:
        for vendor, ids in by_vendor.items():
            tg.start_soon(_work_vendor, ctx, vendor, ids)
    return [i for ids in by_vendor.values() for i in ids]


async def _work_vendor(ctx: Context, vendor: Vendor, ids: list[int]) -> None:
    await work_vendor(ctx, vendor, loops=loops_for(ctx.settings, vendor), only_ids=ids)


def _report(
    rows: list[dict[str, Any]],
    tables: list[tuple[str, int]],
    stats: dict[str, Any],
    seconds: float,
) -> None:
    print()
    print(f"{'data type':<28} {'resolution':<10} {'status':<8} {'jobs':>5} {'rows':>9}")
    for r in rows:
        print(
            f"{r['data_type']:<28} {r['time_resolution']:<10} {r['status']:<8} "
            f"{r['jobs']:>5} {r['rows']:>9}" + (f"  {r['error']}" if r["error"] else "")
        )
    print()
    print(f"{'table':<42} {'rows':>9}")
    for name, n in tables:
        print(f"{name:<42} {n:>9}")
    print()
    violations = stats.get("violations", {})
    print(
        f"vendor calls: {stats.get('calls')} (VidiCenter {stats.get('vidicenter_calls')}, "
        f"Angus {stats.get('angus_calls')}), VidiCenter exports: "
        f"{stats.get('exports_started')}, limit violations: {violations}; {seconds:.1f} s"
    )


async def _table_counts(pool: asyncpg.Pool) -> list[tuple[str, int]]:
    out = []
    rows = await pool.fetch(
        "SELECT table_schema || '.' || table_name AS t FROM information_schema.tables"
        " WHERE table_schema IN ('vidicenter', 'angus') ORDER BY 1"
    )
    for r in rows:
        n = await pool.fetchval(f"SELECT count(*) FROM {r['t']}")
        out.append((r["t"], int(n)))
    return out


def _safe_url(url: str) -> str:
    """The database URL without its password, for the report."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{parts.username or ''}@{host}:{parts.port or 5432}{parts.path}"
