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
                JobSpec(Vendor.vidicenter, "ots", "1h", Scope.location(1), day),
                JobSpec(Vendor.vidicenter, "ots", "1h", Scope.location(2), day),
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
