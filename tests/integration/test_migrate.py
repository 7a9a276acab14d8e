import asyncio
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from ingest import db
from ingest.errors import MigrationError


async def _tables(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT table_schema || '.' || table_name AS t FROM information_schema.tables"
            " WHERE table_schema IN ('ingest', 'vidicenter', 'angus')"
        )
        return {r["t"] for r in rows}
    finally:
        await conn.close()


async def test_migrations_apply_to_an_empty_database(empty_db_url: str) -> None:
    conn = await asyncpg.connect(empty_db_url)
    try:
        applied = await db.migrate(conn)
        assert applied == [m.name for m in db.load_migrations()]
        assert await db.pending_migrations(conn) == []
    finally:
        await conn.close()
    tables = await _tables(empty_db_url)
    assert {
        "ingest.jobs",
        "ingest.schema_migrations",
        "angus.entities",
        "vidicenter.viewers",
        "vidicenter.viewers_finest",
    } <= tables


async def test_applying_again_is_a_no_op(empty_db_url: str) -> None:
    conn = await asyncpg.connect(empty_db_url)
    try:
        await db.migrate(conn)
        before = await conn.fetch("SELECT version, applied_at FROM ingest.schema_migrations")
        assert await db.migrate(conn) == []
        after = await conn.fetch("SELECT version, applied_at FROM ingest.schema_migrations")
        assert before == after
    finally:
        await conn.close()


async def test_an_edited_migration_is_refused(empty_db_url: str, tmp_path: Path) -> None:
    (tmp_path / "001_first.sql").write_text("CREATE TABLE ingest.t1 (x int);")
    conn = await asyncpg.connect(empty_db_url)
    try:
        await db.migrate(conn, db.load_migrations(tmp_path))
        (tmp_path / "001_first.sql").write_text("CREATE TABLE ingest.t1 (x bigint);")
        with pytest.raises(MigrationError, match=r"001_first\.sql was changed"):
            await db.migrate(conn, db.load_migrations(tmp_path))
    finally:
        await conn.close()


async def test_a_failing_migration_leaves_nothing_behind(empty_db_url: str, tmp_path: Path) -> None:
    (tmp_path / "001_ok.sql").write_text("CREATE TABLE ingest.ok (x int);")
    (tmp_path / "002_bad.sql").write_text("CREATE TABLE ingest.half (x int); SELECT nonsense;")
    conn = await asyncpg.connect(empty_db_url)
    try:
        with pytest.raises(asyncpg.PostgresError):
            await db.migrate(conn, db.load_migrations(tmp_path))
        versions = await conn.fetch("SELECT version FROM ingest.schema_migrations")
        assert [r["version"] for r in versions] == [1]
        assert await conn.fetchval("SELECT to_regclass('ingest.half')") is None
    finally:
        await conn.close()


def _ingest_migrate(url: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    env["INGEST_DATABASE_URL"] = url
    return subprocess.Popen(
        [sys.executable, "-m", "ingest", "migrate"],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


async def test_two_concurrent_migrate_processes_apply_each_file_once(empty_db_url: str) -> None:
    procs = [_ingest_migrate(empty_db_url) for _ in range(2)]
    results = await asyncio.gather(*(asyncio.to_thread(p.communicate, timeout=60) for p in procs))
    assert [p.returncode for p in procs] == [0, 0], results
    outs = sorted(r[0] for r in results)
    names = [m.name for m in db.load_migrations()]
    assert outs[0].startswith("applied 0 migration") or outs[1].startswith("applied 0 migration")
    conn = await asyncpg.connect(empty_db_url)
    try:
        rows = await conn.fetch("SELECT name FROM ingest.schema_migrations ORDER BY version")
        assert [r["name"] for r in rows] == names
    finally:
        await conn.close()
