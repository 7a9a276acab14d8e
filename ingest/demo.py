"""`ingest demo`: the whole job end to end on the built-in simulator."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from functools import partial
from urllib.parse import urlsplit

import anyio
import asyncpg
import structlog
from pydantic import SecretStr

from ingest import db, ledger
from ingest.cli import EXIT_DEAD, EXIT_OK, open_pool
from ingest.commands import build_context
from ingest.config import AngusStream, Settings
from ingest.datatypes import get_data_type
from ingest.jobspecs import VidiCenterRequest, angus_specs, vidicenter_specs
from ingest.ledger import JobSpec, Vendor
from ingest.simulator import SimConfig, run_simulator
from ingest.vendors.vidicenter import VidiCenterClient
from ingest.worker import work_vendor

log = structlog.get_logger(__name__)

# (data type, resolution, grouped by demographics, extrapolation amount): every data type
# of VidiCenter, raw and aggregated
DEMO_EXPORTS: list[tuple[str, str, bool, str | None]] = [
    ("viewers", "1h", False, None),
    ("viewers", "1h", True, None),
    ("viewers", "finest", False, None),
    ("viewers_apc", "finest", False, None),
    ("ots", "1h", False, None),
    ("gate", "1h", False, None),
    ("proof_of_play_by_location", "1h", False, None),
    ("proof_of_play_by_site", "1h", False, None),
    ("extrapolated_watchers", "1h", False, "100"),
    ("extrapolated_ots", "1h", False, "100"),
    ("vehicles", "1h", False, None),
    ("vehicles", "finest", False, None),
    ("footfall", "1h", False, None),
    ("footfall", "finest", False, None),
    ("vehicles_footfall", "1h", False, None),
    ("vehicles_footfall", "finest", False, None),
    ("im", "1h", False, None),
]
DEMO_DAYS = 3
# The published 50 calls a minute would stretch the demo's ~110 calls over three minutes:
# its simulator (and so its client) allow more. The 3 exports and 2 connections stay.
DEMO_CALLS_PER_MINUTE = 600


def demo_specs(
    days: list[date], locations: list[str], sites: list[str], streams: list[str]
) -> list[JobSpec]:
    """The days of every VidiCenter data type and of every Angus stream."""
    specs: list[JobSpec] = []
    for name, resolution, grouped, amount in DEMO_EXPORTS:
        req = VidiCenterRequest(
            data_type=get_data_type(name),
            resolution=resolution,
            days=days,
            sources={"locations": locations},
            group_by_demographics=grouped,
            extrapolation_amount=amount,
        )
        specs += vidicenter_specs(req, location_ids=locations, site_ids=sites)
    specs += angus_specs(streams, "by_hour", days)
    return specs


async def run_demo(settings: Settings) -> int:
    """Serve the simulator in-process, ingest into the configured database, report."""
    started = time.monotonic()
    sim_config = SimConfig(
        build_seconds=0.3, finest_rows_per_hour=40, calls_per_minute=DEMO_CALLS_PER_MINUTE
    )
    async with run_simulator(sim_config) as sim:
        demo = settings.model_copy(
            update={
                "vidicenter_url": sim.url,
                "vidicenter_username": sim_config.vidicenter_username,
                "vidicenter_token": SecretStr(sim_config.vidicenter_token),
                "angus_console_url": sim.url,
                "angus_data_url": sim.url,
                "angus_streams": [AngusStream.model_validate(s) for s in sim_config.angus_streams],
                "vidicenter_calls_per_minute": DEMO_CALLS_PER_MINUTE,
                "vidicenter_poll_initial_s": 0.5,
                "vidicenter_poll_max_s": 2.0,
                "worker_idle_poll_s": 0.5,
            }
        )
        print(f"simulator serving at {sim.url}; database {_safe_url(settings.database_url)}")
        async with open_pool(demo) as pool:
            async with pool.acquire() as conn:
                applied = await db.migrate(conn)
            print(f"migrations applied: {len(applied)}")
            async with build_context(demo, pool) as ctx:
                assert isinstance(ctx.vidicenter, VidiCenterClient)
                found = await ctx.vidicenter.list_locations()
                locations = [str(x["id"]) for x in found if x.get("active")]
                sites = sorted({str(x["site_id"]) for x in found if x.get("active")})
                today = datetime.now(UTC).date()
                days = [today - timedelta(days=n) for n in range(DEMO_DAYS, 0, -1)]
                specs = demo_specs(days, locations, sites, list(ctx.streams))
                async with pool.acquire() as conn:
                    ids = {
                        v: await ledger.enqueue_jobs(
                            conn, [s for s in specs if s.vendor is v], force=True
                        )
                        for v in (Vendor.vidicenter, Vendor.angus)
                    }
                print(
                    f"ingesting {len(specs)} jobs, {days[0]} to {days[-1]}: every VidiCenter "
                    f"data type ({len(DEMO_EXPORTS)} exports a day) for {len(locations)} "
                    f"locations, and {len(ctx.streams)} Angus streams\n"
                    f"(the simulator allows {DEMO_CALLS_PER_MINUTE} calls a minute instead of "
                    "the published 50 so that the demo takes seconds; 3 exports and 2 "
                    "connections at once, as published) ..."
                )
                async with anyio.create_task_group() as tg:
                    for vendor, job_ids in ids.items():
                        loops = (
                            demo.vidicenter_max_exports
                            if vendor is Vendor.vidicenter
                            else demo.angus_max_concurrency
                        )
                        tg.start_soon(
                            partial(
                                work_vendor,
                                ctx,
                                vendor,
                                loops=loops,
                                only_ids=job_ids,
                            )
                        )
            rows = await pool.fetch(
                """
                SELECT data_type, time_resolution, status, count(*) AS jobs,
                       coalesce(sum(rows_loaded), 0) AS rows, max(last_error) AS error
                FROM ingest.jobs WHERE id = ANY($1)
                GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
                """,
                [i for v in ids.values() for i in v],
            )
            tables = await _table_counts(pool)
        stats = sim.state.stats()
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
        f"vendor calls: {stats.get('calls')}, limit violations: {violations}; "
        f"{time.monotonic() - started:.1f} s"
    )
    dead = sum(r["jobs"] for r in rows if r["status"] == "dead")
    return EXIT_DEAD if dead else EXIT_OK


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
