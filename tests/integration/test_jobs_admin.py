"""`ingest jobs list|retry|cancel` and their ledger statements, on real PostgreSQL."""

from __future__ import annotations

import argparse
import json
from datetime import date, timedelta

import asyncpg
import pytest

from ingest import ledger
from ingest.cli import build_parser
from ingest.commands import jobs
from ingest.config import load_settings
from ingest.domain import JobSpec, JobStatus, Scope, Vendor
from ingest.errors import UsageError, VendorRejected
from ingest.ledger import admin
from ingest.ledger.admin import JobFilter

from .ledger_support import fail

DAY = date(2024, 3, 5)


async def _ledger(pool: asyncpg.Pool) -> dict[str, int]:
    """Three days of two locations of ots and one Angus stream-day; location 1's jobs of the
    first day are done, of the second dead, location 2's of the second running."""
    async with pool.acquire() as conn:
        specs = [
            JobSpec(Vendor.vidicenter, "ots", "1h", Scope.location(loc), DAY + timedelta(days=d))
            for d in range(3)
            for loc in (1, 2)
        ] + [JobSpec(Vendor.angus, "entities", "by_hour", Scope.stream("s1"), DAY)]
        ids = await ledger.enqueue_jobs(conn, specs, force=False)
        by_name = dict(
            zip(["d0l1", "d0l2", "d1l1", "d1l2", "d2l1", "d2l2", "angus"], ids, strict=True)
        )
        await _set(conn, by_name["d0l1"], "done", rows_loaded=24)
        await _set(conn, by_name["d1l1"], "dead", last_error="BadPayload: not JSON", attempts=5)
        await _set(conn, by_name["d1l2"], "running", lease_owner="w")
    return by_name


async def _set(conn: asyncpg.Connection, job_id: int, status: str, **columns: object) -> None:
    sets = ", ".join(f"{k} = ${i + 3}" for i, k in enumerate(columns))
    await conn.execute(
        f"UPDATE ingest.jobs SET status = $2{', ' + sets if sets else ''} WHERE id = $1",
        job_id,
        status,
        *columns.values(),
    )


async def _statuses(pool: asyncpg.Pool) -> dict[int, str]:
    return {r["id"]: r["status"] for r in await pool.fetch("SELECT id, status FROM ingest.jobs")}


async def test_list_filters_by_status_vendor_data_type_and_days_in_day_order(
    pool: asyncpg.Pool,
) -> None:
    ids = await _ledger(pool)
    total, rows = await admin.list_jobs(pool, JobFilter(vendor="vidicenter"), limit=None)
    assert total == 6 and [r["day"] for r in rows] == sorted(r["day"] for r in rows)

    total, rows = await admin.list_jobs(pool, JobFilter(status=JobStatus.dead), limit=None)
    assert (total, [r["id"] for r in rows]) == (1, [ids["d1l1"]])
    assert rows[0]["last_error"] == "BadPayload: not JSON"

    window = JobFilter(data_type="ots", first=DAY + timedelta(days=1), last=DAY + timedelta(days=2))
    total, rows = await admin.list_jobs(pool, window, limit=3)
    assert total == 4 and len(rows) == 3
    assert {r["id"] for r in rows} <= {ids["d1l1"], ids["d1l2"], ids["d2l1"], ids["d2l2"]}

    total, rows = await admin.list_jobs(pool, JobFilter(data_type="entities"), limit=None)
    assert [r["id"] for r in rows] == [ids["angus"]]


