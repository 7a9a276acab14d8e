from datetime import date

import asyncpg

from ingest import ledger
from ingest.commands.status import collect_status, format_status
from ingest.domain import JobSpec, Scope, Vendor
from ingest.errors import VendorRejected

from .ledger_support import fail


async def test_status_counts_jobs_and_shows_the_oldest_pending_and_the_failure_reasons(
    pool: asyncpg.Pool,
) -> None:
    day = date(2024, 3, 5)
    async with pool.acquire() as conn:
        await ledger.enqueue_jobs(
            conn,
            [
                JobSpec(Vendor.vidicenter, "ots", "1h", Scope.location(1), day, {}, "h/u"),
                JobSpec(Vendor.vidicenter, "ots", "1h", Scope.location(2), day, {}, "h/u"),
                JobSpec(Vendor.angus, "entities", "by_hour", Scope.stream("s1"), day),
            ],
            force=False,
        )
        (failing,) = await ledger.claim_batch(conn, Vendor.vidicenter, owner="w", lease_s=60)
        await fail(
            conn,
            [failing],
            VendorRejected("angus 400 unexisting_metric: no such metric"),
            owner="w",
            max_attempts=5,
        )
        (done,) = await ledger.claim_batch(conn, Vendor.angus, owner="w", lease_s=60)
        await ledger.mark_done(conn, {done.id: 24}, owner="w")
        status = await collect_status(conn)

    assert status["jobs"] == {"pending": 1, "running": 0, "done": 1, "dead": 1}
    assert status["oldest_pending"]["scope"] == "location:2"
    (failure,) = status["recent_failures"]
    assert failure["status"] == "dead" and "unexisting_metric" in failure["last_error"]
    text = format_status(status)
    assert text.splitlines()[0] == "jobs: pending 1, running 0, done 1, dead 1"
    assert "angus       entities" in text and "24" in text
    assert "oldest pending: job" in text and "location:2" in text
    assert "VendorRejected: angus 400 unexisting_metric: no such metric" in text


async def test_status_shows_the_open_days_per_data_type_and_account(pool: asyncpg.Pool) -> None:
    days = [date(2024, 3, d) for d in (5, 6, 7)]
    specs = [
        JobSpec(Vendor.vidicenter, "viewers", "1h", Scope.location(1), d, {}, "h/alice")
        for d in days
    ] + [JobSpec(Vendor.angus, "entities", "by_hour", Scope.stream("s1"), days[2])]
    async with pool.acquire() as conn:
        await ledger.enqueue_jobs(conn, specs, force=False)
        for vendor in (Vendor.vidicenter, Vendor.angus):
            jobs = await ledger.claim_batch(conn, vendor, owner="w", lease_s=60)
            while jobs:
                open_ids = [j.id for j in jobs if j.day >= days[1]]  # 6 and 7 were not all in
                await ledger.mark_done(conn, {j.id: 1 for j in jobs}, owner="w", open_ids=open_ids)
                jobs = await ledger.claim_batch(conn, vendor, owner="w", lease_s=60)
        status = await collect_status(conn)

    assert status["open_days"] == [
        {"vendor": "angus", "account": "s1", "data_type": "entities", "count": 1,
         "days": ["2024-03-07"]},
        {"vendor": "vidicenter", "account": "h/alice", "data_type": "viewers", "count": 2,
         "days": ["2024-03-06", "2024-03-07"]},
    ]  # fmt: skip
    text = format_status(status)
    assert "  vidicenter h/alice viewers: 2 day(s): 2024-03-06, 2024-03-07" in text.splitlines()
