"""Benchmark: how long `ingest backfill` goes on after its last job is finished.

Runs `ingest backfill` (a subprocess, logs as JSON) for a few days of a few locations of
hourly viewers against the simulator (served by this process over real HTTP) into a
database of its own, and prints, per run: the jobs, when the last `job.done` was logged
and when the command exited, both from its start, and the difference, the idle tail.
Usage: python bench/backfill_tail.py [--days 4] [--locations 2] [--runs 3] [--database-url URL]
It measures the `ingest` its Python imports: to compare two checkouts, run it with each
one's `.venv/bin/python` from a directory outside both (`python -m` looks in the working
directory first).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from datetime import date, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from ingest import db
from ingest.logs import configure_logging
from ingest.simulator import SimConfig, run_simulator

FIRST = date(2026, 1, 5)


async def run_once(url: str, sim_url: str, days: int, locations: int) -> tuple[int, float, float]:
    """(jobs, seconds to the last job.done, seconds to the exit) of one backfill."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")} | {
        "INGEST_DATABASE_URL": url,
        "INGEST_VIDICENTER_URL": sim_url,
        "INGEST_VIDICENTER_USERNAME": "demo",
        "INGEST_VIDICENTER_TOKEN": "demo-token",
        "INGEST_LOG_FORMAT": "json",
    }
    ids = ",".join(str(1001 + i) for i in range(locations))
    last = FIRST + timedelta(days=days - 1)
    started = time.time()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ingest", "backfill", "--vendor", "vidicenter",
        "--data-type", "viewers", "--from", FIRST.isoformat(), "--to", last.isoformat(),
        "--locations", ids, "--force",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await proc.communicate()
    ended = time.time() - started
    if proc.returncode != 0:
        raise SystemExit(f"backfill failed ({proc.returncode}):\n{err.decode()[-2000:]}")
    done = [
        json.loads(line)["timestamp"]
        for line in err.decode().splitlines()
        if line.startswith("{") and '"job.done"' in line
    ]
    last_done = max(datetime.fromisoformat(t).timestamp() for t in done) - started
    return days * locations, last_done, ended


async def measure(database_url: str, days: int, locations: int, runs: int) -> None:
    name = f"bench_tail_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(database_url)
    await admin.execute(f"CREATE DATABASE {name}")
    url = urlunsplit(urlsplit(database_url)._replace(path=f"/{name}"))
    try:
        conn = await asyncpg.connect(url)
        await db.migrate(conn)
        await conn.close()
        async with run_simulator(SimConfig(location_count=max(6, locations))) as sim:
            for n in range(runs):
                jobs, last_done, ended = await run_once(url, sim.url, days, locations)
                print(
                    f"run {n + 1}: {jobs} jobs, last job done at {last_done:.2f} s, "
                    f"exit at {ended:.2f} s, idle tail {ended - last_done:.2f} s"
                )
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=4)
    parser.add_argument("--locations", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    configure_logging(level="warning")
    asyncio.run(measure(args.database_url, args.days, args.locations, args.runs))


if __name__ == "__main__":
    main()
