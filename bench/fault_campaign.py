"""Fault campaign: does `ingest backfill` keep VidiCenter's limits under network faults?

Runs `ingest backfill` (a subprocess) of hourly viewers against the simulator (served by
this process over real HTTP, at the published limits: 50 calls a minute, 3 exports, 2
connections) into a database of its own, once per scenario, and prints one line each:
the calls the vendor saw and those the call budget recorded (`ingest.vendor_calls`), the
violations the vendor counted, the most connections it saw at once, the faults met, the
rebuilds, the jobs and the time taken.

Scenarios (issue #14's reproductions, and every knob at once):
- drops: 10% of the connections dropped after the call was handled;
- slow: 20% of the answers later than the HTTP timeout (--slow-s, --timeout-s);
- all: 10% 5xx, 5% drops, 10% malformed bodies, 10% slow answers, 20% failed builds.
Each exports one location at a time, so the calls outnumber the 50 a minute allowed.
It measures the `ingest` its Python imports (see bench/backfill_tail.py to compare two).
Usage: python bench/fault_campaign.py [--scenario all] [--days 3] [--locations 6]
    [--slow-s 12 --timeout-s 10] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from ingest import db
from ingest.logs import configure_logging
from ingest.simulator import SimConfig, run_simulator

FIRST = date(2026, 1, 5)


def scenarios(slow_s: float, timeout_s: float) -> dict[str, tuple[dict[str, Any], dict[str, str]]]:
    """Simulator knobs and ingest settings of each scenario."""
    slow = {"slow_share": 0.2, "slow_seconds": slow_s}
    # one location an export: many exports, more calls than the 50 a minute allow
    one = {"INGEST_VIDICENTER_LOCATIONS_PER_EXPORT": "1"}
    timeout = one | {"INGEST_HTTP_TIMEOUT_S": str(timeout_s)}
    return {
        "drops": ({"drop_share": 0.1}, one),
        "slow": (slow, timeout),
        "all": (
            {
                "error_share": 0.1,
                "drop_share": 0.05,
                "malformed_share": 0.1,
                "slow_share": 0.1,
                "slow_seconds": slow_s,
                "fail_share": 0.2,
            },
            timeout | {"INGEST_JOB_MAX_ATTEMPTS": "10"},
        ),
    }


async def run_once(
    url: str, sim_url: str, settings: dict[str, str], days: int, locations: int
) -> tuple[int, float]:
    env = (
        {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
        | {
            "INGEST_DATABASE_URL": url,
            "INGEST_VIDICENTER_URL": sim_url,
            "INGEST_VIDICENTER_USERNAME": "demo",
            "INGEST_VIDICENTER_TOKEN": "demo-token",
            "INGEST_VIDICENTER_POLL_INITIAL_S": "1",
            "INGEST_JOB_RETRY_BASE_S": "1",
            "INGEST_LOG_FORMAT": "json",
            "INGEST_LOG_LEVEL": "error",
        }
        | settings
    )
    ids = ",".join(str(1001 + i) for i in range(locations))
    last = FIRST + timedelta(days=days - 1)
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ingest", "backfill", "--vendor", "vidicenter",
        "--data-type", "viewers", "--from", FIRST.isoformat(), "--to", last.isoformat(),
        "--locations", ids,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await proc.communicate()
    if proc.returncode not in (0, 1):
        raise SystemExit(f"backfill failed ({proc.returncode}):\n{err.decode()[-2000:]}")
    return proc.returncode, time.monotonic() - started


async def scenario(
    database_url: str, name: str, knobs: dict[str, Any], settings: dict[str, str], args: Any
) -> None:
    base = f"bench_faults_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(database_url)
    await admin.execute(f"CREATE DATABASE {base}")
    url = urlunsplit(urlsplit(database_url)._replace(path=f"/{base}"))
    try:
        conn = await asyncpg.connect(url)
        await db.migrate(conn)
        config = SimConfig(location_count=max(6, args.locations), build_seconds=2.0, **knobs)
        async with run_simulator(config) as sim:
            code, took = await run_once(url, sim.url, settings, args.days, args.locations)
            stats = sim.state.stats()
        recorded = await conn.fetchval("SELECT count(*) FROM ingest.vendor_calls")
        jobs = dict(await conn.fetch("SELECT status, count(*) FROM ingest.jobs GROUP BY 1"))
        await conn.close()
        v, f = stats["violations"], stats["faults"]
        print(
            f"{name}: vendor saw {stats['vidicenter_calls']} calls, budget recorded "
            f"{recorded}; violations calls {v['calls']} connections {v['connections']} "
            f"exports {v['exports']}; max connections {stats['max_connections_seen']}; "
            f"faults {f['errors']} 5xx {f['dropped']} dropped {f['malformed']} malformed "
            f"{f['slow']} slow, {stats['exports_failed']} failed builds, "
            f"{stats['exports_rebuilt']} rebuilt; jobs {jobs}; exit {code}; {took:.1f} s"
        )
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {base} WITH (FORCE)")
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=("drops", "slow", "all"), action="append")
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--locations", type=int, default=6)
    parser.add_argument("--slow-s", type=float, default=12.0)
    parser.add_argument("--timeout-s", type=float, default=10.0)
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "INGEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    configure_logging(level="error")
    chosen = scenarios(args.slow_s, args.timeout_s)
    for name in args.scenario or list(chosen):
        knobs, settings = chosen[name]
        asyncio.run(scenario(args.database_url, name, knobs, settings, args))


if __name__ == "__main__":
    main()
