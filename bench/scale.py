"""Benchmark: a fleet's backfill against the simulator at VidiCenter's published limits.

The simulator (in a subprocess) serves 1,000 locations with 50 calls a minute, 3 exports
at once and 2 connections, row caps of 3 and 20 million, and builds that take
`--build-seconds` plus `--build-seconds-per-million-rows` (simulated seconds; `--time-scale`
shortens them, never the 60 s call window). Jobs for `--days` days of viewers, ots and
footfall at 1h are enqueued, then one `ingest run --once` works them all with the default
settings, from an empty database (nothing known of build times). Prints, from the
simulator's counters and the worker's log: exports, calls (each export's, from its
`export.finished` event, and those sent again after an error), the makespan, the lower
bound (the fewest exports the bounds allow, two calls each, at 50 calls a minute), their
ratios, and the limits broken (which must be 0).

Usage: python bench/scale.py [--locations 1000] [--days 30] [--time-scale 1] [--log FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import subprocess
import sys
import time
import uuid
from datetime import date, timedelta
from typing import Any

import aiohttp
from support import create_database, drop_database, free_port

from ingest.config import load_settings
from ingest.datatypes import REGISTRY
from ingest.domain import JobSpec, Scope, Vendor
from ingest.pipeline import limits_of, line_length_for
from ingest.planner import Block, group_of, periods_per_job

TYPES = ("viewers", "ots", "footfall")
FIRST_DAY = date(2026, 1, 5)


async def sim_get(url: str, path: str) -> Any:
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            try:
                async with session.get(f"{url}{path}") as resp:
                    if resp.status == 200:
                        return await resp.json()
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError("the simulator does not answer")


def run(env: dict[str, str], *args: str) -> bytes:
    """Run `ingest ARGS`; its log (stderr)."""
    done = subprocess.run([sys.executable, "-m", "ingest", *args], env=env, capture_output=True)
    if done.returncode != 0:
        raise RuntimeError(f"ingest {args[0]} exited {done.returncode}: {done.stderr[-2000:]!r}")
    return done.stderr


def events(log: bytes, *names: str) -> list[dict[str, Any]]:
    """The worker's log events of these names (JSON lines)."""
    found = []
    for line in log.splitlines():
        if line.startswith(b"{"):
            event = json.loads(line)
            if event.get("event") in names:
                found.append(event)
    return found


