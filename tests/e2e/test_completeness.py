"""A day is final only once the vendor has all of it: end to end, with the simulator's
`last_upload_timestamp` held back and then moved past the day's end."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import asyncpg
import pytest

from ingest.simulator import SimConfig, run_simulator

from .ingest_process import STREAM_1
from .ingest_process import ingest as angus_ingest
from .ingest_process import ingest_env as angus_env
from .vidicenter_support import (
    Simulator,
    assert_no_violations,
    assert_table_holds,
    backfill_args,
    day_query,
    ingest_env,
    run_ingest,
    simulator,
    vendor_rows,
)

pytestmark = pytest.mark.slow

SETTLE_S = 60
LATE, STOPPED = "1001", "1002"


def the_day() -> date:
    """Two days ago: over, but within the days a late upload may still complete."""
    return datetime.now(UTC).date() - timedelta(days=2)


def lag_before(day: date) -> float:
    """An upload lag that leaves the last upload an hour before the day's end."""
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC)
    return (datetime.now(UTC) - end).total_seconds() + 3600


async def completeness(pool: asyncpg.Pool) -> dict[str, tuple[str, bool, bool]]:
    rows = await pool.fetch("SELECT scope, status, complete, force FROM ingest.jobs")
    return {r["scope"]: (r["status"], r["complete"], r["force"]) for r in rows}


async def make_stale(pool: asyncpg.Pool) -> None:
    """As if an hour had passed since the jobs were done and the locations were listed."""
    await pool.execute("UPDATE ingest.jobs SET finished_at = finished_at - interval '1 hour'")
    await pool.execute("UPDATE ingest.fleets SET fetched_at = fetched_at - interval '1 hour'")


def exports_of(sim: Simulator) -> list[bool]:
    """Whether each build the simulator started was a forced rebuild."""
    return [c.forced for c in sim.starts()]


async def test_a_day_is_refreshed_until_its_last_upload_is_in_then_never_again(
    db_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    day = the_day()
    knobs = {"upload_lag_s": lag_before(day), "stopped_locations": STOPPED}
    async with simulator(build_seconds=0.05, **knobs) as sim:
        env = ingest_env(db_url, sim, settle_s=SETTLE_S)
        args = backfill_args("viewers", day, resolution="1h", locations=[LATE, STOPPED])

        ran = await run_ingest(env, *args, cwd=tmp_path)
        assert ran.code == 0, ran.explain()
        # 1001 has not uploaded past the day's end: open; 1002 stopped uploading a month
        # ago: reported, and not waited on
        assert await completeness(pool) == {
            f"location:{LATE}": ("done", False, False),
            f"location:{STOPPED}": ("done", True, False),
        }
        silent = [
            json.loads(line)
            for line in ran.err.splitlines()
            if '"completeness.locations_silent"' in line
        ]
        assert [s["locations"] for s in silent] == [[STOPPED]], ran.err
        status = json.loads((await run_ingest(env, "status", "--json", cwd=tmp_path)).out)
        assert [(o["data_type"], o["days"]) for o in status["open_days"]] == [
            ("viewers", [day.isoformat()])
        ]

        # an interval later, still not uploaded: refreshed (rebuilt), still open
        await make_stale(pool)
        ran = await run_ingest(env, "run", "--once", cwd=tmp_path)
        assert ran.code == 0, ran.explain()
        assert exports_of(sim) == [False, True]
        assert await completeness(pool) == {
            f"location:{LATE}": ("done", False, False),
            f"location:{STOPPED}": ("done", True, False),
        }

        # its last upload passes the day's end (with late rows): the next refresh is final
        sim.state.configure(upload_lag_s=0.0)
        sim.state.late_uploads()
        await make_stale(pool)
        ran = await run_ingest(env, "run", "--once", cwd=tmp_path)
        assert ran.code == 0, ran.explain()
        assert exports_of(sim) == [False, True, True]
        assert (await completeness(pool))[f"location:{LATE}"] == ("done", True, False)
        expected = vendor_rows(sim, day_query("viewers", "1h", day, locations=LATE))

        # final: never fetched again, by `run` or by a backfill without --force
        await make_stale(pool)
        ran = await run_ingest(env, "run", "--once", cwd=tmp_path)
        assert ran.code == 0, ran.explain()
        ran = await run_ingest(env, *args, cwd=tmp_path)
        assert ran.code == 0, ran.explain()
        assert exports_of(sim) == [False, True, True]
        status = json.loads((await run_ingest(env, "status", "--json", cwd=tmp_path)).out)
        assert status["open_days"] == []
        assert_no_violations(sim)

    await pool.execute("DELETE FROM vidicenter.viewers WHERE location_id <> $1", int(LATE))
    await assert_table_holds(pool, "viewers", expected)  # the late rows are in


async def test_a_backfill_that_reaches_today_leaves_today_open(
    db_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    today = datetime.now(UTC).date()
    async with simulator(build_seconds=0.05) as sim:
        env = ingest_env(db_url, sim, settle_s=SETTLE_S)
        args = backfill_args("ots", today - timedelta(days=1), today, locations=[LATE])
        ran = await run_ingest(env, *args, cwd=tmp_path)
        assert ran.code == 0, ran.explain()
    rows = await pool.fetch("SELECT day, status, complete FROM ingest.jobs ORDER BY day")
    # yesterday is final once the uploads are past its end plus the margin; today never is
    yesterday_final = datetime.now(UTC) >= datetime.combine(
        today, time.min, tzinfo=UTC
    ) + timedelta(seconds=SETTLE_S)
    assert [tuple(r) for r in rows] == [
        (today - timedelta(days=1), "done", yesterday_final),
        (today, "done", False),
    ]


async def test_an_angus_day_is_open_until_it_has_ended_plus_the_margin(
    db_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    today = datetime.now(UTC).date()
    async with run_simulator(SimConfig(build_seconds=0.05)) as sim:
        env = angus_env(db_url, sim, [STREAM_1], INGEST_SETTLE_S=str(SETTLE_S))
        first = (today - timedelta(days=2)).isoformat()
        args = ["backfill", "--vendor", "angus", "--from", first, "--to", today.isoformat()]
        ran = await angus_ingest(env, tmp_path, *args)
        assert ran.returncode == 0, ran.output
    rows = await pool.fetch("SELECT day, status, complete FROM ingest.jobs ORDER BY day")
    yesterday_final = datetime.now(UTC) >= datetime.combine(
        today, time.min, tzinfo=UTC
    ) + timedelta(seconds=SETTLE_S)
    assert [tuple(r) for r in rows] == [
        (today - timedelta(days=2), "done", True),
        (today - timedelta(days=1), "done", yesterday_final),
        (today, "done", False),
    ]
