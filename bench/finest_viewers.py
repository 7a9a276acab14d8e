"""Benchmark: one 200,000-row finest viewers export from the simulator into PostgreSQL.

Prints, for the same rows in the same run:
- the pipeline's speed (download to a spooled file, decode, normalize, COPY into the
  table's slice, mark the job done, commit), in rows per second;
- the ceiling: a plain COPY of the same normalized rows (built beforehand, in memory) into
  the same table, emptied beforehand as it is for the pipeline, committed;
- their ratio, the figure to watch: the median over `--rounds` rounds, each round timing
  the pipeline and the ceiling back to back (in alternating order), so that both see the
  same load on a machine shared with other work; a warm-up round of each is not counted;
- the peak resident memory of this process while the pipeline runs (VmHWM, reset before
  the run through /proc/self/clear_refs), against the payload's size.

The simulator runs in a subprocess so that its memory and CPU are not counted.
Usage: python bench/finest_viewers.py [--rows 200000] [--rounds 9] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import msgspec
from pydantic import SecretStr
from support import free_port, wait_for

from ingest import db, ledger
from ingest.budget import CallBudget
from ingest.config import load_settings, vidicenter_account_name
from ingest.datatypes import get_data_type, table_for
from ingest.domain import JobSpec, Scope, Vendor
from ingest.logs import configure_logging
from ingest.normalize.vidicenter import normalize_slices
from ingest.pipeline import Context, work_vidicenter
from ingest.vendors.http import new_session
from ingest.vendors.vidicenter import VidiCenterClient, export_query
from ingest.wiring import retry_policy

DAY = date(2026, 1, 15)
LOCATION = "1001"


def rss_mb(field: str) -> float:
    """A memory figure of this process from the kernel (VmRSS, VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak() -> None:
    """Start VmHWM again from the current RSS (Linux 4.0+)."""
    Path("/proc/self/clear_refs").write_text("5")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    configure_logging(level="warning")
    port = free_port()
    sim = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ingest",
            "simulate",
            "--port",
            str(port),
            "--build-seconds",
            "0",
            "--finest-rows-per-hour",
            str(-(-args.rows // 24)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if not k.startswith("INGEST_")},
    )
    try:
        asyncio.run(measure(args.database_url, port, max(1, args.rounds)))
    finally:
        sim.terminate()
        sim.wait(timeout=10)


async def measure(database_url: str, port: int, rounds: int) -> None:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(database_url)
    await admin.execute(f"CREATE DATABASE {name}")
    url = urlunsplit(urlsplit(database_url)._replace(path=f"/{name}"))
    sim_url = f"http://127.0.0.1:{port}"
    try:
        await wait_for(sim_url)
        settings = load_settings(
            database_url=url,
            vidicenter_url=sim_url,
            vidicenter_username="demo",
            vidicenter_token=SecretStr("demo-token"),
            vidicenter_poll_initial_s=0.2,
        )
        pool = await db.create_pool(url, max_size=4)
        async with pool.acquire() as conn:
            await db.migrate(conn)
        dt = get_data_type("viewers")
        account = vidicenter_account_name(sim_url, "demo")
        next_day = DAY + timedelta(days=1)
        query = export_query("viewers", "finest", DAY, next_day, {"locations": [LOCATION]}, {})
        async with new_session(max_connections=2, timeout_s=300) as session:
            budget = CallBudget(pool, "bench", per_minute=50, at_once=2)
            client = VidiCenterClient(
                session,
                base_url=sim_url,
                username="demo",
                token=SecretStr("demo-token"),
                budget=budget,
                account=account,
                poll_initial_s=0.2,
            )
            # let the vendor build the export first: its build time is not ours
            with await client.run_export(query) as warm:
                rows = sum(len(msgspec.json.decode(s)) for s in warm.row_slices())
            auth = {"Authorization": "Basic " + base64.b64encode(b"demo:demo-token").decode()}
            async with session.get(f"{sim_url}/api/v1/data/?{query}", headers=auth) as resp:
                payload_bytes = len(await resp.read())
            gc.collect()

            ctx = Context(
                pool=pool,
                settings=settings,
                owner="bench",
                policy=retry_policy(settings),
                vidicenter={account: client},
            )

            async def pipeline_once(*, fresh: bool = True) -> float:
                async with pool.acquire() as conn:
                    if fresh:  # a first load: no earlier slice to replace
                        await conn.execute("TRUNCATE vidicenter.viewers_finest")
                    await ledger.enqueue_jobs(
                        conn,
                        [
                            JobSpec(
                                Vendor.vidicenter,
                                "viewers",
                                "finest",
                                Scope.location(LOCATION),
                                DAY,
                                {},
                                account,
                            )
                        ],
                        force=False,
                    )
                    # done again as a plain re-read of the built export: the vendor's
                    # build time (force_rebuild) is not what this measures
                    await conn.execute("UPDATE ingest.jobs SET status = 'pending', force = false")
                    jobs = await ledger.claim_batch(
                        conn, Vendor.vidicenter, owner="bench", lease_s=600
                    )
                started = time.perf_counter()
                outcome = await work_vidicenter(ctx, jobs)
                elapsed = time.perf_counter() - started
                assert outcome.done == 1 and outcome.rows == rows, outcome
                return elapsed

            await pipeline_once()  # warm-up: decoders built, statements prepared
            reingest_s = await pipeline_once(fresh=False)

            gc.collect()
            before = rss_mb("VmRSS")
            reset_peak()
            await pipeline_once()
            peak = rss_mb("VmHWM")

            # the ceiling: a plain COPY of the same normalized rows into the same table
            table = table_for(dt, "finest")
            with await client.run_export(query) as payload:
                records = [
                    r
                    for chunk in normalize_slices(
                        dt,
                        "finest",
                        payload.row_slices(),
                        scope=f"location:{LOCATION}",
                        account=account,
                    )
                    for r in chunk.rows.records
                ]
            columns = list(table.column_names)

            async def ceiling_once() -> float:
                async with pool.acquire() as conn:
                    # emptied as for the pipeline: a first load into an empty table
                    await conn.execute("TRUNCATE vidicenter.viewers_finest")
                    started = time.perf_counter()
                    async with conn.transaction():
                        await conn.copy_records_to_table(
                            "viewers_finest",
                            schema_name="vidicenter",
                            records=records,
                            columns=columns,
                        )
                    return time.perf_counter() - started

            await ceiling_once()  # warm-up
            pipeline_times: list[float] = []
            copy_times: list[float] = []
            cpu_times: list[float] = []
            for i in range(rounds):
                # back to back, in alternating order: both see the same load
                if i % 2:
                    copy_times.append(await ceiling_once())
                cpu = time.process_time()
                pipeline_times.append(await pipeline_once())
                cpu_times.append(time.process_time() - cpu)
                if not i % 2:
                    copy_times.append(await ceiling_once())
        await pool.close()
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()

    ratios = [c / p for c, p in zip(copy_times, pipeline_times, strict=True)]
    pipeline_s = statistics.median(pipeline_times)
    copy_s = statistics.median(copy_times)
    print(f"rows: {rows}, payload: {payload_bytes / 1e6:.1f} MB, rounds: {rounds}")
    print(
        f"pipeline (download, parse, normalize, load, commit): median {pipeline_s:.2f} s "
        f"({spread(pipeline_times)}), {rows / pipeline_s:,.0f} rows/s; "
        f"CPU of this process {statistics.median(cpu_times):.2f} s"
    )
    print(
        f"ceiling (plain COPY of the normalized rows): median {copy_s:.2f} s "
        f"({spread(copy_times)}), {rows / copy_s:,.0f} rows/s"
    )
    print(
        f"pipeline / ceiling: {statistics.median(ratios):.2f} "
        f"(median of the rounds' ratios: {' '.join(f'{r:.2f}' for r in ratios)})"
    )
    print(
        f"re-ingest of the same day (the old slice deleted first): {reingest_s:.2f} s, "
        f"{rows / reingest_s:,.0f} rows/s"
    )
    print(
        f"peak RSS of the process during the pipeline (VmHWM): {peak:.0f} MB, "
        f"{peak - before:.0f} MB over its {before:.0f} MB before "
        f"({(peak - before) * 1e6 / payload_bytes:.2f}x the payload)"
    )


def spread(values: list[float]) -> str:
    return f"{min(values):.2f} to {max(values):.2f}"


if __name__ == "__main__":
    main()
