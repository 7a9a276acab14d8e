"""The pipeline decides, before an export is built, which of its jobs' days are final;
a retried job of a day that became final since asks for a new build."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import asyncpg

from ingest import ledger
from ingest.config import load_settings
from ingest.domain import JobSpec, Scope, Vendor
from ingest.pipeline import Context, work_batch
from ingest.topology import Fleet, fleet_from
from ingest.wiring import retry_policy

from .fake_exports import FinishedAtOnce
from .ledger_support import packing

ACCOUNT = "v.example/alice"
NOW = datetime(2026, 11, 25, 10, 30, tzinfo=UTC)
DAY = date(2026, 11, 23)  # ended 34.5 h before NOW


class Uploads:
    def __init__(self, **last: str) -> None:
        self.listed = [
            {"id": int(k.strip("l")), "last_upload_timestamp": v} for k, v in last.items()
        ]

    async def fleet(self, *, fresh: bool = False) -> Fleet:
        return fleet_from(self.listed)


def context(pool: asyncpg.Pool, vendor: FinishedAtOnce, uploads: Uploads) -> Context:
    settings = load_settings(
        vidicenter_username="alice", vidicenter_token="t", settle_s=3600, upload_silence_s=259200
    )
    return Context(
        pool=pool,
        settings=settings,
        owner="test",
        policy=retry_policy(settings),
        vidicenter={ACCOUNT: vendor},
        fleets={ACCOUNT: uploads},
        now=lambda: NOW,
    )


async def work(pool: asyncpg.Pool, ctx: Context, locations: list[int]) -> dict[str, bool]:
    specs = [
        JobSpec(Vendor.vidicenter, "ots", "1h", Scope.location(i), DAY, {}, ACCOUNT)
        for i in locations
    ]
    async with pool.acquire() as conn:
        await ledger.enqueue_jobs(conn, specs, force=False)
        jobs = await ledger.claim_batch(
            conn, Vendor.vidicenter, owner="test", lease_s=60, packing=packing(10)
        )
    outcome = await work_batch(ctx, jobs)
    assert outcome.done == len(locations), outcome
    rows = await pool.fetch("SELECT scope, complete FROM ingest.jobs ORDER BY scope")
    return {r["scope"]: r["complete"] for r in rows}


async def test_each_job_of_an_export_is_final_only_when_its_own_location_is_in(
    pool: asyncpg.Pool,
) -> None:
    vendor = FinishedAtOnce({"period_start": f"{DAY} 10:00:00", "ots_count": 1})
    uploads = Uploads(l1="2026-11-24 02:00:00", l2="2026-11-24 00:30:00")
    complete = await work(pool, context(pool, vendor, uploads), [1, 2])
    # location 1 uploaded past the day's end plus the hour's margin; location 2 not yet
    assert complete == {"location:1": True, "location:2": False}
    assert vendor.forced == [False]


async def test_a_retried_job_whose_day_became_final_asks_for_a_new_build(
    pool: asyncpg.Pool,
) -> None:
    vendor = FinishedAtOnce({"period_start": f"{DAY} 10:00:00", "ots_count": 1})
    uploads = Uploads(l1="2026-11-25 10:00:00")
    ctx = context(pool, vendor, uploads)
    async with pool.acquire() as conn:
        await ledger.enqueue_jobs(
            conn,
            [JobSpec(Vendor.vidicenter, "ots", "1h", Scope.location(1), DAY, {}, ACCOUNT)],
            force=False,
        )
    # an earlier try failed after its export was asked for (the export was not kept)
    await pool.execute("UPDATE ingest.jobs SET attempts = 1")

    complete = await work(pool, ctx, [1])

    assert complete == {"location:1": True}
    assert vendor.forced == [True]


async def test_days_older_than_the_silence_are_final_without_asking_for_uploads(
    pool: asyncpg.Pool,
) -> None:
    class NoUploads:
        async def fleet(self, *, fresh: bool = False) -> Fleet:
            raise AssertionError("no need to ask")

    vendor = FinishedAtOnce({"period_start": f"{DAY} 10:00:00", "ots_count": 1})
    ctx = context(pool, vendor, Uploads())
    ctx = replace(ctx, fleets={ACCOUNT: NoUploads()}, now=lambda: NOW + timedelta(days=4))
    assert await work(pool, ctx, [1]) == {"location:1": True}


async def work_bucket(
    pool: asyncpg.Pool, ctx: Context, resolution: str, start: date
) -> dict[str, bool]:
    spec = JobSpec(Vendor.vidicenter, "ots", resolution, Scope.location(1), start, {}, ACCOUNT)
    async with pool.acquire() as conn:
        await ledger.enqueue_jobs(conn, [spec], force=False)
        jobs = await ledger.claim_batch(
            conn, Vendor.vidicenter, owner="test", lease_s=60, packing=packing(10)
        )
    outcome = await work_batch(ctx, jobs)
    assert outcome.done == 1, outcome
    rows = await pool.fetch("SELECT time_resolution, complete FROM ingest.jobs")
    return {r["time_resolution"]: r["complete"] for r in rows}


async def test_a_bucket_job_is_final_only_once_its_last_day_is_in(pool: asyncpg.Pool) -> None:
    # a week (7d, from Monday 16 November) and a month (1M, October): the location has
    # uploaded well past their first days, but a bucket is final only when the vendor has
    # its whole span: uploads past its end plus the settle margin
    week, month = date(2026, 11, 16), date(2026, 10, 1)
    vendor = FinishedAtOnce({"period_start": f"{week} 00:00:00", "ots_count": 1})
    uploads = Uploads(l1="2026-11-23 00:30:00")  # 30 min past the week's and October's end
    ctx = context(pool, vendor, uploads)
    assert await work_bucket(pool, ctx, "7d", week) == {"7d": False}
    await pool.execute("DELETE FROM ingest.jobs")

    uploads.listed[0]["last_upload_timestamp"] = "2026-11-23 01:30:00"
    assert await work_bucket(pool, ctx, "7d", week) == {"7d": True}
    await pool.execute("DELETE FROM ingest.jobs")

    # the month ended 24 days ago: final; the current month (November) is still open
    vendor.row = {"period_start": f"{month} 00:00:00", "ots_count": 1}
    assert await work_bucket(pool, ctx, "1M", month) == {"1M": True}
    await pool.execute("DELETE FROM ingest.jobs")
    vendor.row = {"period_start": "2026-11-01 00:00:00", "ots_count": 1}
    assert await work_bucket(pool, ctx, "1M", date(2026, 11, 1)) == {"1M": False}
