"""The asyncpg pool and the migration runner."""

from __future__ import annotations

import hashlib
import importlib.resources
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import asyncpg
import asyncpg.pool
import structlog

from ingest.errors import MigrationError

log = structlog.get_logger(__name__)

# A connection of its own or one borrowed from the pool: both run statements alike.
Connection: TypeAlias = "asyncpg.Connection[Any] | asyncpg.pool.PoolConnectionProxy[Any]"

# One key for every process that migrates this database: they take turns.
MIGRATION_LOCK_KEY = 0x696E6765_7374  # "ingest"
_NAME = re.compile(r"^(\d{3,})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def migrations_dir() -> Path:
    """The migrations of this installation: packaged in a wheel, or the checkout's folder."""
    packaged = Path(str(importlib.resources.files("ingest"))) / "migrations"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "migrations"


def load_migrations(folder: Path | None = None) -> list[Migration]:
    """Every numbered `.sql` file of the folder, in order; refuses gaps and duplicates."""
    folder = folder or migrations_dir()
    found: dict[int, Migration] = {}
    for path in sorted(folder.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"migration file {path.name!r} is not named NNN_name.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"two migrations are numbered {version}")
        found[version] = Migration(version, path.name, path.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


class PoolFloorNoise(logging.Filter):
    """asyncpg's pool warns, with a traceback, each time it fails to reopen its floor
    connection while the database is away; the worker's `db.lost` and `db.back` tell the
    outage, so each such record becomes one debug event of ours instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.getMessage().startswith("Failed to restore the pool connection floor"):
            return True
        error = record.exc_info[1] if record.exc_info else None
        log.debug(
            "db.pool_reconnect_failed",
            error=f"{type(error).__name__}: {error}" if error is not None else None,
        )
        return False


def route_pool_warnings() -> None:
    """Install PoolFloorNoise on asyncpg's pool logger, once per process."""
    pool_log = logging.getLogger("asyncpg.pool")
    if not any(isinstance(f, PoolFloorNoise) for f in pool_log.filters):
        pool_log.addFilter(PoolFloorNoise())


async def create_pool(database_url: str, *, max_size: int = 5) -> asyncpg.Pool:
    """A pool whose connections carry the application name, for pg_stat_activity."""
    route_pool_warnings()
    pool = await asyncpg.create_pool(
        database_url,
        min_size=1,
        max_size=max_size,
        server_settings={"application_name": "ingest"},
        command_timeout=300,
    )
    assert pool is not None
    return pool


async def migrate(conn: Connection, migrations: list[Migration] | None = None) -> list[str]:
    """Apply pending migrations, each in its own transaction; returns the names applied.

    An advisory lock makes concurrent runs take turns, so each file is applied once.
    """
    migrations = load_migrations() if migrations is None else migrations
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
    try:
        await conn.execute(
            """
            CREATE SCHEMA IF NOT EXISTS ingest;
            CREATE TABLE IF NOT EXISTS ingest.schema_migrations (
                version    integer PRIMARY KEY,
                name       text NOT NULL,
                checksum   text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            );
            """
        )
        applied = {
            r["version"]: r
            for r in await conn.fetch(
                "SELECT version, name, checksum FROM ingest.schema_migrations"
            )
        }
        for m in migrations:
            if m.version in applied and applied[m.version]["checksum"] != m.checksum:
                raise MigrationError(
                    f"migration {m.name} was changed after it was applied "
                    f"(checksum {applied[m.version]['checksum'][:12]}, file {m.checksum[:12]}); "
                    "add a new migration instead of editing an applied one"
                )
        done = []
        for m in migrations:
            if m.version in applied:
                continue
            async with conn.transaction():
                await conn.execute(m.sql)
                await conn.execute(
                    "INSERT INTO ingest.schema_migrations (version, name, checksum) "
                    "VALUES ($1, $2, $3)",
                    m.version,
                    m.name,
                    m.checksum,
                )
            log.info("migrate.applied", migration=m.name)
            done.append(m.name)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)


async def pending_migrations(conn: Connection) -> list[str]:
    """Names of migrations not yet applied (all of them on an empty database)."""
    exists = await conn.fetchval("SELECT to_regclass('ingest.schema_migrations') IS NOT NULL")
    applied: set[int] = set()
    if exists:
        applied = {
            r["version"] for r in await conn.fetch("SELECT version FROM ingest.schema_migrations")
        }
    return [m.name for m in load_migrations() if m.version not in applied]
