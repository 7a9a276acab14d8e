"""What the ledger tells a backfill's progress about its jobs: counts, failed jobs backing
off, jobs held back for an export place."""

from __future__ import annotations

from datetime import date

import asyncpg

from ingest import ledger
from ingest.domain import JobSpec, Scope, Vendor
from ingest.errors import VendorUnavailable
from ingest.ledger import reports
from ingest.policy import RetryPolicy, decide

DAY = date(2024, 3, 5)


async def test_run_state_counts_the_runs_jobs_and_tells_back_off_from_a_held_back_job(
    pool: asyncpg.Pool,
) -> None:
    specs = [JobSpec(Vendor.vidicenter, "ots", "1h", Scope.location(n), DAY) for n in (1, 2, 3, 4)]
    async with pool.acquire() as conn:
        ids = await ledger.enqueue_jobs(conn, specs, force=False)
        stream = JobSpec(Vendor.angus, "entities", "by_hour", Scope.stream("s"), DAY)
        (other,) = await ledger.enqueue_jobs(conn, [stream], force=False)  # not of the run
        claimed = [
            await ledger.claim_batch(conn, Vendor.vidicenter, owner="w", lease_s=60)
            for _ in range(3)
        ]
    (first,), (second,), (third,) = claimed
    policy = RetryPolicy(max_attempts=5, base_s=30, max_s=60, rebuilds_after_failure=0)
    decision = decide(VendorUnavailable("503"), first, policy)
    await ledger.record_decision(pool, [first], decision, owner="w")  # backs off ~30 s
    await ledger.release_jobs(pool, [second], owner="w", delay_s=5.0)  # no export place

    state = await reports.run_state(pool, ids)
    assert state.counts == {"pending": 3, "running": 1, "done": 0, "dead": 0}
    assert state.retrying == 1 and state.next_retry_s is not None
    assert decision.delay_s - 2 < state.next_retry_s <= decision.delay_s
    assert state.held_back == 1  # the fourth job is pending and due: not held back
    assert third.id in ids and other not in ids
