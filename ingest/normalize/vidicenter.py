"""Pure: a VidiCenter export's `data` → records for the registry's tables.

Every row becomes one record, in the table's column order, ready for COPY. Nothing is
dropped: placeholder rows keep their NULLs, keys a table has no column for go to `extra`
(a JSON object, sorted keys), enumerations are kept as delivered. A row that does not
have the documented shape raises BadPayload naming the row, the key and the problem.

Values, by column type:

- bigint / integer: an int, or a float with an integral value (3.0 → 3); never a bool;
  within the column type's range.
- double precision: an int or a float (never a bool), returned as a float.
- text: a str without NUL (PostgreSQL cannot store one), or an int, stored as its decimal
  string (an id such as content_id may one day come as a number).
- timestamp: an ISO 8601 string, `2018-01-29T00:00:27` or `2018-01-29 02:00:00`, returned
  as a naive datetime. Should one ever carry a UTC offset, its wall-clock value is kept as
  delivered (never converted) and the original string goes to `extra` as `<column>_raw`
  (for example `period_start_raw`).
- null or missing: None, except in the NOT NULL columns (scope id, period_start, gate_id,
  content_id), where it is BadPayload.

Speed (this is the bulk path: 200,000 finest rows must not take longer than their COPY):
for each table, a loop over the rows is written out once, with one inline check per column
(`_compile_fast_path`); rows of the documented shape, unknown keys included, never leave
it. Any other row (integral floats, numeric ids, offsets, or something wrong) goes to the
careful path, one converter per column, which keeps what can be kept and says precisely
what is wrong with the rest. The unit tests check that the two paths agree.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from operator import itemgetter
from typing import cast

import msgspec

from ingest.datatypes import Column, DataType, Fill, TableSpec, table_for
from ingest.errors import BadPayload, BodyUnreadable, RowError
from ingest.normalize import typed

_Convert = Callable[[object], object]  # one value
_Record = tuple[object, ...]
# (rows, careful(index, row), account, time_resolution, scope, extrapolation_amount) → records
_RowsConverter = Callable[
    [list[object], Callable[[int, object], _Record | None], str, str, str, str],
    list[_Record | None],
]
# What is done with a row that does not have the documented shape: None raises its RowError,
# a callback is told of it and the row is left out.
OnBadRow = Callable[[RowError], None] | None

_INTEGER_RANGES = {"integer": (-(2**31), 2**31 - 1), "bigint": (-(2**63), 2**63 - 1)}
_NO_EXTRA = "{}"
_encode_json = json.JSONEncoder(sort_keys=True, allow_nan=False, separators=(",", ":")).encode
# A JSON \u0000 escape (preceded by an even number of backslashes): jsonb refuses it.
_JSON_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


@dataclass
class TableRows:
    """Records for one table, as tuples in `table.columns` order.

    ints for bigint/integer, floats for double precision, str for text, naive datetimes
    for timestamp, a JSON object string for jsonb: ready for `copy_records_to_table`.
    """

    table: TableSpec
    records: list[tuple[object, ...]]


@dataclass
class NormalizedExport:
    """The rows of one export; `child` holds viewers_apc contents.

    A child record is `(parent_index, *child columns)`, where parent_index is the position
    of its viewer in `rows.records` (the loader turns it into the viewer's id).
    """

    rows: TableRows
    child: TableRows | None = None

    def counts_by_scope(self) -> dict[int, int]:
        """Rows per location_id (site_id for site tables), to split an export into its jobs.

        Extrapolated rows have no scope id: {} (all of them belong to the export's one job).
        viewers_apc counts viewers, not their contents.
        """
        column = self.rows.table.scope_column
        if column is None:
            return {}
        position = self.rows.table.column_names.index(column)
        counts: Counter[object] = Counter(map(itemgetter(position), self.rows.records))
        return {cast(int, scope_id): count for scope_id, count in counts.items()}


def normalize_export(
    dt: DataType,
    resolution: str,
    data: object,
    *,
    scope: str,
    extrapolation_amount: str | None = None,
    first_row: int = 0,
    account: str = "",
    on_bad_row: OnBadRow = None,
) -> NormalizedExport:
    """The records of an export's `data` for the table of (dt, resolution).

    `scope` and `extrapolation_amount` (None = left empty = '') fill the columns of the
    same name of extrapolated tables; `resolution` fills `time_resolution`, `account` the
    `account` column of every table that has one. BadPayload if `data` is not a list of
    objects; a row that does not have the documented shape raises RowError naming the row,
    its location (or site) and day, and the key, or, with `on_bad_row`, is reported to it
    and left out. ValueError if the data type does not offer the resolution. `first_row` is
    the index of data[0] in the whole export, for error messages when `data` is a slice of
    it.
    """
    table = table_for(dt, resolution)
    if not isinstance(data, list):
        raise BadPayload(f"the export's data: expected a list of rows, got {_show(data)}")
    fills = {
        Fill.account: account,
        Fill.time_resolution: resolution,
        Fill.scope: scope,
        Fill.extrapolation_amount: extrapolation_amount or "",
    }
    bound = _bind(_plan(table), fills)
    records = _convert_rows(data, bound, "row ", first_row, on_bad_row)
    if table.child is None or table.child_source is None:
        return NormalizedExport(TableRows(table, _kept(records)))

    child = _bind(_plan(table.child), fills)
    bad = {i for i, record in enumerate(records) if record is None}
    child_records: list[_Record] = []
    for parent, row in enumerate(data):  # every row is a dict by now
        if parent in bad:
            continue
        try:
            child_records += [
                (parent, *r) for r in _children(row, table.child_source, child, first_row + parent)
            ]
        except BadPayload as error:
            failure = _row_error(str(error), row, bound.plan)
            if on_bad_row is None:
                raise failure from None
            on_bad_row(failure)
            bad.add(parent)
    if not bad:
        return NormalizedExport(
            TableRows(table, _kept(records)), TableRows(table.child, child_records)
        )
    # a parent left out takes its children along; the others' indexes close up
    new_index: dict[object, int] = {}
    for i in range(len(records)):
        if i not in bad:
            new_index[i] = len(new_index)
    kept = [r for i, r in enumerate(records) if i not in bad]
    children = [(new_index[r[0]], *r[1:]) for r in child_records if r[0] in new_index]
    return NormalizedExport(TableRows(table, _kept(kept)), TableRows(table.child, children))


def _kept(records: list[_Record | None]) -> list[_Record]:
    if None in records:
        return [r for r in records if r is not None]
    return records  # type: ignore[return-value]


def _children(row: object, key: str, child: _Bound, index: int) -> list[_Record]:
    assert isinstance(row, dict)
    items = row.get(key)
    if items is None:
        return []
    if not isinstance(items, list):
        raise BadPayload(f"row {index}: key {key!r}: expected a list, got {_show(items)}")
    where = f"row {index}: key {key!r}, item "
    return _kept(_convert_rows(items, child, where))


def normalize_chunks(
    dt: DataType,
    resolution: str,
    data: object,
    *,
    scope: str,
    extrapolation_amount: str | None = None,
    chunk_rows: int = 20_000,
    account: str = "",
    on_bad_row: OnBadRow = None,
) -> Iterator[NormalizedExport]:
    """The records of `normalize_export`, a slice of rows at a time.

    `data` is the rows (a list), or their undecoded JSON (`msgspec.Raw` or bytes): see
    `normalize_slices`.
    """
    if isinstance(data, msgspec.Raw | bytes):
        yield from normalize_slices(
            dt,
            resolution,
            [bytes(data)],
            scope=scope,
            extrapolation_amount=extrapolation_amount,
            chunk_rows=chunk_rows,
            on_bad_row=on_bad_row,
            account=account,
        )
        return
    yield from _dict_chunks(
        dt, resolution, data, scope, extrapolation_amount, 0, chunk_rows, on_bad_row, account
    )


def normalize_slices(
    dt: DataType,
    resolution: str,
    slices: Iterable[bytes | bytearray],
    *,
    scope: str,
    extrapolation_amount: str | None = None,
    chunk_rows: int | None = None,
    on_bad_row: OnBadRow = None,
    account: str = "",
) -> Iterator[NormalizedExport]:
    """The records of an export whose rows come as JSON arrays (slices of its `data`), at
    most `chunk_rows` at a time.

    Only one slice's records exist at once, and the loader can send a chunk to the database
    while the next slice is decoded. Rows of the documented shape are decoded straight into
    records (the bulk path); a slice with any other row goes through the dict path.
    BodyUnreadable if a slice is not JSON.
    """
    table = table_for(dt, resolution)
    fills = (resolution, scope, extrapolation_amount or "", account)
    seen = 0
    for data in slices:
        try:
            records = typed.decode_records(table, fills, data)
            if records is None:
                rows = msgspec.json.decode(data)
        except msgspec.DecodeError as error:
            raise BodyUnreadable(f"the export's data is not JSON ({error})") from None
        if records is None:
            yield from _dict_chunks(
                dt,
                resolution,
                rows,
                scope,
                extrapolation_amount,
                seen,
                chunk_rows,
                on_bad_row,
                account,
            )
            seen += len(rows) if isinstance(rows, list) else 0
            continue
        step = chunk_rows or max(1, len(records))
        for start in range(0, len(records), step):
            yield NormalizedExport(TableRows(table, records[start : start + step]))
        seen += len(records)


def _dict_chunks(
    dt: DataType,
    resolution: str,
    data: object,
    scope: str,
    extrapolation_amount: str | None,
    first_row: int,
    chunk_rows: int | None,
    on_bad_row: OnBadRow,
    account: str,
) -> Iterator[NormalizedExport]:
    if not isinstance(data, list):
        raise BadPayload(f"the export's data: expected a list of rows, got {_show(data)}")
    step = chunk_rows or max(1, len(data))
    for start in range(0, max(1, len(data)), step):
        yield normalize_export(
            dt,
            resolution,
            data[start : start + step],
            scope=scope,
            extrapolation_amount=extrapolation_amount,
            first_row=first_row + start,
            on_bad_row=on_bad_row,
            account=account,
        )


def _row_error(message: str, row: object, plan: _Plan) -> RowError:
    """The error of a bad row, naming its location (or site) and day when they can be read."""
    scope_id: int | None = None
    day: date | None = None
    if isinstance(row, dict):
        value = row.get(plan.scope_key) if plan.scope_key else None
        if type(value) is int or (type(value) is float and value.is_integer()):
            scope_id = int(value)
        when = row.get(plan.period_key) if plan.period_key else None
        if isinstance(when, str):
            try:
                day = datetime.fromisoformat(when).date()
            except ValueError:
                day = None
    where = [f"{plan.scope_name} {scope_id}"] if scope_id is not None else []
    where += [f"day {day}"] if day is not None else []
    suffix = f" ({', '.join(where)})" if where else ""
    return RowError(message + suffix, scope_id=scope_id, day=day)


# --- conversion -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """A table's converters, built once per table."""

    columns: tuple[Column, ...]  # every column but `extra`, in COPY order
    converters: tuple[_Convert | None, ...]  # per column; None: filled from the request
    known: frozenset[str]  # the documented keys; any other goes to `extra`
    fast: _RowsConverter  # the documented shape; hands any other row to `careful`
    scope_key: str | None  # the vendor's key of the row's location (or site), if any
    scope_name: str  # "location" or "site", for error messages
    period_key: str | None  # the vendor's key of the row's time, if any


@dataclass(frozen=True)
class _Bound:
    """A table's converters with the request's values filled in, once per export."""

    plan: _Plan
    fills: tuple[str, str, str, str]  # account, time_resolution, scope, extrapolation_amount
    careful: tuple[tuple[str, _Convert], ...]  # (key, converter) per column


@cache
def _plan(table: TableSpec) -> _Plan:
    columns = table.columns[:-1]  # the last one is `extra`
    converters = tuple(
        _CONVERTERS[c.pg_type](c.pg_type, c.nullable) if c.fill is Fill.payload else None
        for c in columns
    )
    fast = _compile_fast_path(table.name, columns, table.documented_keys)
    by_name = {c.name: c for c in columns}
    scope = by_name.get(table.scope_column or "")
    period = by_name.get("period_start")
    return _Plan(
        columns,
        converters,
        table.documented_keys,
        fast,
        scope.source if scope else None,
        "site" if table.scope_column == "site_id" else "location",
        period.source if period else None,
    )


def _bind(plan: _Plan, fills: Mapping[Fill, str]) -> _Bound:
    values = (
        fills[Fill.account],
        fills[Fill.time_resolution],
        fills[Fill.scope],
        fills[Fill.extrapolation_amount],
    )
    careful = tuple(
        (column.source, convert)
        if convert is not None
        else (column.name, _constant(fills[column.fill]))
        for column, convert in zip(plan.columns, plan.converters, strict=True)
    )
    return _Bound(plan, values, careful)


def _convert_rows(
    data: list[object], bound: _Bound, where: str, first: int = 0, on_bad_row: OnBadRow = None
) -> list[_Record | None]:
    """The rows' records; a bad row raises its RowError, or is reported and None."""

    def careful(index: int, row: object) -> _Record | None:
        try:
            return _convert_carefully(row, f"{where}{first + index}", bound)
        except BadPayload as error:
            failure = _row_error(str(error), row, bound.plan)
            if on_bad_row is None:
                raise failure from None
            on_bad_row(failure)
            return None

    return bound.plan.fast(data, careful, *bound.fills)


def _convert_carefully(row: object, where: str, bound: _Bound) -> _Record:
    """One row, with its unknown keys and offsets kept; BadPayload saying what is wrong."""
    if not isinstance(row, dict):
        raise BadPayload(f"{where}: expected an object, got {_show(row)}")
    extra = {key: value for key, value in row.items() if key not in bound.plan.known}
    values: list[object] = []
    for column, (key, convert) in zip(bound.plan.columns, bound.careful, strict=True):
        value = row.get(key)
        try:
            values.append(convert(value))
        except _HasOffset:
            values.append(datetime.fromisoformat(str(value)).replace(tzinfo=None))
            extra[f"{column.name}_raw"] = value
        except _Invalid as error:
            problem = "is missing" if key not in row else str(error)
            raise BadPayload(f"{where}: key {key!r}: {problem}") from None
    values.append(_extra_json(extra, where))
    return tuple(values)


def _extra_json(extra: dict[object, object], where: str) -> str:
    """The unknown keys as a JSON object; BadPayload naming a key jsonb cannot take."""
    if not extra:
        return _NO_EXTRA
    try:
        text = _encode_json(extra)
        if not _JSON_NUL.search(text):
            return text
    except (TypeError, ValueError):
        pass
    for key in sorted(extra, key=str):  # find the culprit, to name it
        try:
            one = json.dumps({key: extra[key]}, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise BadPayload(f"{where}: key {key!r}: not storable as JSON: {error}") from None
        if _JSON_NUL.search(one):
            raise BadPayload(
                f"{where}: key {key!r}: holds a NUL character, which PostgreSQL cannot store"
            )
    raise BadPayload(f"{where}: the keys outside the table's columns are not storable as JSON")


# --- converters, one per column type --------------------------------------------------


class _Invalid(Exception):
    """A value does not fit its column; the message says why."""


class _HasOffset(Exception):
    """A timestamp carries a UTC offset: the careful path keeps it as delivered."""


def _show(value: object) -> str:
    text = "null" if value is None else repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _null(nullable: bool) -> object:
    if nullable:
        return None
    raise _Invalid("is null")


def _integer(pg_type: str, nullable: bool) -> _Convert:
    low, high = _INTEGER_RANGES[pg_type]

    def convert(value: object) -> object:
        if type(value) is int and low <= value <= high:
            return value
        if value is None:
            return _null(nullable)
        if type(value) is float and value.is_integer():
            value = int(value)
        if type(value) is int:
            if low <= value <= high:
                return value
            raise _Invalid(f"{_show(value)} is out of range for {pg_type}")
        raise _Invalid(f"expected an integer, got {_show(value)}")

    return convert


def _double(pg_type: str, nullable: bool) -> _Convert:
    def convert(value: object) -> object:
        if type(value) is float:
            return value
        if type(value) is int:
            try:
                return float(value)
            except OverflowError:
                raise _Invalid(f"{_show(value)} is out of range for {pg_type}") from None
        if value is None:
            return _null(nullable)
        raise _Invalid(f"expected a number, got {_show(value)}")

    return convert


def _text(pg_type: str, nullable: bool) -> _Convert:
    def convert(value: object) -> object:
        if type(value) is str:
            if "\x00" not in value:
                return value
            raise _Invalid("holds a NUL character, which PostgreSQL cannot store")
        if value is None:
            return _null(nullable)
        if type(value) is int:
            return str(value)
        raise _Invalid(f"expected a string, got {_show(value)}")

    return convert


def _timestamp(pg_type: str, nullable: bool) -> _Convert:
    parse = datetime.fromisoformat

    def convert(value: object) -> object:
        if type(value) is str:
            try:
                parsed = parse(value)
            except ValueError:
                raise _Invalid(
                    f"expected a timestamp such as '2018-01-29 02:00:00', got {_show(value)}"
                ) from None
            if parsed.tzinfo is None:
                return parsed
            raise _HasOffset
        if value is None:
            return _null(nullable)
        raise _Invalid(f"expected a timestamp string, got {_show(value)}")

    return convert


def _constant(value: str) -> _Convert:
    return lambda _ignored: value


_CONVERTERS: dict[str, Callable[[str, bool], _Convert]] = {
    "bigint": _integer,
    "integer": _integer,
    "double precision": _double,
    "text": _text,
    "timestamp": _timestamp,
}


# --- the fast path --------------------------------------------------------------------


class _Slow(Exception):
    """The fast path meets a row it does not handle: the careful path takes it."""


def _compile_fast_path(
    name: str, columns: tuple[Column, ...], known: frozenset[str]
) -> _RowsConverter:
    """A loop over the rows written out for these columns, with one inline check per column.

    For a row of the documented shape it gives the careful path's record, without a function
    call per value (twice as fast). Any other row (unknown keys, integral floats, numeric
    ids, offsets, errors) raises inside it and goes to `careful`. The unit tests check that
    the two paths agree.
    """
    body: list[str] = []
    values: list[str] = []
    for index, column in enumerate(columns):
        if column.fill is not Fill.payload:
            values.append(column.fill.value)  # a parameter of convert_rows()
            continue
        value = f"v{index}"
        values.append(value)
        body.append(f"{value} = get({column.source!r})")
        body.extend(_FAST_CHECKS[column.pg_type](value, column))
    source = "\n".join(
        [
            "def convert_rows("
            "rows, careful, account, time_resolution, scope, extrapolation_amount):",
            "    records = []",
            "    append = records.append",
            "    for index, row in enumerate(rows):",
            "        try:",
            "            get = row.get",
            f"            extra = {_NO_EXTRA!r} if documented_only(row) else extra_of(row)",
            *(f"            {line}" for line in body),
            f"            append(({', '.join(values)}, extra))",
            "            continue",
            "        except Exception:",  # anything unexpected is examined again, precisely
            "            pass",
            "        append(careful(index, row))",
            "    return records",
        ]
    )
    namespace: dict[str, object] = {
        "_Slow": _Slow,
        "parse": datetime.fromisoformat,
        "documented_only": known.issuperset,
        "extra_of": lambda row: _extra_json(
            {k: v for k, v in row.items() if k not in known}, "row"
        ),
    }
    exec(compile(source, f"<fast path of {name}>", "exec"), namespace)
    return cast(_RowsConverter, namespace["convert_rows"])


def _unless_null(value: str, column: Column, bad: str) -> str:
    return f"{value} is not None and ({bad})" if column.nullable else bad


def _fast_integer(value: str, column: Column) -> list[str]:
    low, high = _INTEGER_RANGES[column.pg_type]
    bad = f"type({value}) is not int or not {low} <= {value} <= {high}"
    return [f"if {_unless_null(value, column, bad)}: raise _Slow"]


def _fast_double(value: str, column: Column) -> list[str]:
    return [
        f"if type({value}) is not float:",
        f"    if type({value}) is int: {value} = float({value})",
        f"    elif {value} is not None: raise _Slow"
        if column.nullable
        else "    else: raise _Slow",
    ]


def _fast_text(value: str, column: Column) -> list[str]:
    bad = f"type({value}) is not str or {chr(0)!r} in {value}"
    return [f"if {_unless_null(value, column, bad)}: raise _Slow"]


def _fast_timestamp(value: str, column: Column) -> list[str]:
    parse = [f"{value} = parse({value})", f"if {value}.tzinfo is not None: raise _Slow"]
    if column.nullable:
        return [f"if {value} is not None:", *(f"    {line}" for line in parse)]
    return parse  # parse() raises TypeError for anything but a str


_FAST_CHECKS: dict[str, Callable[[str, Column], list[str]]] = {
    "bigint": _fast_integer,
    "integer": _fast_integer,
    "double precision": _fast_double,
    "text": _fast_text,
    "timestamp": _fast_timestamp,
}
