"""The reporting views (schema `reports`) count every watcher once, and every SQL example
of docs/data-guide.md runs against the migrated schema."""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from ingest import db

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "data-guide.md"
DAY = date(2026, 3, 10)


def at(hour: int, minute: int = 0, day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute)


async def insert(conn: asyncpg.Connection, table: str, **values: Any) -> None:
    names = ", ".join(values)
    marks = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    await conn.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", *values.values())


async def viewers(
    conn: asyncpg.Connection,
    period_start: datetime,
    watchers: int | None,
    *,
    gender: int | None = None,
    age: int | None = None,
    resolution: str = "1h",
    location: int = 1,
    dwell: float | None = None,
) -> None:
    await insert(
        conn,
        "vidicenter.viewers",
        location_id=location,
        time_resolution=resolution,
        period_start=period_start,
        gender=gender,
        age=age,
        watcher_count=watchers,
        dwell_time_in_tenths_of_sec=dwell,
    )


async def add_sample_rows(conn: asyncpg.Connection) -> None:
    """An hour of location 1 loaded both as totals and grouped by demographics."""
    await viewers(conn, at(10), 5, dwell=120)
    await viewers(conn, at(10), 3, gender=1, age=3, dwell=70)
    await viewers(conn, at(10), 2, gender=2, age=2, dwell=50)
    await viewers(conn, at(10), 0, gender=0, age=0)  # the vendor's all-unknown row
    await viewers(conn, at(11), 4, dwell=30)
    await viewers(conn, at(11), 4, gender=1, age=3, dwell=30)
    await viewers(conn, at(12), None)  # placeholder: no data for the hour


async def test_the_views_apply_to_a_fresh_database(empty_db_url: str) -> None:
    conn = await asyncpg.connect(empty_db_url)
    try:
        applied = await db.migrate(conn)
        views = await conn.fetch(
            "SELECT table_name FROM information_schema.views WHERE table_schema = 'reports'"
        )
    finally:
        await conn.close()
    assert "004_views.sql" in applied
    assert {r["table_name"] for r in views} >= {
        "viewers_totals",
        "viewers_demographics",
        "viewers_daily",
        "ots_daily",
        "content_audience",
        "day_completeness",
    }


