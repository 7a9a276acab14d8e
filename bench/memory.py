"""Benchmark: peak resident memory of `ingest backfill` for finest viewers exports of growing size.

For each size (200,000, 1,000,000 and 3,000,000 rows by default), one export of one
location-day is backfilled by an `ingest backfill` subprocess against the simulator (in a
subprocess of its own), and the worker's peak resident set size is taken from the kernel
(`ru_maxrss` of the finished child, the VmHWM it reached), not from Python's allocations.
Prints one line per size and the ratio of each peak to the first one.

Usage: python bench/memory.py [--rows 200000,1000000,3000000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from datetime import date, timedelta

import aiohttp
from support import create_database, drop_database, free_port, wait_for

FIRST_DAY = date(2026, 1, 5)


async def configure(url: str, **knobs: object) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/_sim/config", json=knobs) as resp,
    ):
        resp.raise_for_status()


def backfill(env: dict[str, str], day: date) -> tuple[float, float, int]:
    """Run one backfill; its peak RSS in MB (from the kernel), seconds, and exit status."""
    args = [
        sys.executable, "-m", "ingest", "backfill", "--vendor", "vidicenter",
        "--data-type", "viewers", "--resolution", "finest",
        "--from", day.isoformat(), "--to", day.isoformat(), "--locations", "1001",
    ]  # fmt: skip
    started = time.monotonic()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_maxrss / 1024, time.monotonic() - started, proc.returncode


def measure(database_url: str, sizes: list[int]) -> None:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    sim = subprocess.Popen(
        [sys.executable, "-m", "ingest", "simulate", "--port", str(port), "--build-seconds", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=clean,
    )
    sim_url = f"http://127.0.0.1:{port}"
    try:
        url = asyncio.run(create_database(database_url, name))
        asyncio.run(wait_for(sim_url))
        env = clean | {
            "INGEST_DATABASE_URL": url,
            "INGEST_VIDICENTER_URL": sim_url,
            "INGEST_VIDICENTER_USERNAME": "demo",
            "INGEST_VIDICENTER_TOKEN": "demo-token",
            "INGEST_VIDICENTER_POLL_INITIAL_S": "0.5",
            "INGEST_VIDICENTER_MAX_ROWS_PER_EXPORT": str(max(sizes)),
            "INGEST_HTTP_TIMEOUT_S": "600",
            "INGEST_LOG_LEVEL": "warning",
        }
        results = []
        for i, rows in enumerate(sizes):
            asyncio.run(configure(sim_url, finest_rows_per_hour=-(-rows // 24)))
            peak, seconds, code = backfill(env, FIRST_DAY + timedelta(days=i))
            if code != 0:
                raise RuntimeError(f"the backfill of {rows} rows exited {code}")
            results.append((rows, peak, seconds))
            print(f"{rows:>9,} rows: peak RSS {peak:6.0f} MB, {seconds:5.1f} s", flush=True)
        base = results[0][1]
        ratios = ", ".join(f"{rows:,} rows {peak / base:.2f}x" for rows, peak, _ in results)
        print(f"peak RSS against the {results[0][0]:,}-row export: {ratios}")
    finally:
        sim.terminate()
        sim.wait(timeout=30)
        asyncio.run(drop_database(database_url, name))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="200000,1000000,3000000")
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    measure(args.database_url, [int(n) for n in args.rows.split(",")])


if __name__ == "__main__":
    main()
