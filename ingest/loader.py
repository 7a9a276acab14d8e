"""Bulk loading: COPY into staging, then one upsert, or a slice replaced; all in the caller's
transaction, so the rows and the jobs' `done` are committed together."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

import asyncpg

from ingest.datatypes import TableSpec
from ingest.db import Connection
from ingest.errors import BadPayload
from ingest.normalize.vidicenter import NormalizedExport

VIDICENTER = "vidicenter"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def upsert_records(
    conn: Connection,
    *,
    schema: str,
    table: str,
    columns: Sequence[str],
    key: Sequence[str],
    records: Sequence[tuple[Any, ...]],
) -> int:
    """COPY the records into a staging table, then one INSERT ... ON CONFLICT DO UPDATE."""
    if not records:
        return 0
    stage = f"_stage_{table}"
    target = f"{_ident(schema)}.{_ident(table)}"
    cols = ", ".join(_ident(c) for c in columns)
    updates = ", ".join(f"{_ident(c)} = EXCLUDED.{_ident(c)}" for c in columns if c not in key)
    await conn.execute(
        f"CREATE TEMP TABLE {_ident(stage)} (LIKE {target} INCLUDING DEFAULTS) ON COMMIT DROP"
    )
    await conn.copy_records_to_table(stage, records=records, columns=list(columns))
    try:
        await conn.execute(
            f"""
            INSERT INTO {target} ({cols}) SELECT {cols} FROM {_ident(stage)}
            ON CONFLICT ({", ".join(_ident(c) for c in key)})
            DO UPDATE SET {updates}, ingested_at = now()
            """
        )
    except asyncpg.CardinalityViolationError:
        raise BadPayload(
            f"the export has two rows with the same key ({', '.join(key)}) for {schema}.{table}"
        ) from None
    await conn.execute(f"DROP TABLE {_ident(stage)}")
    return len(records)


async def _replace_finest(
    conn: Connection, export: NormalizedExport, scope_ids: Sequence[int], day: date
) -> int:
    table = export.rows.table
    assert table.slice_column is not None
    start = datetime.combine(day, time.min)
    end = start + timedelta(days=1)
    columns = [c.name for c in table.columns]
    ts = columns.index("period_start")
    for i, record in enumerate(export.rows.records):
        when = record[ts]
        if not isinstance(when, datetime) or not start <= when < end:
            raise BadPayload(f"row {i}: period_start {when} is outside the requested day {day}")
    target = f"{_ident(VIDICENTER)}.{_ident(table.name)}"
    await conn.execute(
        f"DELETE FROM {target} WHERE {_ident(table.slice_column)} = ANY($1::bigint[])"
        " AND period_start >= $2 AND period_start < $3",
        list(scope_ids),
        start,
        end,
    )
    records: Sequence[tuple[Any, ...]] = export.rows.records
    if export.child is not None:
        child_table = export.child.table
        ids = [
            r[0]
            for r in await conn.fetch(
                f"SELECT nextval('{VIDICENTER}.{table.name}_id_seq') FROM generate_series(1, $1)",
                len(records),
            )
        ]
        await conn.copy_records_to_table(
            table.name,
            schema_name=VIDICENTER,
            records=[(ids[i], *r) for i, r in enumerate(records)],
            columns=["id", *columns],
        )
        await conn.copy_records_to_table(
            child_table.name,
            schema_name=VIDICENTER,
            records=[(ids[int(r[0])], *r[1:]) for r in export.child.records],  # type: ignore[call-overload]
            columns=[f"{table.name}_id", *(c.name for c in child_table.columns)],
        )
        return len(records)
    await conn.copy_records_to_table(
        table.name, schema_name=VIDICENTER, records=records, columns=columns
    )
    return len(records)


async def load_export(
    conn: Connection, export: NormalizedExport, *, scope_ids: Sequence[int], day: date
) -> int:
    """Store one normalized export: upsert aggregated rows, or replace the finest slices
    of (scope id, day). Returns the number of rows written."""
    table: TableSpec = export.rows.table
    if table.key is None:
        return await _replace_finest(conn, export, scope_ids, day)
    return await upsert_records(
        conn,
        schema=VIDICENTER,
        table=table.name,
        columns=[c.name for c in table.columns],
        key=table.key,
        records=export.rows.records,
    )
