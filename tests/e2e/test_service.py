"""`ingest run` end to end: scheduling, draining, SIGTERM, health and metrics, a lost database.

The simulator serves on a real port in the test's event loop, PostgreSQL is real, and
`ingest` runs as a subprocess.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ingest import db
from ingest.metrics import Metrics
from ingest.server import Liveness, create_app, serving
from ingest.simulator import RunningSimulator, SimConfig, run_simulator

from .ingest_process import STREAM_1, STREAM_2, ingest
from .ingest_process import ingest_env as process_env

pytestmark = pytest.mark.slow

ACTIVE_LOCATIONS = [str(i) for i in range(1001, 1007)]  # the simulator's; 1007 is inactive
HOURS = 24


# --- running ingest -----------------------------------------------------------------------


def ingest_env(
    db_url: str, sim: RunningSimulator, streams: list[dict[str, str]], **extra: str
) -> dict[str, str]:
    """The shared test environment, plus a small schedule and a health port of its own."""
    service = {
        "INGEST_VIDICENTER_LOCATIONS": "1001,1002",
        "INGEST_VIDICENTER_SCHEDULE": "viewers:1h",
        "INGEST_VIDICENTER_POLL_MAX_S": "0.5",
        "INGEST_SCHEDULE_LOOKBACK_DAYS": "1",
        "INGEST_HTTP_HOST": "127.0.0.1",
        "INGEST_HTTP_PORT": "0",
    }
    return process_env(db_url, sim, streams, **(service | extra))


@dataclass
class Worker:
    """A running `ingest run`; its output goes to files, so no pipe fills up."""

    proc: asyncio.subprocess.Process
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def stop(self, within: float = 30) -> int:
        """SIGTERM, then its exit status."""
        self.proc.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.proc.wait(), within)


@asynccontextmanager
async def running_worker(env: dict[str, str], cwd: Path) -> AsyncIterator[Worker]:
    """`ingest run` in the background; killed at the end if the test did not stop it."""
    log = cwd / "worker.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ingest", "run", env=env, cwd=cwd, stdout=out, stderr=out
        )
    worker = Worker(proc, log)
    try:
        yield worker
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def wait_for(
    condition: Callable[[], Awaitable[Any]],
    what: str,
    worker: Worker | None = None,
    *,
    within: float = 30,
    explain: Callable[[], Awaitable[Any]] | None = None,
) -> Any:
    """Poll `condition` until it is truthy (returning its value), or fail after `within` s."""
    deadline = time.monotonic() + within
    while True:
        value = await condition()
        if value:
            return value
        exited = worker.proc.returncode if worker is not None else None
        if exited is not None or time.monotonic() > deadline:
            why = f"ingest run exited ({exited})" if exited is not None else "timed out"
            state = f"\n{await explain()}" if explain is not None else ""
            log = f"\n{worker.output()[-4000:]}" if worker is not None else ""
            pytest.fail(f"{why} waiting for {what}{state}{log}")
        await asyncio.sleep(0.1)


@asynccontextmanager
async def connect(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection of the test's own (not named `ingest` in pg_stat_activity)."""
    conn = await asyncpg.connect(db_url)
    try:
        yield conn
    finally:
        await conn.close()


