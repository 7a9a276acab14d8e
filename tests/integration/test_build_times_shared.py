"""Export build times are kept in the database, per VidiCenter account and bounded: a new
process (a backfill, a restart, another replica) polls its first export when the build is
expected to end instead of probing again (the simulator over real HTTP, real PostgreSQL)."""

from __future__ import annotations

from datetime import date, timedelta

import asyncpg

from ingest.config import Settings, load_settings
from ingest.ledger.builds import BuildSeen, recent_builds, record_build
from ingest.simulator import RunningSimulator, SimConfig, run_simulator
from ingest.vendors.builds import KEPT
from ingest.vendors.vidicenter import export_kind, export_query
from ingest.wiring import open_context

ACCOUNT = "127.0.0.1/demo"
DAY = date(2024, 3, 5)
# 20 simulated seconds a build, 2 real ones
SIM = SimConfig(build_seconds=20.0, time_scale=10.0)


def _settings(url: str) -> Settings:
    return load_settings(
        vidicenter_url=url,
        vidicenter_username="demo",
        vidicenter_token="demo-token",
        vidicenter_poll_initial_s=0.2,
    )


def _query(location: str) -> str:
    return export_query("viewers", "1h", DAY, DAY + timedelta(days=1), {"locations": [location]})


async def _calls_of_one_export(sim: RunningSimulator, pool: asyncpg.Pool, location: str) -> int:
    """A new wiring (as a new process builds it) runs one export; the calls it took."""
    async with open_context(_settings(sim.url), pool) as wired:
        before = sim.state.counters.vidicenter_calls
        with await wired.vidicenter[ACCOUNT].run_export(_query(location), expected_rows=24):
            pass
        return sim.state.counters.vidicenter_calls - before


async def test_a_new_process_polls_its_first_export_when_due_instead_of_probing(
    pool: asyncpg.Pool,
) -> None:
    async with run_simulator(SIM) as sim:
        first = await _calls_of_one_export(sim, pool, "1001")
        kept = await recent_builds(pool, ACCOUNT, kept=KEPT)
        second = await _calls_of_one_export(sim, pool, "1002")

        await pool.execute("DELETE FROM ingest.build_times")
        forgotten = await _calls_of_one_export(sim, pool, "1003")

    # the first process knew nothing: it probed (0.2, 0.6, 1.4 s ... for a 2 s build)
    assert first >= 4
    [seen] = kept
    assert seen.kind == export_kind(_query("1001")) == "viewers:1h"
    assert seen.rows == 24 and 1.4 <= seen.seconds <= 3.5
    # the next one read it: start, then the finished answer
    assert second == 2
    # without what the database keeps, it would have probed again
    assert forgotten >= 4


async def test_each_account_keeps_its_own_newest_builds_of_each_kind(pool: asyncpg.Pool) -> None:
    for n in range(KEPT + 5):
        await record_build(pool, "a.test/alice", BuildSeen("viewers:1h", 1000, float(n)), kept=KEPT)
    await record_build(pool, "a.test/alice", BuildSeen("ots:1h", 500, 7.0), kept=KEPT)
    await record_build(pool, "a.test/bob", BuildSeen("viewers:1h", 1000, 99.0), kept=KEPT)

    alice = await recent_builds(pool, "a.test/alice", kept=KEPT)
    viewers = [b.seconds for b in alice if b.kind == "viewers:1h"]
    assert viewers == [float(n) for n in range(5, KEPT + 5)]  # the newest, oldest first
    assert [b for b in alice if b.kind == "ots:1h"] == [BuildSeen("ots:1h", 500, 7.0)]
    assert await recent_builds(pool, "a.test/bob", kept=KEPT) == [
        BuildSeen("viewers:1h", 1000, 99.0)
    ]
    # the table holds no more than that: the bound is kept as builds are added
    total = await pool.fetchval("SELECT count(*) FROM ingest.build_times")
    assert total == KEPT + 2
