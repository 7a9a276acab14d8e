"""Two VidiCenter accounts end to end: two simulators with different credentials, different
data and the same location ids, one database, `ingest` as a subprocess."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from .vidicenter_support import (
    Simulator,
    assert_no_violations,
    backfill_args,
    day_query,
    ingest_env,
    plain_value,
    run_ingest,
    simulator,
    vendor_rows,
)

pytestmark = pytest.mark.slow

DAY = date(2024, 3, 5)
LOCATIONS = ("1001", "1002")  # both accounts have them: different screens, same ids
ALICE, BOB = "127.0.0.1/alice", "127.0.0.1/bob"
# columns of both viewers tables that tell one account's rows from the other's
KEYS = ("location_id", "period_start", "gender", "dwell_time_in_tenths_of_sec")


@asynccontextmanager
async def two_accounts() -> AsyncIterator[tuple[Simulator, Simulator]]:
    async with (
        simulator(build_seconds=0.05, seed=1, vidicenter_username="alice",
                  vidicenter_token="alice-token") as alice,
        simulator(build_seconds=0.05, seed=2, vidicenter_username="bob",
                  vidicenter_token="bob-token") as bob,
    ):  # fmt: skip
        yield alice, bob


def env_for(db_url: str, alice: Simulator | None, bob: Simulator | None) -> dict[str, str]:
    """Alice in the single-account variables, Bob in INGEST_VIDICENTER_ACCOUNTS; either
    may be left out."""
    settings: dict[str, Any] = {"vidicenter_username": None, "vidicenter_token": None}
    if alice is not None:
        settings = {"vidicenter_username": "alice", "vidicenter_token": "alice-token"}
    env = ingest_env(db_url, alice, **settings)
    if bob is not None:
        account = {"url": bob.url, "username": "bob", "token": "bob-token", "locations": ""}
        env["INGEST_VIDICENTER_ACCOUNTS"] = json.dumps([account])
    return env


async def stored(pool: asyncpg.Pool, table: str, account: str) -> list[tuple[object, ...]]:
    rows = await pool.fetch(
        f"SELECT {', '.join(KEYS)} FROM vidicenter.{table} WHERE account = $1",
        account,
    )
    return sorted(tuple(r) for r in rows)


def served(sim: Simulator, resolution: str) -> list[tuple[object, ...]]:
    query = day_query("viewers", resolution, DAY, locations=",".join(LOCATIONS))
    return sorted(tuple(plain_value(r.get(k)) for k in KEYS) for r in vendor_rows(sim, query))


async def test_each_accounts_rows_land_in_its_place_and_a_rebuild_touches_only_its_own(
    db_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    async with two_accounts() as (alice, bob):
        env = env_for(db_url, alice, bob)
        for account in (ALICE, BOB):
            for resolution in ("1h", "finest"):
                args = backfill_args("viewers", DAY, resolution=resolution, locations=LOCATIONS)
                ran = await run_ingest(env, *args, "--account", account, cwd=tmp_path)
                assert ran.code == 0, ran.explain()
        expected = {
            (account, table): served(sim, resolution)
            for account, sim in ((ALICE, alice), (BOB, bob))
            for table, resolution in (("viewers", "1h"), ("viewers_finest", "finest"))
        }
        bobs_finest = await pool.fetch(
            "SELECT ingested_at FROM vidicenter.viewers_finest WHERE account = $1", BOB
        )
        # alice's slice of location 1001 is replaced: bob's location 1001 is another screen
        alice.state.late_uploads()
        expected[(ALICE, "viewers_finest")] = served(alice, "finest")
        args = backfill_args("viewers", DAY, resolution="finest", locations=LOCATIONS)
        ran = await run_ingest(env, *args, "--account", ALICE, "--force", cwd=tmp_path)
        assert ran.code == 0, ran.explain()
        assert_no_violations(alice)
        assert_no_violations(bob)

    for (account, table), rows in expected.items():
        assert await stored(pool, table, account) == rows, (account, table)
    assert expected[(ALICE, "viewers")] != expected[(BOB, "viewers")]  # two fleets' data
    assert sorted(
        await pool.fetch(
            "SELECT ingested_at FROM vidicenter.viewers_finest WHERE account = $1", BOB
        )
    ) == sorted(bobs_finest)
    jobs = await pool.fetch("SELECT account, count(*) AS n FROM ingest.jobs GROUP BY 1 ORDER BY 1")
    assert [tuple(r) for r in jobs] == [(ALICE, 4), (BOB, 4)]  # 2 locations x 2 resolutions


async def test_a_worker_touches_only_the_jobs_of_its_own_accounts(
    db_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    async with two_accounts() as (alice, bob):
        both = env_for(db_url, alice, bob)
        for account in (ALICE, BOB):
            args = backfill_args("viewers", DAY, resolution="1h", locations=LOCATIONS)
            ran = await run_ingest(
                both, *args, "--account", account, "--enqueue-only", cwd=tmp_path
            )
            assert ran.code == 0, ran.explain()

        bobs_calls = bob.stats()["vidicenter_calls"]  # the enqueueing checked bob's scope

        ran = await run_ingest(env_for(db_url, alice, None), "run", "--once", cwd=tmp_path)
        assert ran.code == 0, ran.explain()
        after_alice = await pool.fetch(
            "SELECT account, status, attempts FROM ingest.jobs ORDER BY account, id"
        )
        assert [tuple(r) for r in after_alice] == [
            (ALICE, "done", 1),
            (ALICE, "done", 1),
            (BOB, "pending", 0),
            (BOB, "pending", 0),
        ]
        assert bob.calls == [] and bob.stats()["vidicenter_calls"] == bobs_calls  # not asked

        ran = await run_ingest(env_for(db_url, None, bob), "run", "--once", cwd=tmp_path)
        assert ran.code == 0, ran.explain()
        assert len(alice.starts()) == 1 and len(bob.starts()) == 1

    assert await stored(pool, "viewers", ALICE) == served(alice, "1h")
    assert await stored(pool, "viewers", BOB) == served(bob, "1h")


async def test_the_demo_refuses_a_database_with_real_data_in_one_line_and_writes_nothing(
    db_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    async with two_accounts() as (alice, _bob):
        env = env_for(db_url, alice, None)
        args = backfill_args("ots", DAY, resolution="1h", locations=LOCATIONS)
        ran = await run_ingest(env, *args, cwd=tmp_path)
        assert ran.code == 0, ran.explain()
    before = await pool.fetch("SELECT * FROM ingest.jobs ORDER BY id")

    demo = await run_ingest(env, "demo", cwd=tmp_path)

    assert demo.code == 2, demo.explain()
    assert demo.out == ""
    (line,) = demo.err.strip().splitlines()
    assert line == (
        "ingest: INGEST_DATABASE_URL: the demo writes simulated data, and this database "
        f"holds real data (ingest.jobs holds 2 vidicenter job(s) of {ALICE}); point "
        "INGEST_DATABASE_URL at a database of its own"
    )
    assert await pool.fetch("SELECT * FROM ingest.jobs ORDER BY id") == before
    assert await pool.fetchval("SELECT count(*) FROM angus.entities") == 0
