"""Bulk loading: COPY into staging, then one upsert, or slices replaced; all in the caller's
transaction, so the rows and the jobs' `done` are committed together.

An export's rows are split back by (scope id, day): each such slice belongs to one job.
Rows of a slice that no claimed job owns are left out (the slice is another job's), and so
are the slices in `Slices.skip` (they hold a bad row; their job fails alone).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from itertools import chain
from operator import itemgetter
from typing import Any

import asyncpg

from ingest.buckets import COARSE, bucket_start
from ingest.datatypes import SCHEMA as VIDICENTER
from ingest.datatypes import TableSpec
from ingest.db import Connection
from ingest.errors import BadPayload, RowError
from ingest.normalize.vidicenter import NormalizedExport, TableRows

# (scope id, the job's day): the slice of an export one job owns; the scope id is None for
# extrapolated rows, which have none
Key = tuple[int | None, date]


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
    return await upsert_chunks(
        conn, schema=schema, table=table, columns=columns, key=key, chunks=[records]
    )


async def upsert_chunks(
    conn: Connection,
    *,
    schema: str,
    table: str,
    columns: Sequence[str],
    key: Sequence[str],
    chunks: Iterable[Sequence[tuple[Any, ...]]],
) -> int:
    """`upsert_records` for records that come a slice at a time: each slice is COPYed into
    staging as it comes, then one upsert takes them all."""
    stage = f"_stage_{table}"
    target = f"{_ident(schema)}.{_ident(table)}"
    cols = ", ".join(_ident(c) for c in columns)
    updates = ", ".join(f"{_ident(c)} = EXCLUDED.{_ident(c)}" for c in columns if c not in key)
    await conn.execute(
        f"CREATE TEMP TABLE {_ident(stage)} (LIKE {target} INCLUDING DEFAULTS) ON COMMIT DROP"
    )
    counted = [0]

    def records() -> Iterator[Sequence[tuple[Any, ...]]]:
        for chunk in chunks:
            counted[0] += len(chunk)
            yield chunk

    await conn.copy_records_to_table(
        stage, records=chain.from_iterable(records()), columns=list(columns)
    )
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
    return counted[0]


@dataclass(frozen=True)
class Slices:
    """Which of an export's rows are loaded, and whose they are."""

    table: TableSpec
    resolution: str
    start: datetime  # the export's start
    end: datetime  # the export's end (exclusive): rows from it on are the next job's
    owned: frozenset[Key]  # the slices of the claimed jobs
    asked: frozenset[int] | None  # the scope ids the export asked for (None: extrapolated)
    skip: frozenset[Key] = frozenset()  # slices with a bad row: left out
    account: str = ""  # the jobs' account: its rows alone are replaced

    def key_of(self, scope_id: int | None, day: date) -> Key:
        """The slice of a row's scope and calendar day (for 7d/30d/1M: its bucket)."""
        if self.resolution in COARSE:
            day = max(bucket_start(self.resolution, day), self.start.date())
        return (scope_id, day)


@dataclass
class Loaded:
    """What a load wrote: rows in all, and rows per slice."""

    rows: int = 0
    by_key: Counter[Key] = field(default_factory=Counter)


def _positions(table: TableSpec) -> tuple[int | None, int]:
    names = table.column_names
    scope = names.index(table.scope_column) if table.scope_column else None
    return scope, names.index("period_start")


def _owned_rows(chunk: NormalizedExport, slices: Slices) -> tuple[NormalizedExport, Counter[Key]]:
    """The chunk's rows that claimed jobs own, and how many each slice has.

    A raw row before the export's start would escape the slices a re-ingest replaces:
    RowError. (An aggregate may start before it, a 1M period say: it is the first job's.)
    Rows from the export's end on are the next job's: left out.
    """
    records = chunk.rows.records
    if not records:
        return chunk, Counter()
    scope_at, when_at = _positions(slices.table)
    whens: list[datetime] = list(map(itemgetter(when_at), records))
    scopes: list[int | None] = (
        list(map(itemgetter(scope_at), records)) if scope_at is not None else [None] * len(records)
    )
    if slices.asked is not None and (stray := set(scopes) - slices.asked):
        shown = sorted(s for s in stray if s is not None)[:5]
        raise BadPayload(f"the export has rows for scopes not asked for: {shown}")
    earliest = min(whens)
    if earliest < slices.start:
        i = whens.index(earliest)
        if slices.table.key is None:
            raise RowError(
                f"a raw row's period_start {earliest} is before the export's start"
                f" {slices.start} (location {scopes[i]})",
                scope_id=scopes[i],
                day=slices.start.date(),
            )
        whens = [max(w, slices.start) for w in whens]
    first = earliest.date()
    if max(whens) < datetime.combine(first + timedelta(days=1), time.min) <= slices.end:
        # the usual chunk: rows of one day (a raw export's rows come location by location)
        key_day = slices.key_of(None, first)[1]
        counts = Counter({(s, key_day): n for s, n in Counter(scopes).items()})
        if (slices.owned - slices.skip).issuperset(counts):
            return chunk, counts
    days = list(map(datetime.date, whens))
    if slices.resolution in COARSE:
        bucket = {d: slices.key_of(None, d)[1] for d in set(days)}
        days = list(map(bucket.__getitem__, days))
    keys: list[Key] = list(zip(scopes, days, strict=True))
    counts = Counter(keys)
    wanted = slices.owned - slices.skip
    if max(whens) < slices.end and wanted.issuperset(counts):
        return chunk, counts
    end = slices.end
    keep = [k in wanted and w < end for k, w in zip(keys, whens, strict=True)]
    return _only(chunk, keep), Counter(k for k, kept in zip(keys, keep, strict=True) if kept)