async def test_retry_puts_only_matching_dead_jobs_back_with_fresh_tries(pool: asyncpg.Pool) -> None:
    ids = await _ledger(pool)
    async with pool.acquire() as conn:
        (stream_day,) = await ledger.claim_batch(conn, Vendor.angus, owner="w", lease_s=60)
        await fail(conn, [stream_day], VendorRejected("no such metric"), owner="w", max_attempts=1)
    assert (await _statuses(pool))[ids["angus"]] == "dead"

    n = await admin.retry_dead(pool, JobFilter(vendor="vidicenter"))
    assert n == 1
    row = await pool.fetchrow(
        "SELECT status, attempts, export_rebuilds, run_after <= now() AS due, last_error"
        " FROM ingest.jobs WHERE id = $1",
        ids["d1l1"],
    )
    assert dict(row) == {
        "status": "pending",
        "attempts": 0,
        "export_rebuilds": 0,
        "due": True,
        "last_error": "BadPayload: not JSON",  # kept until the job runs again
    }
    assert (await _statuses(pool))[ids["angus"]] == "dead"  # another vendor: untouched
    assert await admin.retry_dead(pool, JobFilter(vendor="vidicenter")) == 0


async def test_cancel_removes_pending_and_dead_jobs_and_leaves_running_and_done_ones(
    pool: asyncpg.Pool,
) -> None:
    ids = await _ledger(pool)
    day1 = DAY + timedelta(days=1)
    cancelled = await admin.cancel_jobs(pool, JobFilter(vendor="vidicenter", last=day1))
    assert cancelled == admin.Cancelled(deleted=2, kept_exports=0)  # d0l2 pending, d1l1 dead
    left = await _statuses(pool)
    assert ids["d0l2"] not in left and ids["d1l1"] not in left
    assert left[ids["d0l1"]] == "done" and left[ids["d1l2"]] == "running"
    assert left[ids["d2l1"]] == "pending" and left[ids["angus"]] == "pending"


async def test_cancel_keeps_a_pending_job_whose_export_is_out_at_the_vendor(
    pool: asyncpg.Pool,
) -> None:
    ids = await _ledger(pool)
    # handed back while its export runs at the vendor: it still holds an export place
    await pool.execute(
        "UPDATE ingest.jobs SET export_query = 'q', export_reserved_at = now() WHERE id = $1",
        ids["d2l1"],
    )
    cancelled = await admin.cancel_jobs(pool, JobFilter(first=DAY + timedelta(days=2)))
    assert cancelled == admin.Cancelled(deleted=1, kept_exports=1)
    assert ids["d2l1"] in await _statuses(pool)
    assert ids["d2l2"] not in await _statuses(pool)


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["jobs", *argv])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["retry", "--status", "pending"], "retry acts on dead jobs only"),
        (["cancel", "--status", "running"], "cancel acts on pending and dead jobs"),
        (["cancel", "--status", "done"], "cancel acts on pending and dead jobs"),
        (["cancel"], "cancel needs a filter"),
        (["list", "--from", "2024-03-07", "--to", "2024-03-05"], "is after --to"),
    ],
)
def test_a_filter_that_cannot_mean_what_was_asked_is_a_usage_error(
    argv: list[str], message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        jobs.job_filter(_args(*argv))


async def test_jobs_list_json_and_retry_through_the_command(
    pool: asyncpg.Pool, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = await _ledger(pool)
    settings = load_settings(database_url=db_url)
    assert await jobs.main(_args("list", "--status", "dead", "--json"), settings) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["total"] == 1
    (job,) = listed["jobs"]
    assert (job["id"], job["day"], job["params"]) == (ids["d1l1"], "2024-03-06", {})

    assert await jobs.main(_args("retry", "--data-type", "ots"), settings) == 0
    assert capsys.readouterr().out.startswith("1 dead job(s) back to pending")

    assert await jobs.main(_args("list", "--vendor", "angus"), settings) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and "stream:s1" in lines[1] and "pending" in lines[1]


async def test_jobs_list_says_how_many_match_beyond_the_limit(
    pool: asyncpg.Pool, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await _ledger(pool)
    settings = load_settings(database_url=db_url)
    assert await jobs.main(_args("list", "--limit", "2"), settings) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 3  # the header and two jobs
    assert err == "7 jobs match, 2 shown (--limit 0: all)\n"

    assert await jobs.main(_args("list", "--status", "dead", "--vendor", "angus"), settings) == 0
    assert capsys.readouterr() == ("no job matches\n", "")
