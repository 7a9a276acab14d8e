"""`ingest backfill --vendor angus` end to end: the simulator on a real port, real PostgreSQL,
and `ingest` as a subprocess."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from ingest.simulator import RunningSimulator, SimConfig, run_simulator
from ingest.simulator import entities as sim_entities

from .ingest_process import STREAM_1, STREAM_2, ingest, ingest_env

pytestmark = pytest.mark.slow

FIRST_DAY = date(2024, 3, 1)
USERNAME = "demo@example.com"
GOOD_1 = STREAM_1
GOOD_2 = STREAM_2
WRONG_TOKEN = "wrong-access-token-4f1c9"


# --- running ingest -----------------------------------------------------------------------


def backfill_args(first: date, last: date, *more: str) -> list[str]:
    return ["backfill", "--vendor", "angus", "--from", str(first), "--to", str(last), *more]


# --- what the simulator serves ----------------------------------------------------------


def day_window(day: date, tz: str) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=ZoneInfo(tz))
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=ZoneInfo(tz))
    return start, end - timedelta(seconds=1)


def expected_rows(
    client_id: str, bucket: str, days: list[date], *, tz: str = "UTC", seed: int = 42
) -> dict[tuple[str, str, datetime], tuple[Any, ...]]:
    """The rows one stream's days should land as, straight from the simulator's generator."""
    rows: dict[tuple[str, str, datetime], tuple[Any, ...]] = {}
    for day in days:
        start, end = day_window(day, tz)
        span = (start.astimezone(UTC), end.astimezone(UTC))
        buckets = sim_entities.bucket_starts(bucket, *span)
        payload = sim_entities.entities(
            seed, 0, client_id, list(sim_entities.METRICS), bucket, buckets, span
        )
        for key, m in payload.items():
            period = start if key == "global" else datetime.fromisoformat(key)
            rows[(client_id, bucket, period)] = (
                m["passing_by"]["value"],
                m["interested"]["value"],
                m["stop_time"]["value"],
                m["attention_time"]["value"],
                m["gender"],
                m["category"],
                m["satisfaction"],
                {},
            )
    return rows


async def landed_rows(db_url: str) -> dict[tuple[str, str, datetime], tuple[Any, ...]]:
    """Every row of angus.entities but `ingested_at`, keyed by its natural key."""
    conn = await asyncpg.connect(db_url)
    try:
        records = await conn.fetch(
            "SELECT stream, time_bucket, period_start, passing_by, interested, stop_time,"
            " attention_time, gender, category, satisfaction, extra FROM angus.entities"
        )
    finally:
        await conn.close()
    rows: dict[tuple[str, str, datetime], tuple[Any, ...]] = {}
    for r in records:
        key = (r["stream"], r["time_bucket"], r["period_start"])
        assert key not in rows, f"duplicate row {key}"
        rows[key] = (
            r["passing_by"],
            r["interested"],
            r["stop_time"],
            r["attention_time"],
            *(json.loads(r[c]) if r[c] is not None else None for c in _JSON_COLUMNS),
        )
    return rows


_JSON_COLUMNS = ("gender", "category", "satisfaction", "extra")


async def jobs(db_url: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(db_url)
    try:
        records = await conn.fetch(
            "SELECT id, vendor, data_type, time_resolution, scope, day, status, attempts,"
            " last_error, rows_loaded FROM ingest.jobs ORDER BY id"
        )
    finally:
        await conn.close()
    return [dict(r) for r in records]


class TickingClock:
    """Simulated time that moves `step` seconds at every look: each call ages the tokens."""

    def __init__(self, step: float = 1.0) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    async with run_simulator(SimConfig()) as running:
        yield running


def days_from(first: date, n: int) -> list[date]:
    return [first + timedelta(days=i) for i in range(n)]


# --- the tests --------------------------------------------------------------------------


async def test_a_token_that_expires_in_the_middle_of_a_backfill_is_renewed_and_every_job_done(
    db_url: str, tmp_path: Path
) -> None:
    # the token lives 10 simulated seconds and each call ages it by one: it expires
    # after a handful of pages, well inside the backfill's 3 days x 6 pages
    config = SimConfig(clock=TickingClock(), token_lifetime_s=10, page_size=4)
    async with run_simulator(config) as sim:
        env = ingest_env(db_url, sim, [GOOD_1], INGEST_ANGUS_TOKEN_MARGIN_S="0")
        days = days_from(FIRST_DAY, 3)
        result = await ingest(env, tmp_path, *backfill_args(days[0], days[-1]))
        stats = sim.state.stats()

    assert result.returncode == 0, result.output
    assert [j["status"] for j in await jobs(db_url)] == ["done"] * 3
    assert stats["angus_unauthorized"] >= 1  # the expired token was refused mid-backfill ...
    assert stats["angus_tokens_issued"] > 1  # ... and a new one fetched for the stream
    assert await landed_rows(db_url) == expected_rows("stream-1", "by_hour", days)


async def test_results_over_several_pages_land_every_bucket_with_the_served_values(
    db_url: str, tmp_path: Path
) -> None:
    async with run_simulator(SimConfig(page_size=5)) as sim:  # 24 buckets a day: 5 pages
        env = ingest_env(db_url, sim, [GOOD_1, GOOD_2])
        days = days_from(FIRST_DAY, 2)
        result = await ingest(env, tmp_path, *backfill_args(days[0], days[-1]))
        stats = sim.state.stats()

    assert result.returncode == 0, result.output
    ledger = await jobs(db_url)
    assert [(j["status"], j["rows_loaded"]) for j in ledger] == [("done", 24)] * 4
    assert stats["angus_calls"] - stats["angus_tokens_issued"] >= 4 * 5  # every page read
    expected = expected_rows("stream-1", "by_hour", days) | expected_rows(
        "stream-2", "by_hour", days
    )
    assert len(expected) == 2 * 2 * 24
    assert await landed_rows(db_url) == expected


async def test_a_stream_with_bad_credentials_dies_alone_without_leaking_its_token(
    db_url: str, tmp_path: Path, sim: RunningSimulator
) -> None:
    bad = {**GOOD_2, "access_token": WRONG_TOKEN}
    env = ingest_env(db_url, sim, [GOOD_1, bad])
    days = days_from(FIRST_DAY, 2)
    result = await ingest(env, tmp_path, *backfill_args(days[0], days[-1]))

    assert result.returncode == 1, result.output
    ledger = await jobs(db_url)
    good = [j for j in ledger if j["scope"] == "stream:stream-1"]
    dead = [j for j in ledger if j["scope"] == "stream:stream-2"]
    assert [(j["status"], j["rows_loaded"]) for j in good] == [("done", 24)] * 2
    assert [j["status"] for j in dead] == ["dead"] * 2
    for job in dead:
        reason = job["last_error"]
        assert "stream-2" in reason
        assert WRONG_TOKEN not in reason and USERNAME not in reason
        assert job["attempts"] == 1  # refused credentials are not tried again
    assert 1 <= sim.state.stats()["angus_bad_requests"] <= len(dead)
    assert {k[0] for k in await landed_rows(db_url)} == {"stream-1"}
    assert "stream-2" in result.output  # the dead jobs are reported ...
    for secret in (WRONG_TOKEN, GOOD_1["access_token"]):
        assert secret not in result.output  # ... without the tokens


async def test_the_same_backfill_twice_changes_nothing(
    db_url: str, tmp_path: Path, sim: RunningSimulator
) -> None:
    env = ingest_env(db_url, sim, [GOOD_1, GOOD_2])
    args = backfill_args(FIRST_DAY, FIRST_DAY + timedelta(days=1))
    first = await ingest(env, tmp_path, *args)
    assert first.returncode == 0, first.output
    rows, ledger, calls = await landed_rows(db_url), await jobs(db_url), sim.state.stats()

    second = await ingest(env, tmp_path, *args)

    assert second.returncode == 0, second.output
    assert await landed_rows(db_url) == rows
    assert await jobs(db_url) == ledger  # done days are not fetched or touched again
    assert sim.state.stats()["angus_calls"] == calls["angus_calls"]


async def test_a_forced_backfill_rewrites_the_same_rows_in_place(
    db_url: str, tmp_path: Path, sim: RunningSimulator
) -> None:
    env = ingest_env(db_url, sim, [GOOD_1, GOOD_2])
    args = backfill_args(FIRST_DAY, FIRST_DAY + timedelta(days=1))
    first = await ingest(env, tmp_path, *args)
    assert first.returncode == 0, first.output
    rows, calls = await landed_rows(db_url), sim.state.stats()["angus_calls"]

    forced = await ingest(env, tmp_path, *args, "--force")

    assert forced.returncode == 0, forced.output
    assert sim.state.stats()["angus_calls"] > calls  # fetched again ...
    assert await landed_rows(db_url) == rows  # ... and upserted onto the same rows
    assert [(j["status"], j["rows_loaded"]) for j in await jobs(db_url)] == [("done", 24)] * 4


@pytest.mark.parametrize(
    ("resolution", "tz"),
    [("by_day", "UTC"), ("global", "UTC"), ("global", "Europe/Paris")],
)
async def test_by_day_and_global_land_at_the_bucket_start_or_the_window_start(
    db_url: str, tmp_path: Path, sim: RunningSimulator, resolution: str, tz: str
) -> None:
    env = ingest_env(db_url, sim, [GOOD_1, GOOD_2], INGEST_DAY_TIMEZONE=tz)
    days = days_from(FIRST_DAY, 2)
    result = await ingest(
        env, tmp_path, *backfill_args(days[0], days[-1], "--resolution", resolution)
    )

    assert result.returncode == 0, result.output
    rows = await landed_rows(db_url)
    starts = sorted({k[2] for k in rows})
    assert starts == [day_window(d, tz)[0] for d in days]  # midnight of each day, in `tz`
    expected = expected_rows("stream-1", resolution, days, tz=tz) | expected_rows(
        "stream-2", resolution, days, tz=tz
    )
    assert rows == expected
