"""The vendor's limits hold under every network fault at once: a backfill subprocess against
the simulator with all its fault knobs on, at the published limits (50 calls a minute,
3 exports, 2 connections), with a small job count so that the budget has room to spare."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from pathlib import Path

import asyncpg
import pytest

from tests.e2e.vidicenter_support import (
    LOCATIONS,
    Simulator,
    assert_table_holds,
    backfill_args,
    day_query,
    ingest_env,
    job_counts,
    run_ingest,
    simulator,
    vendor_rows,
)

pytestmark = pytest.mark.slow

DAYS = (date(2024, 3, 5), date(2024, 3, 6))
HTTP_TIMEOUT_S = 1.5
FAULTS = {
    "seed": 232,  # meets every kind of fault within the run's first 22 calls
    "error_share": 0.1,  # 500, 502 or 503
    "drop_share": 0.1,  # handled, then the connection closed unanswered
    "malformed_share": 0.2,  # a finished answer cut in the middle
    "slow_share": 0.1,
    "slow_seconds": HTTP_TIMEOUT_S + 0.5,  # past the client's timeout: given up on
    "fail_share": 0.2,  # builds that end failed, rebuilt with force_rebuild
}


def rebuilds_not_asked_for(sim: Simulator) -> list[tuple[tuple[str, str], ...]]:
    """Exports rebuilt by force_rebuild with no failed build before it: a rebuild asked for
    twice (ingest forces a rebuild only after the vendor said the build failed)."""
    calls = defaultdict(list)
    for call in sim.calls:
        calls[call.identity].append(call)
    twice = []
    for identity, asked in calls.items():
        failed = False
        for call in asked:
            if call.state == "failed":
                failed = True
            elif call.state == "started":
                if call.forced and not failed:
                    twice.append(identity)
                failed = False
    return twice


async def test_every_fault_at_once_breaks_no_limit_and_loses_no_row(
    db_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    async with simulator(build_seconds=0.3, **FAULTS) as sim:
        env = ingest_env(
            db_url,
            sim,
            http_timeout_s=HTTP_TIMEOUT_S,
            vidicenter_locations_per_export=2,
            vidicenter_max_exports=3,
            vidicenter_calls_per_minute=50,
            vidicenter_max_connections=2,
            vidicenter_rebuilds_after_failure=5,
            job_max_attempts=10,
        )
        ran = await run_ingest(
            env, *backfill_args("viewers", DAYS[0], DAYS[1], resolution="1h"), cwd=tmp_path
        )
        assert ran.code == 0, ran.explain()
        stats = sim.stats()
        # the run met every fault ...
        assert stats["exports_failed"] > 0, stats
        # ... and broke no limit
        assert stats["violations"] == {"exports": 0, "calls": 0, "connections": 0}, stats
        assert stats["max_connections_seen"] <= 2, stats
        assert stats["max_concurrent_exports"] <= 3, stats
        assert stats["vidicenter_calls"] < 50, "the budget had room to spare"
        # every call the vendor saw passed the budget, and no rebuild was asked for twice
        recorded = await pool.fetchval("SELECT count(*) FROM ingest.vendor_calls")
        assert stats["vidicenter_calls"] == recorded, stats
        twice = rebuilds_not_asked_for(sim)
        assert twice == [], [(c.forced, c.state) for c in sim.calls if c.identity in twice]
        assert all(n > 0 for n in stats["faults"].values()), stats
        locations = ",".join(LOCATIONS)
        expected = [
            r | {"time_resolution": "1h"}
            for day in DAYS
            for r in vendor_rows(sim, day_query("viewers", "1h", day, locations=locations))
        ]
    assert await job_counts(pool) == {"pending": 0, "running": 0, "done": 12, "dead": 0}
    await assert_table_holds(pool, "viewers", expected)
