"""Benchmark: the ledger with a year of a fleet's history in it, no vendor needed.

Enqueues `--days` days of `--types` at 1h for `--locations` locations (one VidiCenter
account), as `ingest backfill` would, into a throwaway database; plans the exports they
go out in (as `ingest backfill --plan` does); then times `--claims` claims of the packed
exports, as a worker makes them. Prints: jobs, enqueue seconds, the ledger's size on disk,
exports, the fewest vendor calls and the minutes of budget they take at 50 calls a minute,
seconds per claim and jobs per claim, and the process's peak RSS (VmHWM).

Usage: python bench/fleet_year.py [--locations 5000] [--days 365] [--types viewers]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from datetime import date, timedelta

from support import create_database, drop_database

from ingest import db, ledger, planner
from ingest.config import load_settings
from ingest.datatypes import REGISTRY
from ingest.domain import JobSpec, Scope, Vendor
from ingest.pipeline import limits_of, line_length_for

FIRST_DAY = date(2025, 1, 1)
ACCOUNT = "vidicenter.quividi.com/bench"


def vm_hwm_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def bench(args: argparse.Namespace) -> None:
    settings = load_settings(
        vidicenter_url="https://vidicenter.quividi.com",
        vidicenter_username="bench",
        vidicenter_token="bench-token",
    )
    name = f"bench_{uuid.uuid4().hex[:8]}"
    url = await create_database(args.database_url, name)
    try:
        days = [FIRST_DAY + timedelta(days=i) for i in range(args.days)]
        scopes = [Scope.location(1001 + i) for i in range(args.locations)]
        specs = [
            JobSpec(Vendor.vidicenter, data_type, "1h", scope, day, {}, ACCOUNT)
            for data_type in args.types.split(",")
            for day in days
            for scope in scopes
        ]
        pool = await db.create_pool(url)
        try:
            started = time.monotonic()
            async with pool.acquire() as conn:  # in one statement, as `ingest backfill` does
                await ledger.enqueue_jobs(conn, specs, force=False)
            enqueue_s = time.monotonic() - started
            size = await pool.fetchval(
                "SELECT pg_size_pretty(pg_total_relation_size('ingest.jobs'))"
            )
            print(f"jobs: {len(specs):,}  enqueued in {enqueue_s:.1f} s  ledger on disk: {size}")

            limits = limits_of(settings)
            line = line_length_for(settings, REGISTRY)
            started = time.monotonic()
            blocks = planner.plan_exports(
                specs,
                estimate_for=lambda g: planner.estimator(
                    REGISTRY.get(g.data_type), g.resolution, {}, {}
                ),
                limits=limits,
                line_length=line,
            )
            plan_s = time.monotonic() - started
            cost = planner.cost(blocks, calls_per_minute=50)
            print(
                f"exports: {cost.exports}  fewest calls: {cost.calls}  "
                f"budget: {cost.minutes:.1f} min at 50 calls a minute  "
                f"(planned in {plan_s:.1f} s)"
            )

            packing = ledger.Packing(limits=limits, line_length=line, registry=REGISTRY)
            times, sizes = [], []
            async with pool.acquire() as conn:
                for _ in range(args.claims):
                    started = time.monotonic()
                    jobs = await ledger.claim_batch(
                        conn, Vendor.vidicenter, owner="bench", lease_s=600, packing=packing
                    )
                    times.append(time.monotonic() - started)
                    sizes.append(len(jobs))
            claimed = zip(times, sizes, strict=True)
            print("claims: " + ", ".join(f"{t:.2f} s ({n:,} jobs)" for t, n in claimed))
        finally:
            await pool.close()
    finally:
        await drop_database(args.database_url, name)
    print(f"peak RSS (VmHWM): {vm_hwm_mb():.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--locations", type=int, default=5000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--types", default="viewers", help="comma-separated data types, at 1h")
    parser.add_argument("--claims", type=int, default=3)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