def lower_bound(locations: list[str], days: int, sim_url: str) -> int:
    """The fewest exports the bounds allow: for each type, its rows over the rows one export
    may hold, or its location ids over the ids one request line holds, whichever is more."""
    settings = load_settings(vidicenter_url=sim_url)
    limits = limits_of(settings)
    line = line_length_for(settings, REGISTRY)
    exports = 0
    for name in TYPES:
        spec = JobSpec(
            Vendor.vidicenter,
            name,
            "1h",
            Scope.location(locations[0]),
            FIRST_DAY,
            {},
            "bench/bench",
        )
        one = Block(group_of(spec), (spec.scope,), (FIRST_DAY,))
        fixed = line(one) - len(locations[0])
        ids = sum(len(i) + 1 for i in locations) - 1
        rows = len(locations) * days * periods_per_job("1h")
        exports += max(
            math.ceil(rows / limits.row_cap("1h")),
            math.ceil(ids / (limits.max_line - fixed)),
            math.ceil(len(locations) / limits.max_scopes),
        )
    return exports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--locations", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--build-seconds", type=float, default=20.0)
    parser.add_argument("--build-seconds-per-million-rows", type=float, default=60.0)
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--log", help="write the worker's log (JSON lines) to this file")
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    name = f"bench_{uuid.uuid4().hex[:8]}"
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    knobs = {
        "location-count": args.locations,
        "site-count": max(1, args.locations // 20),
        "build-seconds": args.build_seconds,
        "build-seconds-per-million-rows": args.build_seconds_per_million_rows,
        "time-scale": args.time_scale,
    }
    sim_args = [f"--{k}={v}" for k, v in knobs.items()]
    sim = subprocess.Popen(
        [sys.executable, "-m", "ingest", "simulate", "--port", str(port), *sim_args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=clean,
    )
    sim_url = f"http://127.0.0.1:{port}"
    try:
        url = asyncio.run(create_database(args.database_url, name))
        asyncio.run(sim_get(sim_url, "/_sim/stats"))
        locations = [str(1001 + i) for i in range(args.locations)]
        env = clean | {
            "INGEST_DATABASE_URL": url,
            "INGEST_VIDICENTER_URL": sim_url,
            "INGEST_VIDICENTER_USERNAME": "demo",
            "INGEST_VIDICENTER_TOKEN": "demo-token",
            "INGEST_VIDICENTER_SCHEDULE": "viewers:1h",
            "INGEST_HTTP_PORT": "0",
            "INGEST_LOG_LEVEL": "warning",
        }
        last = FIRST_DAY + timedelta(days=args.days - 1)
        for data_type in TYPES:
            run(
                env, "backfill", "--vendor", "vidicenter", "--data-type", data_type,
                "--resolution", "1h", "--from", FIRST_DAY.isoformat(), "--to", last.isoformat(),
                "--locations", ",".join(locations), "--enqueue-only",
            )  # fmt: skip
        started = time.monotonic()
        # info: the export.finished events, one per export, with its calls
        log = run(env | {"INGEST_LOG_LEVEL": "info", "INGEST_LOG_FORMAT": "json"}, "run", "--once")
        makespan = time.monotonic() - started
        if args.log:
            with open(args.log, "wb") as out:
                out.write(log)
        stats = asyncio.run(sim_get(sim_url, "/_sim/stats"))
    finally:
        sim.terminate()
        sim.wait(timeout=30)
        asyncio.run(drop_database(args.database_url, name))

    exports, calls = stats["exports_started"], stats["vidicenter_calls"]
    bound = lower_bound(locations, args.days, sim_url)
    bound_s = 2 * bound / 50 * 60
    violations = stats["violations"]
    print(
        f"{args.locations} locations x {args.days} days x {len(TYPES)} types at 1h "
        f"({args.locations * args.days * len(TYPES):,} jobs, "
        f"{args.locations * args.days * len(TYPES) * 24:,} rows); builds "
        f"{args.build_seconds:g} s + {args.build_seconds_per_million_rows:g} s per million rows"
        f" at time scale {args.time_scale:g}"
    )
    print(f"exports: {exports}  by rows: {json.dumps(stats['exports_by_rows'])}")
    per_export = sorted(int(e["calls"]) for e in events(log, "export.finished"))
    retries = [
        str(e["error"]).rsplit(": ", 1)[-1]
        for e in events(log, "http.retry_scheduled")
        if "/data/" in str(e.get("what"))
    ]
    print(
        f"calls: {calls} ({sum(per_export)} for the {len(per_export)} exports, "
        f"{calls - sum(per_export)} for topology); per export: average "
        f"{sum(per_export) / max(1, len(per_export)):.2f}, max {max(per_export, default=0)} "
        f"{per_export}; export requests sent again after an error: {len(retries)} {retries}"
    )
    print(
        f"lower bound: {bound} exports x 2 calls = {2 * bound} calls, {bound_s:.1f} s at 50 a "
        f"minute; calls / bound: {calls / (2 * bound):.2f}"
    )
    waves = math.ceil(exports / 3)
    build_s = (
        args.build_seconds
        + args.build_seconds_per_million_rows * stats["largest_export_rows"] / 1e6
    )
    print(
        f"makespan: {makespan:.1f} s; makespan / bound: {makespan / bound_s:.1f} "
        f"(the builds alone, {waves} waves of 3 exports of up to {build_s / args.time_scale:.0f} s,"
        f" take {waves * build_s / args.time_scale:.0f} s)"
    )
    print(
        f"limits broken: {sum(violations.values())} {json.dumps(violations)}; "
        f"max exports at once {stats['max_concurrent_exports']}, "
        f"max connections {stats['max_connections_seen']}"
    )


if __name__ == "__main__":
    main()
