from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest

from ingest import ledger
from ingest.domain import JobSpec, Scope, Vendor
from ingest.errors import BadPayload, VendorRejected

from .ledger_support import fail, packing

DAY = date(2026, 11, 20)
ALICE = "vidicenter.example.com/alice"
BOB = "vidicenter.example.com/bob"


def specs(n: int, account: str = ALICE, **kw: object) -> list[JobSpec]:
    return [
        JobSpec(
            Vendor.vidicenter, "viewers", "1h", Scope.location(1000 + i), DAY, dict(kw), account
        )
        for i in range(n)
    ]


async def statuses(pool: asyncpg.Pool) -> dict[int, str]:
    return {r["id"]: r["status"] for r in await pool.fetch("SELECT id, status FROM ingest.jobs")}


async def test_enqueue_twice_keeps_one_job_per_scope_and_day(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        first = await ledger.enqueue_jobs(conn, specs(3), force=False)
        again = await ledger.enqueue_jobs(conn, specs(3), force=False)
    assert first == again
    assert await pool.fetchval("SELECT count(*) FROM ingest.jobs") == 3


async def test_a_large_enqueue_goes_in_chunks_and_returns_every_id_in_order(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a year of a fleet is millions of jobs: one statement ran past the command timeout
    monkeypatch.setattr(ledger.jobs, "ENQUEUE_CHUNK", 3)
    monkeypatch.setattr(ledger.jobs, "ANALYZE_AFTER", 5)
    async with pool.acquire() as conn:
        some = await ledger.enqueue_jobs(conn, specs(4), force=False)
        every = await ledger.enqueue_jobs(conn, specs(8), force=False)
    assert every[:4] == some and len(set(every)) == 8
    rows = await pool.fetch("SELECT id, scope FROM ingest.jobs")
    scopes = {r["id"]: r["scope"] for r in rows}
    assert [scopes[i] for i in every] == [f"location:{1000 + i}" for i in range(8)]
    analyzed = await pool.fetchval(
        "SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'jobs'"
    )
    assert analyzed is not None  # the statistics claims plan with were renewed


async def test_request_parameters_make_jobs_distinct(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        plain = await ledger.enqueue_jobs(conn, specs(1), force=False)
        grouped = await ledger.enqueue_jobs(conn, specs(1, group_by_demographics=True), force=False)
    assert plain != grouped


async def test_claimed_jobs_are_skipped_by_a_second_claimer(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await ledger.enqueue_jobs(conn, specs(2), force=False)
    async with pool.acquire() as a, pool.acquire() as b:
        first = await ledger.claim_batch(a, Vendor.vidicenter, owner="a", lease_s=60)
        second = await ledger.claim_batch(b, Vendor.vidicenter, owner="b", lease_s=60)
        third = await ledger.claim_batch(b, Vendor.vidicenter, owner="b", lease_s=60)
    assert len(first) == 1 and len(second) == 1 and third == []
    assert first[0].id != second[0].id


async def test_batch_mates_share_type_resolution_and_parameters_in_balanced_exports(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        await ledger.enqueue_jobs(conn, specs(5), force=False)
        await ledger.enqueue_jobs(conn, specs(2, group_by_demographics=True), force=False)
        first = await ledger.claim_batch(
            conn, Vendor.vidicenter, owner="a", lease_s=60, packing=packing(4)
        )
        second = await ledger.claim_batch(
            conn, Vendor.vidicenter, owner="a", lease_s=60, packing=packing(4)
        )
    # five locations, at most four an export: three and two, not four and one
    assert (len(first), len(second)) == (3, 2)
    assert {j.params.get("group_by_demographics") for j in first + second} == {None}
    assert all(j.attempts == 1 for j in first)


async def test_an_expired_lease_is_taken_over_by_another_worker(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await ledger.enqueue_jobs(conn, specs(1), force=False)
        (job,) = await ledger.claim_batch(conn, Vendor.vidicenter, owner="dead-worker", lease_s=60)
        assert await ledger.claim_batch(conn, Vendor.vidicenter, owner="b", lease_s=60) == []
        await conn.execute("UPDATE ingest.jobs SET lease_expires_at = now() - interval '1 s'")
        (taken,) = await ledger.claim_batch(conn, Vendor.vidicenter, owner="b", lease_s=60)
        assert taken.id == job.id and taken.attempts == 2
        with pytest.raises(ledger.LeaseLost):
            await ledger.mark_done(conn, {job.id: 1}, owner="dead-worker")


async def test_export_places_are_counted_from_the_ledger(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await ledger.enqueue_jobs(conn, specs(5), force=False)
        got = []
        for i in range(5):
            (job,) = await ledger.claim_batch(conn, Vendor.vidicenter, owner=f"w{i}", lease_s=60)
            got.append(
                await ledger.reserve_export(
                    conn, [job], f"q{i}", owner=f"w{i}", max_exports=3, stale_after_s=3600
                )
            )
    assert got == [True, True, True, False, False]


async def test_a_handed_back_export_still_holds_its_place_and_is_resumed_first(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        await ledger.enqueue_jobs(conn, specs(2), force=False)
        (job,) = await ledger.claim_batch(conn, Vendor.vidicenter, owner="a", lease_s=60)
        assert await ledger.reserve_export(
            conn, [job], "q", owner="a", max_exports=1, stale_after_s=3600
        )
        await ledger.release_jobs(conn, [job], owner="a")
        (other,) = await ledger.claim_batch(conn, Vendor.vidicenter, owner="b", lease_s=60)
        assert other.id == job.id and other.export_query == "q"
        assert other.attempts == 1  # the hand-back did not count as a try


async def test_retryable_failure_goes_back_to_pending_then_dead_after_max_attempts(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        await ledger.enqueue_jobs(conn, specs(1), force=False)
        for attempt in (1, 2):
            (job,) = await ledger.claim_batch(conn, Vendor.vidicenter, owner="a", lease_s=60)
            status = await fail(
                conn, [job], BadPayload("row 3: key 'x'"), owner="a", max_attempts=2
            )
            assert status == ("pending" if attempt == 1 else "dead")
    row = await pool.fetchrow("SELECT status, attempts, last_error FROM ingest.jobs")
    assert row["status"] == "dead" and row["attempts"] == 2
    assert row["last_error"] == "BadPayload: row 3: key 'x'"


async def test_terminal_failure_is_dead_at_once(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await ledger.enqueue_jobs(conn, specs(1), force=False)
        jobs = await ledger.claim_batch(conn, Vendor.vidicenter, owner="a", lease_s=60)
        status = await fail(conn, jobs, VendorRejected("bad parameter"), owner="a", max_attempts=5)
    assert status == "dead"


async def test_done_stays_done_unless_forced_and_dead_is_revived(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        ids = await ledger.enqueue_jobs(conn, specs(2), force=False)
        batch = await ledger.claim_batch(
            conn, Vendor.vidicenter, owner="a", lease_s=60, packing=packing(2)
        )
        await ledger.mark_done(conn, {batch[0].id: 5}, owner="a")
        await fail(conn, [batch[1]], VendorRejected("x"), owner="a", max_attempts=5)
        await ledger.enqueue_jobs(conn, specs(2), force=False)
        assert await statuses(pool) == {batch[0].id: "done", batch[1].id: "pending"}
        await ledger.enqueue_jobs(conn, specs(2), force=True)
    assert set((await statuses(pool)).values()) == {"pending"}
    assert await pool.fetchval("SELECT bool_and(force) FROM ingest.jobs WHERE id = ANY($1)", ids)


async def test_schedule_creates_missing_jobs_and_reopens_stale_done_ones(
    pool: asyncpg.Pool,
) -> None:
    now = datetime.now(UTC)
    async with pool.acquire() as conn:
        wanted = [(s, now + timedelta(hours=1)) for s in specs(2)] + [
            (s, None) for s in specs(1, group_by_demographics=True)
        ]
        assert await ledger.schedule_jobs(conn, wanted) == 3
        assert await ledger.schedule_jobs(conn, wanted) == 0  # nothing done yet: nothing new
        batch = await ledger.claim_batch(
            conn, Vendor.vidicenter, owner="a", lease_s=60, packing=packing(5)
        )
        await ledger.mark_done(conn, {j.id: 1 for j in batch}, owner="a")
        (grouped,) = await ledger.claim_batch(conn, Vendor.vidicenter, owner="a", lease_s=60)
        await ledger.mark_done(conn, {grouped.id: 1}, owner="a")
        # all open; the two with a refresh threshold in the future are stale, the third never is
        await conn.execute("UPDATE ingest.jobs SET complete = false")
        assert await ledger.schedule_jobs(conn, wanted) == 2
    rows = await pool.fetch("SELECT status, force FROM ingest.jobs ORDER BY id")
    assert [(r["status"], r["force"]) for r in rows] == [
        ("pending", True),
        ("pending", True),
        ("done", False),
    ]


async def _done(
    conn: asyncpg.Connection, *, account: str = ALICE, open_ids: bool = False
) -> list[int]:
    jobs = await ledger.claim_batch(
        conn, Vendor.vidicenter, owner="a", lease_s=60, packing=packing(20), accounts=[account]
    )
    ids = [j.id for j in jobs]
    await ledger.mark_done(conn, {i: 1 for i in ids}, owner="a", open_ids=ids if open_ids else ())
    return ids


async def test_the_same_scope_and_day_of_two_accounts_are_two_jobs(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        alice = await ledger.enqueue_jobs(conn, specs(2), force=False)
        bob = await ledger.enqueue_jobs(conn, specs(2, BOB), force=False)
    assert not set(alice) & set(bob)
    rows = await pool.fetch("SELECT account, count(*) AS n FROM ingest.jobs GROUP BY 1 ORDER BY 1")
    assert [(r["account"], r["n"]) for r in rows] == [(ALICE, 2), (BOB, 2)]


async def test_a_worker_claims_only_the_jobs_of_its_accounts(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await ledger.enqueue_jobs(conn, specs(3, BOB), force=False)
        await ledger.enqueue_jobs(conn, specs(3), force=False)
        claim = ledger.claim_batch
        assert await claim(conn, Vendor.vidicenter, owner="w", lease_s=60, accounts=["x/y"]) == []
        batch = await claim(
            conn, Vendor.vidicenter, owner="w", lease_s=60, packing=packing(10), accounts=[ALICE]
        )
        # bob's pending jobs are older, and would be mates by every other measure
        assert len(batch) == 3 and {j.account for j in batch} == {ALICE}
        rest = await claim(conn, Vendor.vidicenter, owner="w", lease_s=60, packing=packing(10))
        assert {j.account for j in rest} == {BOB}  # batch mates share the leader's account


async def test_each_account_has_its_own_export_places(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await ledger.enqueue_jobs(conn, specs(4), force=False)
        await ledger.enqueue_jobs(conn, specs(1, BOB), force=False)
        got = {}
        for account, n in ((ALICE, 4), (BOB, 1)):
            for i in range(n):
                (job,) = await ledger.claim_batch(
                    conn, Vendor.vidicenter, owner="w", lease_s=60, accounts=[account]
                )
                got[(account, i)] = await ledger.reserve_export(
                    conn, [job], f"q{i}", owner="w", max_exports=3, stale_after_s=3600
                )
        assert [got[(ALICE, i)] for i in range(4)] == [True, True, True, False]
        assert got[(BOB, 0)] is True  # alice's three do not count against bob's cap
        out = ledger.exports_out
        assert await out(conn, stale_after_s=3600, account=ALICE) == 3
        assert await out(conn, stale_after_s=3600, account=BOB) == 1
        assert await out(conn, stale_after_s=3600) == 4


async def test_a_job_done_with_an_open_day_is_not_complete_and_a_backfill_refetches_it(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        await ledger.enqueue_jobs(conn, specs(1), force=False)
        await _done(conn, open_ids=True)
        assert await pool.fetchval("SELECT complete FROM ingest.jobs") is False
        await ledger.enqueue_jobs(conn, specs(1), force=False)  # no --force
        row = await pool.fetchrow("SELECT status, force FROM ingest.jobs")
        assert (row["status"], row["force"]) == ("pending", True)  # rebuilt: the day has grown
        await _done(conn)
        assert await pool.fetchval("SELECT complete FROM ingest.jobs") is True
        await ledger.enqueue_jobs(conn, specs(1), force=False)
        assert await pool.fetchval("SELECT status FROM ingest.jobs") == "done"


async def test_the_schedule_reopens_open_done_jobs_only(pool: asyncpg.Pool) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    async with pool.acquire() as conn:
        wanted = [(s, later) for s in specs(2)]
        await ledger.schedule_jobs(conn, wanted)
        (first,) = await ledger.claim_batch(conn, Vendor.vidicenter, owner="a", lease_s=60)
        await ledger.mark_done(conn, {first.id: 1}, owner="a", open_ids=[first.id])
        (second,) = await ledger.claim_batch(conn, Vendor.vidicenter, owner="a", lease_s=60)
        await ledger.mark_done(conn, {second.id: 1}, owner="a")  # final
        assert await ledger.schedule_jobs(conn, wanted) == 1
        assert await statuses(pool) == {first.id: "pending", second.id: "done"}


async def test_open_days_of_the_given_accounts_are_reopened_whatever_their_day(
    pool: asyncpg.Pool,
) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    async with pool.acquire() as conn:
        await ledger.enqueue_jobs(conn, specs(2), force=False)
        await ledger.enqueue_jobs(conn, specs(1, BOB), force=False)
        alice = await _done(conn, open_ids=True)
        bob = await _done(conn, account=BOB, open_ids=True)
        reopen = ledger.reopen_open_jobs
        earlier = later - timedelta(days=1)
        assert await reopen(conn, Vendor.vidicenter, [ALICE], stale_before=earlier) == 0
        assert await reopen(conn, Vendor.vidicenter, [ALICE], stale_before=later) == 2
    rows = await pool.fetch("SELECT id, status, force FROM ingest.jobs ORDER BY id")
    assert {r["id"]: (r["status"], r["force"]) for r in rows} == {
        alice[0]: ("pending", True),
        alice[1]: ("pending", True),
        bob[0]: ("done", False),  # another account's
    }


async def test_a_forced_export_the_vendor_took_is_not_forced_again_after_another_failure(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        await ledger.enqueue_jobs(conn, specs(2), force=True)
        first, second = (
            await ledger.claim_batch(conn, Vendor.vidicenter, owner="a", lease_s=60),
            await ledger.claim_batch(conn, Vendor.vidicenter, owner="a", lease_s=60),
        )
        (taken,), (not_taken,) = first, second
        await ledger.reserve_export(
            conn, [taken], "q1", owner="a", max_exports=3, stale_after_s=3600
        )
        await ledger.mark_export_started(conn, [taken])  # the forced request was taken
        await fail(conn, [taken], BadPayload("cut short"), owner="a", max_attempts=5)
        await fail(conn, [not_taken], BadPayload("cut short"), owner="a", max_attempts=5)
    forced = {r["id"]: r["force"] for r in await pool.fetch("SELECT id, force FROM ingest.jobs")}
    # the rebuild happened once; the job whose forced request never went out still asks
    assert forced == {taken.id: False, not_taken.id: True}


async def test_handing_back_unheld_leases_spares_another_accounts_group(pool: asyncpg.Pool) -> None:
    from ingest.ledger import presence

    async with pool.acquire() as conn:
        await ledger.enqueue_jobs(conn, specs(1), force=False)
        await ledger.enqueue_jobs(conn, specs(1, BOB), force=False)
        claim = ledger.claim_batch
        (alices,) = await claim(conn, Vendor.vidicenter, owner="w", lease_s=60, accounts=[ALICE])
        (bobs,) = await claim(conn, Vendor.vidicenter, owner="w", lease_s=60, accounts=[BOB])
        # alice's group lost the answer of a claim: it holds nothing it knows of
        handed = await presence.hand_back_unheld(
            conn, Vendor.vidicenter, "w", held=[], accounts=[ALICE]
        )
    assert handed == [alices.id]
    assert await statuses(pool) == {alices.id: "pending", bobs.id: "running"}
