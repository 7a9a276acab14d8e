"""Bulk loading: COPY into staging, then one upsert, or a slice replaced; all in the caller's
transaction, so the rows and the jobs' `done` are committed together."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from itertools import chain
from operator import itemgetter
from typing import Any

import asyncpg

from ingest.datatypes import SCHEMA as VIDICENTER
from ingest.datatypes import TableSpec
from ingest.db import Connection
from ingest.errors import BadPayload
from ingest.normalize.vidicenter import NormalizedExport, TableRows


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


@dataclass
class Loaded:
    """What a load wrote: rows in all, and rows per scope id (location or site)."""

    rows: int = 0
    by_scope: Counter[int] = field(default_factory=Counter)
    seen: int = 0  # rows of the export read so far, kept or not

    def add(self, chunk: NormalizedExport, whole: NormalizedExport) -> None:
        self.rows += len(chunk.rows.records)
        self.by_scope.update(chunk.counts_by_scope())
        self.seen += len(whole.rows.records)


def _within_day(
    chunk: NormalizedExport, start: datetime, end: datetime, first: int
) -> NormalizedExport:
    """The chunk without the rows that start at or after the day's end.

    The export asks up to the next midnight, which a vendor may count in: such rows belong
    to the next day's job, which asks for them too. A raw row before the day would escape
    the slice a re-ingest replaces: BadPayload. (An aggregate may start before the day, a
    1M period say.)
    """
    table = chunk.rows.table
    ts = table.column_names.index("period_start")
    records = chunk.rows.records
    if not records:
        return chunk
    when_of = itemgetter(ts)
    if min(map(when_of, records)) >= start and max(map(when_of, records)) < end:
        return chunk  # the usual case, checked without a list
    whens: list[datetime] = [r[ts] for r in records]  # type: ignore[misc]
    finest = table.key is None
    keep: list[bool] = []
    for i, when in enumerate(whens):
        if finest and when < start:
            raise BadPayload(
                f"row {first + i}: period_start {when} is before the requested day {start.date()}"
            )
        keep.append(when < end)
    rows = TableRows(table, [r for r, k in zip(records, keep, strict=True) if k])
    if chunk.child is None:
        return NormalizedExport(rows)
    new_index: dict[object, int] = {}
    for i, kept in enumerate(keep):
        if kept:
            new_index[i] = len(new_index)
    children = [(new_index[r[0]], *r[1:]) for r in chunk.child.records if r[0] in new_index]
    return NormalizedExport(rows, TableRows(chunk.child.table, children))


async def _replace_finest(
    conn: Connection,
    table: TableSpec,
    chunks: Iterable[NormalizedExport],
    scope_ids: Sequence[int],
    day: date,
    account: str,
) -> Loaded:
    assert table.slice_column is not None and table.account_column is not None
    start = datetime.combine(day, time.min)
    end = start + timedelta(days=1)
    target = table.qualified_name
    # the slice is the account's: another account's location of the same id is not touched
    await conn.execute(
        f"DELETE FROM {target} WHERE {_ident(table.account_column)} = $4"
        f" AND {_ident(table.slice_column)} = ANY($1::bigint[])"
        " AND period_start >= $2 AND period_start < $3",
        list(scope_ids),
        start,
        end,
        account,
    )
    loaded = Loaded()
    if table.child is not None:
        # viewers and their contents: ids are taken first so the children can point at them
        for whole in chunks:
            chunk = _within_day(whole, start, end, loaded.seen)
            await _copy_with_children(conn, table, chunk)
            loaded.add(chunk, whole)
        return loaded

    def records() -> Iterator[list[tuple[object, ...]]]:
        # each slice is converted while the database takes in the one before
        for whole in chunks:
            chunk = _within_day(whole, start, end, loaded.seen)
            loaded.add(chunk, whole)
            yield chunk.rows.records

    await conn.copy_records_to_table(
        table.name,
        schema_name=VIDICENTER,
        records=chain.from_iterable(records()),
        columns=list(table.column_names),
    )
    return loaded


async def _copy_with_children(conn: Connection, table: TableSpec, chunk: NormalizedExport) -> None:
    """Parents with ids taken in bulk from their sequence, then children pointing at them."""
    assert chunk.child is not None and table.id_column and table.id_sequence
    child_table = chunk.child.table
    assert child_table.parent_column is not None
    records = chunk.rows.records
    ids = [
        r[0]
        for r in await conn.fetch(
            "SELECT nextval($1::regclass) FROM generate_series(1, $2)",
            table.id_sequence,
            len(records),
        )
    ]
    await conn.copy_records_to_table(
        table.name,
        schema_name=VIDICENTER,
        records=[(ids[i], *r) for i, r in enumerate(records)],
        columns=[table.id_column, *table.column_names],
    )
    await conn.copy_records_to_table(
        child_table.name,
        schema_name=VIDICENTER,
        records=[(ids[int(r[0])], *r[1:]) for r in chunk.child.records],  # type: ignore[call-overload]
        columns=[child_table.parent_column, *child_table.column_names],
    )


async def load_export(
    conn: Connection,
    table: TableSpec,
    chunks: Iterable[NormalizedExport],
    *,
    scope_ids: Sequence[int],
    day: date,
    account: str,
) -> Loaded:
    """Store one export of the account, given as slices of normalized rows: upsert
    aggregated rows, or replace the finest slices of (account, scope id, day)."""
    if table.key is None:
        return await _replace_finest(conn, table, chunks, scope_ids, day, account)
    start = datetime.combine(day, time.min)
    end = start + timedelta(days=1)
    loaded = Loaded()
    records: list[tuple[object, ...]] = []
    for whole in chunks:  # aggregated exports are small: one upsert
        chunk = _within_day(whole, start, end, loaded.seen)
        loaded.add(chunk, whole)
        records += chunk.rows.records
    await upsert_records(
        conn,
        schema=VIDICENTER,
        table=table.name,
        columns=list(table.column_names),
        key=table.key,
        records=records,
    )
    return loaded