async def test_totals_and_demographics_each_count_every_watcher_once(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        await add_sample_rows(conn)
        table = await conn.fetchval("SELECT sum(watcher_count) FROM vidicenter.viewers")
        totals = await conn.fetchval("SELECT sum(watcher_count) FROM reports.viewers_totals")
        demographics = await conn.fetchval(
            "SELECT sum(watcher_count) FROM reports.viewers_demographics"
        )
        periods = await conn.fetchval("SELECT count(*) FROM reports.viewers_totals")
    assert table == 18  # the trap: every watcher twice
    assert (totals, demographics, periods) == (9, 9, 3)


async def test_viewers_totals_convert_tenths_of_seconds_and_flag_placeholders(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        await add_sample_rows(conn)
        rows = await conn.fetch(
            "SELECT period_start, watcher_count, dwell_time_s, placeholder"
            " FROM reports.viewers_totals ORDER BY period_start"
        )
    assert [tuple(r) for r in rows] == [
        (at(10), 5, 12.0, False),
        (at(11), 4, 3.0, False),
        (at(12), None, None, True),
    ]


async def test_demographic_labels_follow_the_documented_codes_and_null_outside(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        await add_sample_rows(conn)
        await viewers(conn, at(13), 1, gender=7, age=9)  # outside the documented lists
        rows = await conn.fetch(
            "SELECT gender, gender_label, age, age_label FROM reports.viewers_demographics"
            " WHERE period_start = $1 ORDER BY gender",
            at(10),
        )
        odd = await conn.fetchrow(
            "SELECT gender, gender_label, age_label FROM reports.viewers_demographics"
            " WHERE period_start = $1",
            at(13),
        )
    assert [tuple(r) for r in rows] == [
        (0, "unknown", 0, "unknown"),
        (1, "male", 3, "adult"),
        (2, "female", 2, "young adult"),
    ]
    assert tuple(odd) == (7, None, None)


async def test_viewers_daily_sums_total_rows_per_resolution_never_across_them(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        await add_sample_rows(conn)
        # the same hour 10 again at 15 minutes: a second description of the same watchers
        for quarter, n in enumerate((1, 2, 1, 1)):
            await viewers(conn, at(10, 15 * quarter), n, resolution="15m")
        await viewers(conn, at(0), 100, resolution="7d")  # spans a week: not one day's
        rows = await conn.fetch(
            "SELECT time_resolution, day, watcher_count, periods, placeholder_periods"
            " FROM reports.viewers_daily ORDER BY time_resolution"
        )
    assert [tuple(r) for r in rows] == [("15m", DAY, 5, 4, 0), ("1h", DAY, 9, 3, 1)]


async def test_ots_daily_sums_per_location_and_day_and_counts_placeholders(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        for hour, ots, watchers in ((9, 10, 3), (10, 20, 5), (11, None, None)):
            await insert(
                conn,
                "vidicenter.ots",
                location_id=1,
                time_resolution="1h",
                period_start=at(hour),
                ots_count=ots,
                watcher_count=watchers,
                duration=None if ots is None else 3600.0,
            )
        await insert(
            conn,
            "vidicenter.ots",
            location_id=1,
            time_resolution="1h",
            period_start=at(9, day=date(2026, 3, 11)),
            ots_count=7,
            watcher_count=1,
            duration=3600.0,
        )
        rows = await conn.fetch(
            "SELECT day, ots_count, watcher_count, duration_s, periods, placeholder_periods"
            " FROM reports.ots_daily ORDER BY day"
        )
    assert [tuple(r) for r in rows] == [
        (DAY, 30, 8, 7200.0, 3, 1),
        (date(2026, 3, 11), 7, 1, 3600.0, 1, 0),
    ]


async def test_content_audience_has_a_row_per_viewer_and_content(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        first = await conn.fetchval(
            "INSERT INTO vidicenter.viewers_apc (location_id, period_start, gender, age,"
            " dwell_time_in_tenths_of_sec) VALUES (1, $1, 2, 1, 29) RETURNING id",
            at(9, 29),
        )
        second = await conn.fetchval(
            "INSERT INTO vidicenter.viewers_apc (location_id, period_start, gender, age,"
            " dwell_time_in_tenths_of_sec) VALUES (1, $1, 2, 3, 10) RETURNING id",
            at(9, 21),
        )
        for viewer, content, dwell_ms in ((first, "a", 928), (first, "b", 925), (second, "a", 15)):
            await insert(
                conn,
                "vidicenter.viewers_apc_contents",
                viewers_apc_id=viewer,
                content_id=content,
                dwell_time_in_milliseconds=dwell_ms,
            )
        rows = await conn.fetch(
            "SELECT content_id, count(DISTINCT viewers_apc_id) AS viewers,"
            " sum(dwell_time_s) AS dwell_s FROM reports.content_audience"
            " GROUP BY content_id ORDER BY content_id"
        )
        all_viewers = await conn.fetchval(
            "SELECT count(DISTINCT viewers_apc_id) FROM reports.content_audience"
        )
        joined = await conn.fetchval("SELECT count(*) FROM reports.content_audience")
    assert [tuple(r) for r in rows] == [("a", 2, pytest.approx(0.943)), ("b", 1, 0.925)]
    assert (all_viewers, joined) == (2, 3)


async def test_a_day_is_complete_only_when_every_job_of_it_is_done_and_final(
    pool: asyncpg.Pool,
) -> None:
    later = date(2026, 3, 11)
    async with pool.acquire() as conn:
        for scope, day, status, final in (
            ("location:1", DAY, "done", True),
            ("location:2", DAY, "done", True),
            ("location:1", later, "done", True),
            ("location:2", later, "dead", False),
            ("location:1", date(2026, 3, 12), "done", False),  # the vendor was not all in
        ):
            await insert(
                conn,
                "ingest.jobs",
                vendor="vidicenter",
                account="v.example/alice",
                data_type="viewers",
                time_resolution="1h",
                scope=scope,
                day=day,
                status=status,
                complete=final,
                rows_loaded=24 if status == "done" else None,
            )
        rows = await conn.fetch(
            "SELECT account, day, jobs, done, open, dead, complete, rows_loaded"
            " FROM reports.day_completeness ORDER BY day"
        )
    assert [tuple(r) for r in rows] == [
        ("v.example/alice", DAY, 2, 2, 0, 0, True, 48),
        ("v.example/alice", later, 2, 1, 0, 1, False, 24),
        ("v.example/alice", date(2026, 3, 12), 1, 1, 1, 0, False, 24),
    ]


async def test_the_daily_views_keep_two_accounts_locations_of_one_id_apart(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        for account, watchers in (("v.example/alice", 5), ("v.example/bob", 7)):
            await insert(
                conn,
                "vidicenter.viewers",
                account=account,
                location_id=1,
                time_resolution="1h",
                period_start=at(10),
                watcher_count=watchers,
            )
        rows = await conn.fetch(
            "SELECT account, location_id, watcher_count FROM reports.viewers_daily ORDER BY 1"
        )
    assert [tuple(r) for r in rows] == [("v.example/alice", 1, 5), ("v.example/bob", 1, 7)]


# --- the examples of the data guide ------------------------------------------------------


def guide_queries() -> list[str]:
    return re.findall(r"```sql\n(.*?)```", GUIDE.read_text(), flags=re.DOTALL)


def test_the_data_guide_has_sql_examples() -> None:
    assert len(guide_queries()) >= 5


@pytest.mark.parametrize("sql", guide_queries(), ids=lambda sql: sql.strip().splitlines()[0][:60])
async def test_every_sql_example_of_the_data_guide_runs(pool: asyncpg.Pool, sql: str) -> None:
    async with pool.acquire() as conn:
        await add_sample_rows(conn)
        async with conn.transaction(readonly=True):
            await conn.fetch(sql)


def guide_columns() -> dict[str, list[str]]:
    """The column lists of the guide, by the `schema.relation` heading above each."""
    found: dict[str, list[str]] = {}
    current: str | None = None
    for line in GUIDE.read_text().splitlines():
        heading = re.fullmatch(r"#{2,3} `(\w+\.\w+)`", line)
        if heading:
            current = heading.group(1)
            found[current] = []
        elif line.startswith("#"):
            current = None
        elif current is not None and (cell := re.match(r"\| `(\w+)` \|", line)):
            found[current].append(cell.group(1))
    return found


async def test_the_guide_lists_every_column_of_every_table_and_view_in_order(
    pool: asyncpg.Pool,
) -> None:
    rows = await pool.fetch(
        """
        SELECT c.table_schema || '.' || c.table_name AS relation,
               array_agg(c.column_name::text ORDER BY c.ordinal_position) AS columns
        FROM information_schema.columns c
        WHERE c.table_schema IN ('vidicenter', 'angus', 'reports')
           OR (c.table_schema, c.table_name) = ('ingest', 'jobs')
        GROUP BY 1
        """
    )
    in_database = {r["relation"]: list(r["columns"]) for r in rows}
    assert guide_columns() == in_database