async def fetch(db_url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    async with connect(db_url) as conn:
        return await conn.fetch(sql, *args)


async def job_statuses(db_url: str) -> dict[tuple[str, str, date], str]:
    rows = await fetch(db_url, "SELECT vendor, scope, day, status FROM ingest.jobs")
    return {(r["vendor"], r["scope"], r["day"]): r["status"] for r in rows}


async def settled(db_url: str, expected_jobs: int) -> dict[tuple[str, str, date], str] | None:
    """The jobs' statuses once all `expected_jobs` exist and none is pending or running."""
    statuses = await job_statuses(db_url)
    unfinished = {"pending", "running"} & set(statuses.values())
    return statuses if len(statuses) == expected_jobs and not unfinished else None


async def assert_rows_complete(
    db_url: str, locations: list[str], streams: list[str], days: list[date]
) -> None:
    """Every hour of every scope and day landed once, and the ledger counted them."""
    viewers = await fetch(
        db_url,
        "SELECT location_id, period_start::date AS day, count(*) AS n,"
        " count(DISTINCT (time_resolution, period_start)) AS distinct_n"
        " FROM vidicenter.viewers GROUP BY 1, 2",
    )
    assert {(str(r["location_id"]), r["day"]): (r["n"], r["distinct_n"]) for r in viewers} == {
        (loc, day): (HOURS, HOURS) for loc in locations for day in days
    }
    entities = await fetch(
        db_url,
        "SELECT stream, (period_start AT TIME ZONE 'UTC')::date AS day, count(*) AS n,"
        " count(DISTINCT (time_bucket, period_start)) AS distinct_n"
        " FROM angus.entities GROUP BY 1, 2",
    )
    assert {(r["stream"], r["day"]): (r["n"], r["distinct_n"]) for r in entities} == {
        (s, day): (HOURS, HOURS) for s in streams for day in days
    }
    loaded = await fetch(db_url, "SELECT vendor, sum(rows_loaded) AS n FROM ingest.jobs GROUP BY 1")
    expected = {"vidicenter": HOURS * len(locations) * len(days)}
    if streams:
        expected["angus"] = HOURS * len(streams) * len(days)
    assert {r["vendor"]: r["n"] for r in loaded} == expected


def recent_days(n: int) -> list[date]:
    """Today and the n - 1 days before it, in UTC (INGEST_DAY_TIMEZONE)."""
    today = datetime.now(UTC).date()
    return [today - timedelta(days=i) for i in range(n - 1, -1, -1)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def violations(sim: RunningSimulator) -> dict[str, int]:
    return dict(sim.state.stats()["violations"])


# --- the tests --------------------------------------------------------------------------


async def test_run_once_drains_today_and_yesterday_of_both_vendors_and_exits_0(
    db_url: str, tmp_path: Path
) -> None:
    async with run_simulator(SimConfig(build_seconds=0.3)) as sim:
        env = ingest_env(db_url, sim, [STREAM_1])
        result = await ingest(env, tmp_path, "run", "--once")

        assert result.returncode == 0, result.output
        days = recent_days(2)
        assert await job_statuses(db_url) == {
            **{
                ("vidicenter", f"location:{loc}", d): "done"
                for loc in ("1001", "1002")
                for d in days
            },
            **{("angus", "stream:stream-1", d): "done" for d in days},
        }
        await assert_rows_complete(db_url, ["1001", "1002"], ["stream-1"], days)
        assert violations(sim) == {"exports": 0, "calls": 0, "connections": 0}


async def test_run_once_with_all_locations_schedules_exactly_the_active_ones(
    db_url: str, tmp_path: Path
) -> None:
    async with run_simulator(SimConfig(build_seconds=0.3)) as sim:
        env = ingest_env(
            db_url, sim, [], INGEST_VIDICENTER_LOCATIONS="all", INGEST_SCHEDULE_LOOKBACK_DAYS="0"
        )
        result = await ingest(env, tmp_path, "run", "--once")

        assert result.returncode == 0, result.output
        (today,) = recent_days(1)
        assert await job_statuses(db_url) == {
            ("vidicenter", f"location:{loc}", today): "done" for loc in ACTIVE_LOCATIONS
        }
        assert violations(sim) == {"exports": 0, "calls": 0, "connections": 0}


async def test_sigterm_hands_running_exports_back_and_a_later_run_resumes_them(
    db_url: str, tmp_path: Path
) -> None:
    grace = 1.0
    async with run_simulator(SimConfig(build_seconds=30)) as sim:  # exports outlast the test
        env = ingest_env(
            db_url,
            sim,
            [],
            INGEST_SCHEDULE_LOOKBACK_DAYS="0",
            INGEST_SHUTDOWN_GRACE_S=str(grace),
        )
        async with running_worker(env, tmp_path) as worker:

            async def exports_out() -> list[asyncpg.Record]:
                rows = await fetch(
                    db_url,
                    "SELECT id, status, export_query, export_started_at IS NOT NULL AS started"
                    " FROM ingest.jobs ORDER BY id",
                )
                out = len(rows) == 2 and all(
                    r["status"] == "running" and r["export_query"] and r["started"] for r in rows
                )
                return rows if out else []

            running = await wait_for(exports_out, "both jobs running with their export out", worker)
            started = sim.state.stats()["exports_started"]

            signalled = time.monotonic()
            returncode = await worker.stop(within=grace + 15)
            took = time.monotonic() - signalled

        assert returncode == 0, worker.output()[-3000:]
        assert took < grace + 5
        handed_back = await fetch(
            db_url, "SELECT id, status, export_query FROM ingest.jobs ORDER BY id"
        )
        assert [(r["id"], r["status"], r["export_query"]) for r in handed_back] == [
            (r["id"], "pending", r["export_query"]) for r in running
        ]

        sim.state.configure(build_seconds=0.1)
        sim.state.advance(60)  # the exports handed back finish building meanwhile
        result = await ingest(env, tmp_path, "run", "--once")

        assert result.returncode == 0, result.output
        assert set((await job_statuses(db_url)).values()) == {"done"}
        stats = sim.state.stats()
        assert stats["exports_started"] == started  # resumed, not started again
        assert stats["exports_rebuilt"] == 0
        assert violations(sim) == {"exports": 0, "calls": 0, "connections": 0}
        await assert_rows_complete(db_url, ["1001", "1002"], [], recent_days(1))


async def test_health_readiness_and_metrics_are_served_while_running(
    db_url: str, tmp_path: Path
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with (
        run_simulator(SimConfig(build_seconds=1.0)) as sim,
        aiohttp.ClientSession() as http,
    ):
        env = ingest_env(
            db_url, sim, [STREAM_1], INGEST_SCHEDULE_LOOKBACK_DAYS="0", INGEST_HTTP_PORT=str(port)
        )
        async with running_worker(env, tmp_path) as worker:

            async def status(path: str) -> int:
                try:
                    async with http.get(base + path) as response:
                        return response.status
                except aiohttp.ClientError:
                    return 0

            assert await wait_for(lambda: status("/healthz"), "/healthz", worker) == 200
            assert await status("/readyz") == 200
            finished = await wait_for(lambda: settled(db_url, 3), "every job finished", worker)
            assert set(finished.values()) == {"done"}, finished

            async with http.get(base + "/metrics") as response:
                assert response.status == 200
                assert response.content_type == "text/plain"
                text = await response.text()
            returncode = await worker.stop()

        assert returncode == 0, worker.output()[-3000:]

    samples = {family.name: family.samples for family in text_string_to_metric_families(text)}

    def value(name: str, **labels: str) -> float:
        found = [s.value for s in samples[name] if labels.items() <= s.labels.items()]
        assert found, f"no {name} sample with {labels}"
        return sum(found)

    assert value("ingest_jobs", vendor="vidicenter", status="done") == 2
    assert value("ingest_jobs", vendor="angus", status="done") == 1
    assert value("ingest_rows_loaded", table="angus.entities") == HOURS
    assert value("ingest_rows_loaded", table="vidicenter.viewers") == 2 * HOURS
    assert value("ingest_exports_in_flight") == 0
    assert value("ingest_vendor_calls", status="200") > 0
    assert any(
        s.name == "ingest_export_poll_wait_seconds_count" and s.value >= 1
        for s in samples["ingest_export_poll_wait_seconds"]
    )
    for vendor in ("vidicenter", "angus"):
        assert value("ingest_last_success_timestamp_seconds", vendor=vendor) > time.time() - 120


async def test_readyz_is_503_on_a_database_with_pending_migrations_until_migrated(
    empty_db_url: str,
) -> None:
    pool = await db.create_pool(empty_db_url, max_size=2)
    try:
        app = create_app(pool, Metrics(), Liveness(max_silence_s=30))
        async with serving(app, "127.0.0.1", 0) as port, aiohttp.ClientSession() as http:
            base = f"http://127.0.0.1:{port}"
            async with http.get(base + "/readyz") as response:
                assert response.status == 503
                body = await response.json()
                assert body["ready"] is False
                assert body["reasons"][0].startswith("migrations pending: 001_ledger.sql")
            async with http.get(base + "/healthz") as response:
                assert response.status == 200  # alive, only not ready

            async with pool.acquire() as conn:
                await db.migrate(conn)

            async with http.get(base + "/readyz") as response:
                assert response.status == 200
    finally:
        await pool.close()


async def test_a_lost_database_connection_neither_stops_the_worker_nor_loses_a_job(
    db_url: str, tmp_path: Path
) -> None:
    async with run_simulator(SimConfig(build_seconds=2.0)) as sim:
        env = ingest_env(
            db_url,
            sim,
            [STREAM_1, STREAM_2],
            # a batch whose connection died is taken over once its lease runs out
            INGEST_JOB_LEASE_S="5",
            INGEST_JOB_MAX_ATTEMPTS="10",
        )
        database = db_url.rsplit("/", 1)[1]
        ingest_backends = (
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = 'ingest'"
        )
        async with connect(db_url) as admin, connect(db_url) as locker:
            # hold angus.entities so that the Angus jobs stop in the middle of their commit
            blocking = locker.transaction()
            await blocking.start()
            await locker.execute("LOCK TABLE angus.entities IN ACCESS EXCLUSIVE MODE")
            async with running_worker(env, tmp_path) as worker:

                async def committing() -> list[asyncpg.Record]:
                    rows: list[asyncpg.Record] = await admin.fetch(
                        "SELECT pid FROM pg_locks WHERE NOT granted"
                        " AND relation = 'angus.entities'::regclass"
                        f" AND pid IN ({ingest_backends})",
                        database,
                    )
                    return rows

                await wait_for(committing, "an Angus job committing", worker)
                # the connection drops in the middle of a commit, then a few more times
                await admin.execute(
                    f"SELECT pg_terminate_backend(pid) FROM ({ingest_backends}) AS b", database
                )
                await blocking.rollback()
                for _ in range(3):
                    await wait_for(
                        lambda: admin.fetch(ingest_backends, database), "a reconnection", worker
                    )
                    await admin.execute(
                        f"SELECT pg_terminate_backend(pid) FROM ({ingest_backends}) AS b", database
                    )

                finished = await wait_for(
                    lambda: settled(db_url, 8),
                    "every job finished",
                    worker,
                    explain=lambda: job_statuses(db_url),
                )
                assert worker.proc.returncode is None  # it rode the outages out
                assert set(finished.values()) == {"done"}, finished  # none dead: nothing lost
                returncode = await worker.stop()

        assert returncode == 0, worker.output()[-3000:]
        days = recent_days(2)
        await assert_rows_complete(db_url, ["1001", "1002"], ["stream-1", "stream-2"], days)
        assert violations(sim) == {"exports": 0, "calls": 0, "connections": 0}
