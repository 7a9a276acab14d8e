"""Fleet-scale backfills end to end: exports of many locations and days, cut when they fail,
resumed after a kill, shared by two processes, and a poisoned row that costs one job."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.e2e.vidicenter_support import (
    Simulator,
    assert_no_violations,
    assert_table_holds,
    backfill_args,
    ingest_env,
    job_counts,
    run_ingest,
    simulator,
    vendor_rows,
)

pytestmark = pytest.mark.slow

FIRST = date(2024, 3, 1)
FLEET = tuple(str(1001 + i) for i in range(50))


def _served(sim: Simulator, locations: tuple[str, ...], first: date, days: int) -> list[Any]:
    """What the vendor serves for these locations and days of hourly viewers."""
    query = {
        "data_type": "viewers",
        "time_resolution": "1h",
        "start": f"{first.isoformat()}T00:00:00",
        "end": f"{(first + timedelta(days=days)).isoformat()}T00:00:00",
        "locations": ",".join(locations),
    }
    return [r | {"time_resolution": "1h"} for r in vendor_rows(sim, query)]


async def _rows_per_job(pool: asyncpg.Pool) -> Counter[int]:
    rows = await pool.fetch("SELECT rows_loaded FROM ingest.jobs")
    return Counter(r["rows_loaded"] for r in rows)


async def test_a_month_of_fifty_locations_lands_exact_rows_in_far_fewer_exports_than_jobs(
    db_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    last = FIRST + timedelta(days=29)
    async with simulator(build_seconds=0.2, location_count=50) as sim:
        env = ingest_env(db_url, sim)
        args = backfill_args("viewers", FIRST, last, resolution="1h", locations=FLEET)
        ran = await run_ingest(env, *args, cwd=tmp_path, limit_s=120)
        assert ran.code == 0, ran.explain()
        assert ran.out.startswith("1500 done, 0 dead"), ran.out
        stats = sim.stats()
        # 1,500 jobs, 36,000 rows: one export (its line and rows are well within bounds)
        assert stats["exports_started"] == 1, stats
        assert stats["exports_by_days"] == {"8-31": 1}, stats
        assert stats["vidicenter_calls"] <= 4, stats
        assert_no_violations(sim)
        expected = _served(sim, FLEET, FIRST, 30)
    await assert_table_holds(pool, "viewers", expected)
    assert await _rows_per_job(pool) == {24: 1500}  # each job credited with its own day


async def test_an_export_over_the_vendors_row_cap_is_cut_until_it_fits_and_lands_exact_rows(
    db_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    last = FIRST + timedelta(days=29)
    # the vendor takes at most 10,000 rows in an export (the planner does not know it):
    # 36,000 fail, 18,000 fail, 9,600 and 8,400 fit
    async with simulator(build_seconds=0.05, location_count=50, max_aggregated_rows=10_000) as sim:
        env = ingest_env(db_url, sim, job_max_attempts=2)
        args = backfill_args("viewers", FIRST, last, resolution="1h", locations=FLEET)
        ran = await run_ingest(env, *args, cwd=tmp_path, limit_s=120)
        assert ran.code == 0, ran.explain()
        stats = sim.stats()
        assert (stats["exports_started"], stats["exports_failed"]) == (1 + 2 + 4, 1 + 2), stats
        days = sorted(
            (
                date.fromisoformat(c.query["end"][:10]) - date.fromisoformat(c.query["start"][:10])
            ).days
            for c in sim.starts()
        )
        assert days == [7, 7, 8, 8, 15, 15, 30]
        assert_no_violations(sim)
        expected = _served(sim, FLEET, FIRST, 30)
    assert await job_counts(pool) == {"pending": 0, "running": 0, "done": 1500, "dead": 0}
    await assert_table_holds(pool, "viewers", expected)
    assert await _rows_per_job(pool) == {24: 1500}


async def test_two_backfills_over_overlapping_days_end_as_one_would(
    db_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    locations = FLEET[:6]
    async with simulator(build_seconds=0.3, location_count=6) as sim:
        env = ingest_env(db_url, sim, vidicenter_locations_per_export=3)
        ranges = [
            (FIRST, FIRST + timedelta(days=5)),
            (FIRST + timedelta(days=3), FIRST + timedelta(days=9)),
        ]
        runs = await asyncio.gather(
            *(
                run_ingest(
                    env,
                    *backfill_args("viewers", a, b, resolution="1h", locations=locations),
                    cwd=tmp_path,
                )
                for a, b in ranges
            )
        )
        for ran in runs:
            assert ran.code == 0, ran.explain()
        # every location-day was exported once, by one of the two
        assert set(sim.exported_days().values()) == {1}, sim.exported_days()
        assert len(sim.exported_days()) == 6 * 10
        assert_no_violations(sim)
        expected = _served(sim, locations, FIRST, 10)
    assert await job_counts(pool) == {"pending": 0, "running": 0, "done": 60, "dead": 0}
    await assert_table_holds(pool, "viewers", expected)
    assert await _rows_per_job(pool) == {24: 60}


async def test_a_poisoned_row_costs_only_its_own_location_day(
    db_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    locations = FLEET[:6]
    last = FIRST + timedelta(days=2)
    async with simulator(build_seconds=0.05, location_count=6, poison="1003:2024-03-02") as sim:
        env = ingest_env(db_url, sim, job_max_attempts=2)
        args = backfill_args("viewers", FIRST, last, resolution="1h", locations=locations)
        ran = await run_ingest(env, *args, cwd=tmp_path)
        assert ran.code == 1, ran.explain()
        assert ran.out.startswith("17 done, 1 dead"), ran.out
        first_export = sim.starts()[0].query
        # one export of every location: both sites hold all their active ones
        assert first_export["sites"] == "501,502" and "locations" not in first_export
        assert (first_export["start"][:10], first_export["end"][:10]) == (
            "2024-03-01",
            "2024-03-04",
        )
        served = _served(sim, locations, FIRST, 3)
    dead = await pool.fetch(
        "SELECT scope, day, attempts, last_error FROM ingest.jobs WHERE status = 'dead'"
    )
    assert [(r["scope"], r["day"]) for r in dead] == [("location:1003", date(2024, 3, 2))]
    reason = dead[0]["last_error"]
    assert "expected a number, got 'poisoned'" in reason or "got 'poisoned'" in reason, reason
    assert "(location 1003, day 2024-03-02)" in reason, reason
    assert reason in ran.out
    # every other location-day landed whole; the poisoned one has no row at all
    expected = [
        r
        for r in served
        if not (r["location_id"] == 1003 and r["period_start"].startswith("2024-03-02"))
    ]
    await assert_table_holds(pool, "viewers", expected)


@pytest.mark.parametrize(
    ("resolution", "first", "last", "bucket", "bucket_end"),
    [
        ("7d", date(2024, 3, 7), date(2024, 3, 10), date(2024, 3, 4), date(2024, 3, 11)),
        ("1M", date(2024, 10, 5), date(2024, 10, 8), date(2024, 10, 1), date(2024, 11, 1)),
        ("30d", date(2024, 1, 20), date(2024, 1, 21), date(2024, 1, 18), date(2024, 2, 17)),
    ],
)
async def test_a_backfill_at_a_coarse_resolution_stores_one_row_per_location_and_bucket(
    db_url: str,
    pool: asyncpg.Pool,
    tmp_path: Path,
    resolution: str,
    first: date,
    last: date,
    bucket: date,
    bucket_end: date,
) -> None:
    locations = FLEET[:6]
    async with simulator(build_seconds=0.05, location_count=6) as sim:
        env = ingest_env(db_url, sim)
        args = backfill_args("viewers", first, last, resolution=resolution, locations=locations)
        ran = await run_ingest(env, *args, cwd=tmp_path)
        assert ran.code == 0, ran.explain()
        # the export asked for the whole bucket, whatever days the backfill named
        (start,) = sim.starts()
        assert (start.query["start"][:10], start.query["end"][:10]) == (
            bucket.isoformat(),
            bucket_end.isoformat(),
        )
        query = {k: v for k, v in start.query.items() if k != "sites"}
        query |= {"locations": ",".join(locations)}
        expected = [r | {"time_resolution": resolution} for r in vendor_rows(sim, query)]
    jobs = await pool.fetch("SELECT day, status, rows_loaded FROM ingest.jobs")
    assert [(j["day"], j["status"], j["rows_loaded"]) for j in jobs] == [(bucket, "done", 1)] * 6
    await assert_table_holds(pool, "viewers", expected)
    assert {r["period_start"] for r in expected} == {f"{bucket.isoformat()} 00:00:00"}


async def test_the_service_packs_a_fleets_refresh_and_refreshes_today_at_every_tick(
    db_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    today = datetime.now(UTC).date()  # the schedule's day (INGEST_DAY_TIMEZONE is UTC)
    async with simulator(build_seconds=0.05, location_count=50) as sim:
        env = ingest_env(
            db_url,
            sim,
            vidicenter_locations=",".join(FLEET),
            vidicenter_schedule="viewers:1h",
            schedule_lookback_days=1,
            http_port=0,
        )
        first = await run_ingest(env, "run", "--once", cwd=tmp_path)
        assert first.code == 0, first.explain()
        # yesterday and today of 50 locations: 100 jobs, one export
        (export,) = sim.starts()
        assert sim.asked_locations(export.query) == list(FLEET)
        assert export.query["sites"] == "501,502"  # named: 1051 is inactive
        assert await job_counts(pool) == {"pending": 0, "running": 0, "done": 100, "dead": 0}
        before = await _finished_at(pool)

        # the next tick, however soon: today's jobs, done before it, are due again (in one
        # export, rebuilt with force_rebuild); yesterday's were done today: not yet
        second = await run_ingest(env, "run", "--once", cwd=tmp_path)
        assert second.code == 0, second.explain()
        (again,) = sim.starts()[1:]
        assert again.forced and again.query["start"][:10] == today.isoformat()
        assert again.query["sites"] == "501,502"
        assert_no_violations(sim)
    after = await _finished_at(pool)
    refreshed = {key for key in before if after[key] != before[key]}
    assert refreshed == {key for key in before if key[1] == today}
    assert len(refreshed) == 50


async def _finished_at(pool: asyncpg.Pool) -> dict[tuple[str, date], Any]:
    rows = await pool.fetch("SELECT scope, day, finished_at FROM ingest.jobs")
    return {(r["scope"], r["day"]): r["finished_at"] for r in rows}
