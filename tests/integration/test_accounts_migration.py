"""Moving a database from before accounts over: migration 005 leaves the VidiCenter jobs
and rows without an account, and `ingest migrate` hands them to the one configured
account; the Angus jobs take their stream in SQL alone. A demo never writes into a
database holding another account's data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import date, datetime

import asyncpg
import pytest

from ingest import db
from ingest.ledger.accounts import foreign_data

DAY = date(2024, 3, 5)
ACCOUNT = "vidicenter.example.com/alice"


def ingest(db_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    base |= {"INGEST_DATABASE_URL": db_url, "INGEST_LOG_FORMAT": "json"} | env
    return subprocess.run(
        [sys.executable, "-m", "ingest", *args],
        env=base,
        text=True,
        capture_output=True,
        timeout=60,
    )


@pytest.fixture
async def before_accounts(empty_db_url: str) -> AsyncIterator[str]:
    """A database at migration 004, holding jobs and rows of both vendors."""
    conn = await asyncpg.connect(empty_db_url)
    try:
        await db.migrate(conn, [m for m in db.load_migrations() if m.version <= 4])
        for vendor, data_type, scope, status, finished in (
            ("vidicenter", "viewers", "location:1", "done", datetime(2024, 3, 9)),
            ("vidicenter", "viewers", "location:2", "done", datetime(2024, 3, 5, 12)),
            ("angus", "entities", "stream:s1", "pending", None),
        ):
            await conn.execute(
                "INSERT INTO ingest.jobs (vendor, data_type, time_resolution, scope, day,"
                " status, finished_at) VALUES ($1, $2, '1h', $3, $4, $5, $6)",
                vendor,
                data_type,
                scope,
                DAY,
                status,
                finished,
            )
        await conn.execute(
            "INSERT INTO vidicenter.viewers (location_id, time_resolution, period_start,"
            " watcher_count) VALUES (1, '1h', '2024-03-05 10:00', 4)"
        )
        await conn.execute(
            "INSERT INTO vidicenter.viewers_finest (location_id, period_start)"
            " VALUES (1, '2024-03-05 10:00:27')"
        )
    finally:
        await conn.close()
    yield empty_db_url


def error_lines(stderr: str) -> list[str]:
    """What a command printed on stderr besides its (JSON) log lines."""
    return [line for line in stderr.strip().splitlines() if not line.startswith("{")]


async def _accounts(url: str) -> dict[str, list[tuple[str, str]]]:
    conn = await asyncpg.connect(url)
    try:
        jobs = await conn.fetch("SELECT vendor, account FROM ingest.jobs ORDER BY id")
        rows = await conn.fetch(
            "SELECT 'viewers' AS t, account FROM vidicenter.viewers"
            " UNION ALL SELECT 'viewers_finest', account FROM vidicenter.viewers_finest"
        )
    finally:
        await conn.close()
    return {"jobs": [tuple(r) for r in jobs], "rows": [tuple(r) for r in rows]}


async def test_migrate_hands_the_jobs_and_rows_from_before_accounts_to_the_one_account(
    before_accounts: str,
) -> None:
    ran = ingest(
        before_accounts,
        "migrate",
        INGEST_VIDICENTER_URL="https://vidicenter.example.com",
        INGEST_VIDICENTER_USERNAME="alice",
        INGEST_VIDICENTER_TOKEN="t",
    )

    assert ran.returncode == 0, ran.stderr
    applied, handed = ran.stdout.splitlines()
    assert applied.startswith("applied ") and "005_accounts.sql" in applied, applied
    assert handed == f"2 VidiCenter job(s) and 2 row(s) from before accounts handed to {ACCOUNT}"
    assert await _accounts(before_accounts) == {
        "jobs": [("vidicenter", ACCOUNT), ("vidicenter", ACCOUNT), ("angus", "s1")],
        "rows": [("viewers", ACCOUNT), ("viewers_finest", ACCOUNT)],
    }
    conn = await asyncpg.connect(before_accounts)
    try:
        complete = await conn.fetch("SELECT scope, complete FROM ingest.jobs ORDER BY id")
    finally:
        await conn.close()
    # fetched days after the day had ended: final; fetched the same day: refreshed
    assert [tuple(r) for r in complete] == [
        ("location:1", True),
        ("location:2", False),
        ("stream:s1", False),
    ]
    again = ingest(before_accounts, "migrate")  # nothing left to hand over
    assert again.stdout.strip() == "applied 0 migration(s)"


async def test_with_several_accounts_migrate_refuses_in_one_line_and_assigns_nothing(
    before_accounts: str,
) -> None:
    second = [{"url": "https://v2.example.com", "username": "bob", "token": "t2"}]
    ran = ingest(
        before_accounts,
        "migrate",
        INGEST_VIDICENTER_USERNAME="alice",
        INGEST_VIDICENTER_TOKEN="t",
        INGEST_VIDICENTER_ACCOUNTS=json.dumps(second),
    )

    assert ran.returncode == 2
    (line,) = error_lines(ran.stderr)
    assert line.startswith("ingest: INGEST_VIDICENTER_ACCOUNTS: the database holds 2 VidiCenter")
    assert "run `ingest migrate` once with only the account that owns them" in line
    accounts = await _accounts(before_accounts)
    assert {a for _, a in accounts["jobs"] if a != "s1"} == {""}
    # and a worker started so refuses too, before it touches anything
    run = ingest(
        before_accounts,
        "run",
        "--once",
        INGEST_VIDICENTER_USERNAME="alice",
        INGEST_VIDICENTER_TOKEN="t",
        INGEST_VIDICENTER_ACCOUNTS=json.dumps(second),
    )
    assert run.returncode == 2 and error_lines(run.stderr) == [line], run.stderr


async def test_without_a_vidicenter_account_they_wait_for_one(before_accounts: str) -> None:
    ran = ingest(before_accounts, "migrate")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines()[-1] == (
        "2 VidiCenter job(s) and 2 row(s) from before accounts wait for a VidiCenter account"
    )


async def test_a_database_from_before_accounts_counts_as_another_accounts_for_the_demo(
    before_accounts: str,
) -> None:
    conn = await asyncpg.connect(before_accounts)
    try:
        found = await foreign_data(conn, vidicenter=["127.0.0.1/demo"], streams=["s1"])
    finally:
        await conn.close()
    assert found == "ingest.jobs holds jobs from before accounts"


async def test_the_demos_own_data_is_not_another_accounts(pool: asyncpg.Pool) -> None:
    await pool.execute(
        "INSERT INTO ingest.jobs (vendor, account, data_type, time_resolution, scope, day)"
        " VALUES ('vidicenter', '127.0.0.1/demo', 'viewers', '1h', 'location:1', $1),"
        " ('angus', 'stream-1', 'entities', 'by_hour', 'stream:stream-1', $1)",
        DAY,
    )
    await pool.execute(
        "INSERT INTO vidicenter.ots (account, location_id, time_resolution, period_start)"
        " VALUES ('127.0.0.1/demo', 1, '1h', '2024-03-05 10:00')"
    )
    demo = {"vidicenter": ["127.0.0.1/demo"], "streams": ["stream-1", "stream-2"]}
    assert await foreign_data(pool, **demo) is None

    await pool.execute(
        "INSERT INTO vidicenter.ots (account, location_id, time_resolution, period_start)"
        " VALUES ($1, 1, '1h', '2024-03-05 10:00')",
        ACCOUNT,
    )
    assert await foreign_data(pool, **demo) == f"vidicenter.ots holds rows of {ACCOUNT}"
    await pool.execute(
        "INSERT INTO angus.entities (stream, time_bucket, period_start)"
        " VALUES ('real-stream', 'by_hour', now())"
    )
    await pool.execute("DELETE FROM vidicenter.ots WHERE account = $1", ACCOUNT)
    assert await foreign_data(pool, **demo) == "angus.entities holds rows of stream real-stream"
