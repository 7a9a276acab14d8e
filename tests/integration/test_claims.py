"""Claims that pack: the ledger's side of the planner, against real PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta

import asyncpg

from ingest import ledger
from ingest.domain import JobSpec, Scope, Vendor
from ingest.planner import Sites

from .ledger_support import packing

DAY = date(2026, 3, 1)
ALICE = "vidicenter.example.com/alice"
BOB = "vidicenter.example.com/bob"


def fleet(
    locations: int,
    days: int,
    data_type: str = "viewers",
    res: str = "1h",
    account: str = ALICE,
) -> list[JobSpec]:
    return [
        JobSpec(
            Vendor.vidicenter,
            data_type,
            res,
            Scope.location(1001 + i),
            DAY + timedelta(days=d),
            {},
            account,
        )
        for d in range(days)
        for i in range(locations)
    ]


async def claim(
    conn: asyncpg.Connection, owner: str = "a", sites: Sites | None = None, **limits: int
) -> list:
    by_account = {ALICE: sites} if sites is not None else None
    return await ledger.claim_batch(
        conn,
        Vendor.vidicenter,
        owner=owner,
        lease_s=60,
        packing=packing(sites=by_account, **limits),
    )


async def test_a_claim_takes_more_locations_when_it_can_name_their_sites(
    pool: asyncpg.Pool,
) -> None:
    # three sites of ten locations each; a line of 100 bytes + 5 per location or site listed
    sites = Sites(
        {str(501 + s): frozenset(str(1001 + 10 * s + i) for i in range(10)) for s in range(3)},
        {str(1001 + i): str(501 + i // 10) for i in range(30)},
    )
    async with pool.acquire() as conn:
        await ledger.enqueue_jobs(conn, fleet(30, 2), force=False)
        listed = await claim(conn, max_line=200)  # 20 locations listed at most
        assert len({j.scope for j in listed}) == 15  # 30 in two balanced exports
        await conn.execute("DELETE FROM ingest.jobs")
        await ledger.enqueue_jobs(conn, fleet(30, 2), force=False)
        named = await claim(conn, sites=sites, max_line=200)
    assert len(named) == 60  # every location and day: three sites named


async def test_a_claim_packs_locations_and_consecutive_days_into_one_export(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        await ledger.enqueue_jobs(conn, fleet(5, 10), force=False)
        await ledger.enqueue_jobs(conn, fleet(5, 10, data_type="ots"), force=False)
        batch = await claim(conn)
    assert len(batch) == 50
    assert {j.data_type for j in batch} == {"viewers"}
    assert {j.day for j in batch} == {DAY + timedelta(days=d) for d in range(10)}


async def test_jobs_of_two_accounts_never_share_an_export(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await ledger.enqueue_jobs(conn, fleet(3, 4), force=False)
        await ledger.enqueue_jobs(conn, fleet(3, 4, account=BOB), force=False)
        first = await claim(conn)
        second = await claim(conn, owner="b")
    assert {j.account for j in first} == {ALICE} and len(first) == 12
    assert {j.account for j in second} == {BOB} and len(second) == 12


async def test_the_rows_an_export_may_hold_bound_its_days(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await ledger.enqueue_jobs(conn, fleet(5, 10), force=False)
        first = await claim(conn, max_rows=5 * 24 * 4)  # four days of five locations
        second = await claim(conn, max_rows=5 * 24 * 4)
    assert len({j.day for j in first}) == 4 and len({j.scope for j in first}) == 5
    assert min(j.day for j in second) == DAY + timedelta(days=4)


async def test_raw_rows_are_estimated_from_the_rows_seen_for_each_location(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        await ledger.enqueue_jobs(conn, fleet(2, 10, res="finest"), force=False)
        # nothing seen yet: 20,000 rows a location-day, five location-days in 100,000 rows
        for _ in range(2):
            first = await claim(conn, max_rows=100_000)
            assert len(first) == 5 and len({j.scope for j in first}) == 1
            await ledger.mark_done(conn, {j.id: 800 for j in first}, owner="a")
        # 800 seen for each: 1,000 with the margin, so the rest fits in one export
        rest = await claim(conn, max_rows=100_000)
    assert len(rest) == 10


async def test_a_job_whose_export_is_out_brings_every_job_of_that_export(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        await ledger.enqueue_jobs(conn, fleet(3, 4), force=False)
        batch = await claim(conn)
        assert await ledger.reserve_export(
            conn, batch, "q", owner="a", max_exports=3, stale_after_s=3600
        )
        await ledger.release_jobs(conn, batch, owner="a")  # the worker stops; the export goes on
        # a claim that packs fewer would take them all back: the export is resumed whole
        resumed = await claim(conn, "b", max_scopes=1, max_rows=24)
    assert sorted(j.id for j in resumed) == sorted(j.id for j in batch)
    assert {j.export_query for j in resumed} == {"q"}


async def test_the_halves_of_a_split_export_go_out_as_two_exports(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await ledger.enqueue_jobs(conn, fleet(2, 4), force=False)
        batch = await claim(conn)
        first = [j for j in batch if j.day < DAY + timedelta(days=2)]
        second = [j for j in batch if j.day >= DAY + timedelta(days=2)]
        await ledger.record_split(conn, [first, second], "failed", owner="a")
        again = [await claim(conn), await claim(conn)]
        rows = await conn.fetch("SELECT attempts, last_error FROM ingest.jobs")
    assert sorted(sorted(j.id for j in half) for half in again) == sorted(
        sorted(j.id for j in half) for half in (first, second)
    )
    # the cut is not a try: each job is on its first again
    assert {r["attempts"] for r in rows} == {1}
    assert {r["last_error"] for r in rows} == {"failed"}


async def test_jobs_of_other_days_held_by_another_worker_are_not_packed(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        ids = await ledger.enqueue_jobs(conn, fleet(2, 6), force=False)
        # another worker holds day 3 of one location: the block stops before it
        await conn.execute(
            "UPDATE ingest.jobs SET status = 'running', lease_owner = 'x',"
            " lease_expires_at = now() + interval '1 minute'"
            " WHERE scope = 'location:1002' AND day = $1",
            DAY + timedelta(days=2),
        )
        batch = await claim(conn)
    assert {j.day for j in batch} == {DAY, DAY + timedelta(days=1)}
    assert len(batch) == 4 and all(j.id in ids for j in batch)
