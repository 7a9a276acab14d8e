"""A raw export read from its file a slice at a time, each slice normalized while the one
before is copied: every row lands as delivered, and a bad row costs only its location-day."""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable, Iterator
from datetime import date, datetime, timedelta
from typing import Any
from unittest.mock import patch

import asyncpg
import msgspec
import pytest

from ingest import ledger
from ingest.config import load_settings
from ingest.domain import JobSpec, Scope, Vendor
from ingest.pipeline import Context, work_batch
from ingest.vendors import body
from ingest.vendors.body import ExportAnswer
from ingest.wiring import retry_policy

from .ledger_support import packing

ACCOUNT = "v.example/alice"
DAYS = [date(2024, 3, 1), date(2024, 3, 2)]
LOCATIONS = [11, 12, 13]
ROWS_PER_DAY = 400  # a location-day's rows: ~100 KB, many slices of 4 KB


@pytest.fixture(autouse=True)
def small_slices() -> Iterator[None]:
    with patch.object(body, "SMALL", 1000), patch.object(body, "SLICE", 4096):
        yield


def raw_rows(location: int, day: date) -> list[dict[str, Any]]:
    start = datetime.combine(day, datetime.min.time())
    return [
        {
            "location_id": location,
            "period_start": (start + timedelta(seconds=200 * i)).isoformat(),
            "gender": i % 3,
            "age": i % 5,
            "glasses": None,
            "mustache": 1,
            "beard": 0,
            "age_value": 20.5 + i % 40,
            "dwell_time_in_tenths_of_sec": i,
            "attention_time_in_tenths_of_sec": float(i % 11),
            "very_happy": 1.25,
            "happy": None,
            "neutral": 0.0,
            "unhappy": 3,
            "very_unhappy": 0.5,
        }
        for i in range(ROWS_PER_DAY)
    ]


class RawExport:
    """Every export finished at once, its body on a file, read back a slice at a time."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    async def run_export(
        self,
        query: str,
        *,
        force: bool = False,
        on_started: Callable[[], Awaitable[None]] | None = None,
        expected_rows: int = 0,
    ) -> ExportAnswer:
        if on_started is not None:
            await on_started()
        answer = {"state": "finished", "data": self.rows, "creation_date": "2024-03-05"}
        return body.open_answer(io.BytesIO(msgspec.json.encode(answer)))


async def load(pool: asyncpg.Pool, rows: list[dict[str, Any]]) -> dict[tuple[str, date], Any]:
    settings = load_settings(vidicenter_username="alice", vidicenter_token="t")
    ctx = Context(
        pool=pool,
        settings=settings,
        owner="test",
        policy=retry_policy(settings),
        vidicenter={ACCOUNT: RawExport(rows)},
    )
    specs = [
        JobSpec(Vendor.vidicenter, "viewers", "finest", Scope.location(str(i)), day, {}, ACCOUNT)
        for i in LOCATIONS
        for day in DAYS
    ]
    async with pool.acquire() as conn:
        await ledger.enqueue_jobs(conn, specs, force=False)
        jobs = await ledger.claim_batch(
            conn, Vendor.vidicenter, owner="test", lease_s=60, packing=packing(10)
        )
    assert len(jobs) == len(specs)
    await work_batch(ctx, jobs)
    done = await pool.fetch("SELECT scope, day, status, rows_loaded, last_error FROM ingest.jobs")
    return {(r["scope"], r["day"]): r for r in done}


async def stored(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    records = await pool.fetch(
        """
        SELECT location_id, period_start, gender, age, glasses, mustache, beard, age_value,
               dwell_time_in_tenths_of_sec, attention_time_in_tenths_of_sec, very_happy,
               happy, neutral, unhappy, very_unhappy, extra, account
        FROM vidicenter.viewers_finest ORDER BY location_id, period_start
        """
    )
    return [dict(r) for r in records]


def as_stored(row: dict[str, Any]) -> dict[str, Any]:
    floats = {"age_value", "dwell_time_in_tenths_of_sec", "attention_time_in_tenths_of_sec"}
    floats |= {"very_happy", "happy", "neutral", "unhappy", "very_unhappy"}
    return {
        **{k: float(v) if k in floats and v is not None else v for k, v in row.items()},
        "period_start": datetime.fromisoformat(row["period_start"]),
        "extra": "{}",
        "account": ACCOUNT,
    }


async def test_every_row_of_a_raw_export_read_in_slices_lands_as_delivered(
    pool: asyncpg.Pool,
) -> None:
    rows = [r for i in LOCATIONS for day in DAYS for r in raw_rows(i, day)]
    jobs = await load(pool, rows)
    assert {j["status"] for j in jobs.values()} == {"done"}
    assert {j["rows_loaded"] for j in jobs.values()} == {ROWS_PER_DAY}
    assert await stored(pool) == [as_stored(r) for r in rows]


@pytest.mark.parametrize("bad_at", [0, 150, ROWS_PER_DAY - 1])
async def test_a_bad_row_in_any_slice_costs_only_its_location_day(
    pool: asyncpg.Pool, bad_at: int
) -> None:
    by_key = {(i, day): raw_rows(i, day) for i in LOCATIONS for day in DAYS}
    by_key[(12, DAYS[1])][bad_at]["happy"] = "very"
    rows = [r for key in sorted(by_key) for r in by_key[key]]
    jobs = await load(pool, rows)
    failed = {k: j for k, j in jobs.items() if j["status"] != "done"}
    assert list(failed) == [("location:12", DAYS[1])]
    reason = failed[("location:12", DAYS[1])]["last_error"]
    assert "'happy'" in reason and "(location 12, day 2024-03-02)" in reason, reason
    kept = [r for key in sorted(by_key) if key != (12, DAYS[1]) for r in by_key[key]]
    assert await stored(pool) == [as_stored(r) for r in kept]
