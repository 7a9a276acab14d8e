"""`ingest status`: each data type's days (done, open, dead, missing) and the exit status."""

from __future__ import annotations

import argparse
import json
from datetime import date, timedelta

import asyncpg
import pytest

from ingest import ledger
from ingest.commands import status
from ingest.config import load_settings
from ingest.domain import JobSpec, Scope, Vendor
from ingest.ledger import reports

DAY = date(2024, 3, 1)


def _day(n: int) -> date:
    return DAY + timedelta(days=n)


async def _enqueue(pool: asyncpg.Pool, specs: list[JobSpec]) -> list[int]:
    async with pool.acquire() as conn:
        return await ledger.enqueue_jobs(conn, specs, force=False)


def _ots(location: int, day: int, resolution: str = "1h") -> JobSpec:
    return JobSpec(Vendor.vidicenter, "ots", resolution, Scope.location(location), _day(day))


async def test_coverage_gives_each_day_of_a_data_type_one_state_and_fills_missing_days(
    pool: asyncpg.Pool,
) -> None:
    # days 0..5 of ots 1h: 0 done; 1 half done half pending (open); 2 dead and done (dead);
    # 3 and 4 without a job (missing); 5 running
    ids = await _enqueue(
        pool,
        [_ots(1, 0), _ots(1, 1), _ots(2, 1), _ots(1, 2), _ots(2, 2), _ots(1, 5), _ots(1, 9, "15m")],
    )
    await pool.execute(
        "UPDATE ingest.jobs SET status = 'done' WHERE id = ANY($1)", [ids[0], ids[1], ids[4]]
    )
    await pool.execute("UPDATE ingest.jobs SET status = 'dead' WHERE id = $1", ids[3])
    await pool.execute("UPDATE ingest.jobs SET status = 'running' WHERE id = $1", ids[5])

    days = await reports.coverage(pool)
    hourly = [(d.day, d.state, d.done, d.open, d.dead) for d in days if d.time_resolution == "1h"]
    assert hourly == [
        (_day(0), "done", 1, 0, 0),
        (_day(1), "open", 1, 1, 0),
        (_day(2), "dead", 1, 0, 1),
        (_day(3), "missing", 0, 0, 0),
        (_day(4), "missing", 0, 0, 0),
        (_day(5), "open", 0, 1, 0),
    ]
    # another resolution is another data set, with its own span
    assert [(d.day, d.state) for d in days if d.time_resolution == "15m"] == [(_day(9), "open")]


async def test_status_shows_days_by_state_with_ranges_and_exits_1_while_a_job_is_dead(
    pool: asyncpg.Pool, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = await _enqueue(pool, [_ots(1, d) for d in (0, 1, 2, 6, 7)])
    await pool.execute("UPDATE ingest.jobs SET status = 'done' WHERE id = ANY($1)", ids[:3])
    await pool.execute("UPDATE ingest.jobs SET status = 'dead' WHERE id = $1", ids[4])
    settings = load_settings(database_url=db_url)

    assert await status.main(argparse.Namespace(json=False), settings) == 1
    text = capsys.readouterr().out
    assert "  vidicenter ots 1h, 2024-03-01..2024-03-08: 3 done, 1 open, 1 dead, 3 missing" in text
    assert "    missing  2024-03-04..2024-03-06" in text
    assert "    open     2024-03-07" in text
    assert "    dead     2024-03-08" in text

    assert await status.main(argparse.Namespace(json=True), settings) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["jobs"] == {"pending": 1, "running": 0, "done": 3, "dead": 1}
    (ots,) = report["coverage"]
    assert ots["days"] == {"done": 3, "open": 1, "dead": 1, "missing": 3}
    assert [(d["day"], d["state"]) for d in ots["not_done"]] == [
        ("2024-03-04", "missing"),
        ("2024-03-05", "missing"),
        ("2024-03-06", "missing"),
        ("2024-03-07", "open"),
        ("2024-03-08", "dead"),
    ]

    await pool.execute("UPDATE ingest.jobs SET status = 'done' WHERE id = $1", ids[4])
    assert await status.main(argparse.Namespace(json=True), settings) == 0


def test_day_ranges_join_consecutive_days_of_one_state_only() -> None:
    days = [(_day(0), "missing"), (_day(1), "missing"), (_day(2), "dead"), (_day(4), "dead")]
    assert status.day_ranges(days) == [
        (_day(0), _day(1), "missing"),
        (_day(2), _day(2), "dead"),
        (_day(4), _day(4), "dead"),
    ]


def test_a_long_list_of_ranges_is_cut_with_a_pointer_to_json() -> None:
    not_done = [{"day": _day(2 * n).isoformat(), "state": "missing"} for n in range(10)]
    coverage = [
        {
            "vendor": "vidicenter",
            "data_type": "ots",
            "time_resolution": "1h",
            "first_day": "2024-03-01",
            "last_day": "2024-03-20",
            "days": {"done": 10, "open": 0, "dead": 0, "missing": 10},
            "not_done": not_done,
        }
    ]
    lines = status.format_coverage(coverage, most=3)
    assert lines[1] == "  vidicenter ots 1h, 2024-03-01..2024-03-20: 10 done, 10 missing"
    assert len(lines) == 6 and lines[-1] == "    ... 7 more (--json lists every day)"