def _only(chunk: NormalizedExport, keep: list[bool]) -> NormalizedExport:
    """The chunk with the rows `keep` marks, children following their parent."""
    table = chunk.rows.table
    rows = TableRows(table, [r for r, k in zip(chunk.rows.records, keep, strict=True) if k])
    if chunk.child is None:
        return NormalizedExport(rows)
    new_index: dict[object, int] = {}
    for i, kept in enumerate(keep):
        if kept:
            new_index[i] = len(new_index)
    children = [(new_index[r[0]], *r[1:]) for r in chunk.child.records if r[0] in new_index]
    return NormalizedExport(rows, TableRows(chunk.child.table, children))


async def _delete_slices(conn: Connection, table: TableSpec, slices: Slices) -> None:
    """Delete the finest rows of the slices the claimed jobs own (but those skipped); the
    slices are the account's: another account's location of the same id is not touched."""
    assert table.slice_column is not None and table.account_column is not None
    target, column = table.qualified_name, _ident(table.slice_column)
    account = _ident(table.account_column)
    keys = sorted(slices.owned - slices.skip, key=lambda k: (k[1], k[0] or 0))
    if not keys:
        return
    scope_ids = sorted({k[0] for k in keys if k[0] is not None})
    days = sorted({k[1] for k in keys})
    if len(keys) == len(scope_ids) * len(days) and _consecutive(days):
        # a whole block: one range per scope
        await conn.execute(
            f"DELETE FROM {target} WHERE {account} = $4 AND {column} = ANY($1::bigint[])"
            " AND period_start >= $2 AND period_start < $3",
            scope_ids,
            datetime.combine(days[0], time.min),
            datetime.combine(days[-1] + timedelta(days=1), time.min),
            slices.account,
        )
        return
    await conn.execute(
        f"""
        DELETE FROM {target} t USING unnest($1::bigint[], $2::timestamp[]) AS s(id, day)
        WHERE t.{account} = $3 AND t.{column} = s.id AND t.period_start >= s.day
          AND t.period_start < s.day + interval '1 day'
        """,
        [k[0] for k in keys],
        [datetime.combine(k[1], time.min) for k in keys],
        slices.account,
    )


def _consecutive(days: Sequence[date]) -> bool:
    return (days[-1] - days[0]).days == len(days) - 1


async def _replace_finest(
    conn: Connection, table: TableSpec, chunks: Iterable[NormalizedExport], slices: Slices
) -> Loaded:
    await _delete_slices(conn, table, slices)
    loaded = Loaded()
    if table.child is not None:
        # viewers and their contents: ids are taken first so the children can point at them
        for whole in chunks:
            chunk, counts = _owned_rows(whole, slices)
            await _copy_with_children(conn, table, chunk)
            loaded.rows += len(chunk.rows.records)
            loaded.by_key.update(counts)
        return loaded

    def records() -> Iterator[list[tuple[object, ...]]]:
        # each slice is decoded while the database takes in the one before
        for whole in chunks:
            chunk, counts = _owned_rows(whole, slices)
            loaded.rows += len(chunk.rows.records)
            loaded.by_key.update(counts)
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
    if not records:
        return
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
    conn: Connection, chunks: Iterable[NormalizedExport], slices: Slices
) -> Loaded:
    """Store one export of the account, given as chunks of normalized rows: upsert
    aggregated rows, or replace the finest slices of (account, scope id, day), for the
    slices the claimed jobs own."""
    table = slices.table
    if table.key is None:
        return await _replace_finest(conn, table, chunks, slices)
    loaded = Loaded()

    def owned() -> Iterator[list[tuple[object, ...]]]:
        for whole in chunks:
            chunk, counts = _owned_rows(whole, slices)
            loaded.rows += len(chunk.rows.records)
            loaded.by_key.update(counts)
            yield chunk.rows.records

    await upsert_chunks(
        conn,
        schema=VIDICENTER,
        table=table.name,
        columns=list(table.column_names),
        key=table.key,
        chunks=owned(),
    )
    return loaded


def rows_by_job(loaded: Loaded, jobs: Mapping[Key, int]) -> dict[int, int]:
    """Each job's rows: those of its slice."""
    return {job_id: loaded.by_key.get(key, 0) for key, job_id in jobs.items()}
