"""`ingest run` through a database restart: the database goes away right after an export
took its place, and comes back a few seconds later. Nothing waits for a lease to run out,
and the outage is logged once when lost and once when back."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import asyncpg
import pytest

from ingest.simulator import SimConfig, run_simulator

from .db_proxy import database_proxy
from .test_service import fetch, ingest_env, job_statuses, running_worker, settled, wait_for

pytestmark = pytest.mark.slow

OUTAGE_S = 3.0


async def test_a_database_restart_right_after_an_export_took_its_place_parks_nothing(
    db_url: str, tmp_path: Path
) -> None:
    async with (
        run_simulator(SimConfig(build_seconds=2.0)) as sim,
        database_proxy(db_url) as (proxy, proxied_url),
    ):
        env = ingest_env(
            proxied_url,
            sim,
            [],
            INGEST_SCHEDULE_LOOKBACK_DAYS="1",
            INGEST_VIDICENTER_LOCATIONS_PER_EXPORT="1",
            INGEST_HTTP_TIMEOUT_S="5",
            INGEST_LOG_FORMAT="json",
            # the default lease: a batch parked until its lease runs out would take 300 s
            INGEST_JOB_LEASE_S="300",
        )
        async with running_worker(env, tmp_path) as worker:

            async def reserved() -> list[asyncpg.Record]:
                return await fetch(
                    db_url,
                    "SELECT id FROM ingest.jobs WHERE status = 'running'"
                    " AND export_reserved_at IS NOT NULL",
                )

            await wait_for(reserved, "an export taking its place", worker)
            await proxy.cut()
            await asyncio.sleep(OUTAGE_S)
            await proxy.start()

            finished = await wait_for(
                lambda: settled(db_url, 4),
                "every job finished, well before a lease runs out",
                worker,
                within=60,
                explain=lambda: job_statuses(db_url),
            )
            assert set(finished.values()) == {"done"}, finished
            returncode = await worker.stop()
        assert returncode == 0, worker.output()[-3000:]

    lines = [json.loads(line) for line in worker.output().splitlines() if line.startswith("{")]
    events = [e["event"] for e in lines]
    assert events.count("db.lost") == 1, events
    assert events.count("db.back") == 1, events
    (back,) = [e for e in lines if e["event"] == "db.back"]
    assert OUTAGE_S <= back["outage_s"] < OUTAGE_S + 10, back
    assert "db.unavailable" not in events  # each retry of each loop, at debug only
    assert "Failed to restore the pool connection floor" not in worker.output()
    assert sim.state.stats()["violations"] == {"exports": 0, "calls": 0, "connections": 0}
