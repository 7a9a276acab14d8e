"""`ingest backfill --plan`: the exports a backfill would go out in, without a vendor call."""

from __future__ import annotations

import random
from datetime import date
from pathlib import Path

import asyncpg

from ingest import ledger
from ingest.domain import JobSpec, Scope, Vendor
from ingest.ledger.fleets import save_fleet
from tests.e2e.vidicenter_support import backfill_args, ingest_env, run_ingest

FLEET = tuple(str(1001 + i) for i in range(1000))
NOWHERE = "http://127.0.0.1:1"  # nothing listens there: a call would fail
ACCOUNT = "127.0.0.1/demo"  # the account of NOWHERE and the test environment's user


async def test_plan_prints_the_exports_and_their_cost_and_calls_no_vendor(
    db_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    env = ingest_env(db_url, None, vidicenter_url=NOWHERE)
    args = backfill_args("viewers", date(2024, 1, 1), date(2024, 1, 30), locations=FLEET)
    ran = await run_ingest(env, *args, "--resolution", "1h", "--plan", cwd=tmp_path)
    assert ran.code == 0, ran.explain()
    lines = ran.out.splitlines()
    assert lines[0].startswith("30000 job(s) of viewers at 1h: 1000 location(s) x 30 day(s)")
    # a request line takes about 790 ids: two exports of 500 locations and 30 days
    assert lines[1].startswith("2 export(s)")
    assert lines[2].startswith("  2024-01-01 to 2024-01-30: 30 day(s) x 500 location(s)")
    assert lines[4].startswith("no listing of the account's locations is stored yet")
    assert "at least 4 vendor call(s)" in ran.out
    assert await pool.fetchval("SELECT count(*) FROM ingest.jobs") == 0  # nothing enqueued


async def test_plan_names_whole_sites_as_the_stored_listing_has_them(
    db_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    # the account's locations as a run or backfill stored them: 1000 in sites of 5 to 20
    rng = random.Random(7)
    listing, site = [], 501
    while len(listing) < len(FLEET):
        for _ in range(rng.randint(5, 20)):
            if len(listing) < len(FLEET):
                listing.append({"id": int(FLEET[len(listing)]), "site_id": site, "active": True})
        site += 1
    await save_fleet(pool, ACCOUNT, listing)
    env = ingest_env(db_url, None, vidicenter_url=NOWHERE)
    args = backfill_args("viewers", date(2024, 1, 1), date(2024, 1, 30), locations=FLEET)
    ran = await run_ingest(env, *args, "--resolution", "1h", "--plan", cwd=tmp_path)
    assert ran.code == 0, ran.explain()
    lines = ran.out.splitlines()
    # 82 site ids instead of 1000 location ids: one export of every location
    assert lines[1].startswith("1 export(s)")
    assert lines[2].startswith("  2024-01-01 to 2024-01-30: 30 day(s) x 1000 location(s)")
    assert lines[2].endswith("bytes (82 site(s) named for 1000 location(s))"), lines[2]
    line_bytes = int(lines[2].split("request line ")[1].split()[0])
    assert line_bytes < 600
    assert lines[3].startswith("a site whose every active location is in an export is named")
    assert "at least 2 vendor call(s)" in ran.out


async def test_plan_leaves_out_the_days_already_done(
    db_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    async with pool.acquire() as conn:
        spec = JobSpec(
            Vendor.vidicenter, "ots", "1h", Scope.location(1001), date(2024, 1, 1), {}, ACCOUNT
        )
        (job_id,) = await ledger.enqueue_jobs(conn, [spec], force=False)
        await conn.execute("UPDATE ingest.jobs SET status = 'done' WHERE id = $1", job_id)
    env = ingest_env(db_url, None, vidicenter_url=NOWHERE)
    args = backfill_args("ots", date(2024, 1, 1), date(2024, 1, 2), locations=("1001", "1002"))
    ran = await run_ingest(env, *args, "--resolution", "1h", "--plan", cwd=tmp_path)
    assert ran.code == 0, ran.explain()
    assert "4 job(s) of ots at 1h" in ran.out and "1 already done" in ran.out
    forced = await run_ingest(env, *args, "--resolution", "1h", "--plan", "--force", cwd=tmp_path)
    assert "0 already done" in forced.out


async def test_plan_of_sites_exits_2_since_it_would_ask_the_vendor(tmp_path: Path) -> None:
    env = ingest_env("postgresql://postgres@127.0.0.1:1/nowhere", None, vidicenter_url=NOWHERE)
    args = backfill_args("viewers", date(2024, 1, 1), locations=None)
    ran = await run_ingest(env, *args, "--sites", "501", "--plan", cwd=tmp_path)
    assert ran.code == 2, ran.explain()
    assert ran.err.strip().startswith("ingest: --plan calls no vendor"), ran.err
