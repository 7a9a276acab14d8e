"""The migrated database's catalogue agrees with the registry: every table, column, type,
NULL-ability, natural key, slice index, sequence, reference and comment."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from ingest.datatypes import REGISTRY, SCHEMA, TableSpec

# information_schema's data_type for each registry type
_CATALOGUE_TYPES = {
    "bigint": "bigint",
    "integer": "integer",
    "double precision": "double precision",
    "text": "text",
    "timestamp": "timestamp without time zone",
    "jsonb": "jsonb",
}


@pytest.fixture
async def conn(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    c = await asyncpg.connect(db_url)
    try:
        yield c
    finally:
        await c.close()


async def _columns(conn: asyncpg.Connection, table: str) -> dict[str, asyncpg.Record]:
    rows = await conn.fetch(
        """
        SELECT column_name, data_type, is_nullable, column_default
        FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2
        """,
        SCHEMA,
        table,
    )
    return {r["column_name"]: r for r in rows}


async def test_the_schema_holds_exactly_the_registry_tables(conn: asyncpg.Connection) -> None:
    rows = await conn.fetch(
        "SELECT table_name FROM information_schema.tables"
        " WHERE table_schema = $1 AND table_type = 'BASE TABLE'",
        SCHEMA,
    )
    assert {r["table_name"] for r in rows} == {t.name for t in REGISTRY.tables()}


@pytest.mark.parametrize("table", REGISTRY.tables(), ids=lambda t: t.name)
async def test_columns_are_the_registry_columns_plus_bookkeeping(
    conn: asyncpg.Connection, table: TableSpec
) -> None:
    columns = await _columns(conn, table.name)
    bookkeeping = ["ingested_at", *filter(None, [table.id_column, table.parent_column])]
    assert sorted(columns) == sorted([*table.column_names, *bookkeeping])
    for column in table.columns:
        found = columns[column.name]
        assert found["data_type"] == _CATALOGUE_TYPES[column.pg_type], column.name
        assert (found["is_nullable"] == "YES") is column.nullable, column.name
    assert columns["ingested_at"]["data_type"] == "timestamp with time zone"
    assert columns["ingested_at"]["is_nullable"] == "NO"
    assert columns["ingested_at"]["column_default"] == "now()"
    assert columns["extra"]["column_default"].startswith("'{}'")


@pytest.mark.parametrize("table", REGISTRY.tables(), ids=lambda t: t.name)
async def test_the_unique_constraint_is_the_natural_key(
    conn: asyncpg.Connection, table: TableSpec
) -> None:
    rows = await conn.fetch(
        """
        SELECT c.conname,
               array(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY AS k(n, i)
                     JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n
                     ORDER BY k.i) AS columns,
               pg_get_constraintdef(c.oid) AS definition
        FROM pg_constraint c WHERE c.conrelid = $1::regclass AND c.contype = 'u'
        """,
        table.qualified_name,
    )
    if table.key is None:
        assert rows == []
        return
    (row,) = rows
    assert row["conname"] == f"{table.name}_natural_key"
    assert tuple(row["columns"]) == table.key
    nullable_key = any(c.nullable for c in table.columns if c.name in table.key)
    assert ("NULLS NOT DISTINCT" in row["definition"]) is nullable_key


async def test_each_finest_slice_and_the_contents_parent_are_indexed(
    conn: asyncpg.Connection,
) -> None:
    rows = await conn.fetch(
        "SELECT tablename, indexdef FROM pg_indexes WHERE schemaname = $1", SCHEMA
    )
    indexes = [(r["tablename"], r["indexdef"]) for r in rows]
    for table in REGISTRY.tables():
        if table.slice_column:
            wanted = f"(account, {table.slice_column}, period_start)"
            assert any(t == table.name and wanted in d for t, d in indexes), table.name
    assert any(t == "viewers_apc_contents" and "(viewers_apc_id)" in d for t, d in indexes)


async def test_viewers_apc_ids_come_from_the_registry_sequence_and_contents_cascade(
    conn: asyncpg.Connection,
) -> None:
    apc = next(t for t in REGISTRY.tables() if t.id_sequence)
    columns = await _columns(conn, apc.name)
    assert apc.id_sequence is not None and apc.id_column is not None
    assert apc.id_sequence in columns[apc.id_column]["column_default"]
    reference = await conn.fetchval(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = 'vidicenter.viewers_apc_contents'::regclass AND contype = 'f'"
    )
    assert reference == (
        "FOREIGN KEY (viewers_apc_id) REFERENCES vidicenter.viewers_apc(id) ON DELETE CASCADE"
    )


async def test_every_table_has_a_comment(conn: asyncpg.Connection) -> None:
    for table in REGISTRY.tables():
        comment = await conn.fetchval(
            "SELECT obj_description($1::regclass, 'pg_class')", table.qualified_name
        )
        assert comment, table.name
