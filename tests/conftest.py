"""Real PostgreSQL for tests: every test gets a database of its own, dropped afterwards."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from hypothesis import settings

from ingest import db

# CI draws the same examples on every run, so a red build is reproducible; a developer's
# runs keep exploring new ones.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

ADMIN_URL = os.environ.get("INGEST_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
TEMPLATE = f"ingest_tpl_{os.getpid()}"


def database_url(name: str) -> str:
    parts = urlsplit(ADMIN_URL)
    return urlunsplit(parts._replace(path="/" + name))


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _create_template() -> None:
    await _admin(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")
    await _admin(f"CREATE DATABASE {TEMPLATE}")
    conn = await asyncpg.connect(database_url(TEMPLATE))
    try:
        await db.migrate(conn)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def migrated_template() -> Iterator[str]:
    """A database with every migration applied, copied for each test that needs one."""
    asyncio.run(_create_template())
    yield TEMPLATE
    asyncio.run(_admin(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)"))


@pytest.fixture
async def empty_db_url() -> AsyncIterator[str]:
    """The URL of a new, empty database."""
    name = f"ingest_t_{uuid.uuid4().hex[:12]}"
    await _admin(f"CREATE DATABASE {name}")
    try:
        yield database_url(name)
    finally:
        await _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
async def db_url(migrated_template: str) -> AsyncIterator[str]:
    """The URL of a new database with every migration applied."""
    name = f"ingest_t_{uuid.uuid4().hex[:12]}"
    await _admin(f"CREATE DATABASE {name} TEMPLATE {migrated_template}")
    try:
        yield database_url(name)
    finally:
        await _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await db.create_pool(db_url, max_size=6)
    try:
        yield p
    finally:
        await p.close()
