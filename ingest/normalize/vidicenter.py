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
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from operator import itemgetter
from typing import cast

import msgspec

from ingest.datatypes import Column, DataType, Fill, TableSpec, table_for
from ingest.errors import BadPayload
from ingest.normalize import typed

_Convert = Callable[[object], object]  # one value
_Record = tuple[object, ...]
# (rows, careful(index, row), account, time_resolution, scope, extrapolation_amount) → records
_RowsConverter = Callable[
    [list[object], Callable[[int, object], _Record], str, str, str, str], list[_Record]
]

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
) -> NormalizedExport:
    """The records of an export's `data` for the table of (dt, resolution).

    `scope` and `extrapolation_amount` (None = left empty = '') fill the columns of the
    same name of extrapolated tables; `resolution` fills `time_resolution`, `account` the
    `account` column of every table that has one. BadPayload if
    `data` is not a list of objects of the documented shape; ValueError if the data type
    does not offer the resolution. `first_row` is the index of data[0] in the whole
    export, for error messages when `data` is a slice of it.
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
    rows = TableRows(table, _convert_rows(data, _bind(_plan(table), fills), "row ", first_row))
    if table.child is None or table.child_source is None:
        return NormalizedExport(rows)

    child = _bind(_plan(table.child), fills)
    child_records: list[_Record] = []
    for parent, row in enumerate(data):  # every row is a dict by now
        items = row.get(table.child_source)
        if items is None:
            continue
        if not isinstance(items, list):
            raise BadPayload(
                f"row {first_row + parent}: key {table.child_source!r}: "
                f"expected a list, got {_show(items)}"
            )
        where = f"row {first_row + parent}: key {table.child_source!r}, item "
        for record in _convert_rows(items, child, where):
            child_records.append((parent, *record))
    return NormalizedExport(rows, TableRows(table.child, child_records))


def normalize_chunks(
    dt: DataType,
    resolution: str,
    data: object,
    *,
    scope: str,
    extrapolation_amount: str | None = None,
    chunk_rows: int = 20_000,
    account: str = "",
) -> Iterator[NormalizedExport]:
    """The records of `normalize_export`, a slice of rows at a time.

    Only one slice's records exist at once, and the loader can send a slice to the
    database while the next one is converted. `data` may be the undecoded JSON of the
    rows (`msgspec.Raw`): rows of the documented shape are then decoded straight into the
    table's types (the bulk path), anything else goes through the dict path.
    """
    if isinstance(data, msgspec.Raw):
        table = table_for(dt, resolution)
        rows = typed.decode_rows(table, data)
        if rows is not None:
            convert = typed.converter(table)
            amount = extrapolation_amount or ""
            for start in range(0, len(rows), chunk_rows):
                part = rows[start : start + chunk_rows]
                records = convert(part, account, resolution, scope, amount)
                if records is None:  # a row for the careful path: the dict path takes the slice
                    yield normalize_export(
                        dt,
                        resolution,
                        typed.to_dicts(part),
                        scope=scope,
                        extrapolation_amount=extrapolation_amount,
                        first_row=start,
                        account=account,
                    )
                else:
                    yield NormalizedExport(TableRows(table, records))
            return
        try:
            data = msgspec.json.decode(data)
        except msgspec.DecodeError as error:
            raise BadPayload(f"the export's data is not JSON ({error})") from None
    if not isinstance(data, list):
        raise BadPayload(f"the export's data: expected a list of rows, got {_show(data)}")
    for start in range(0, max(1, len(data)), chunk_rows):
        yield normalize_export(
            dt,
            resolution,
            data[start : start + chunk_rows],
            scope=scope,
            extrapolation_amount=extrapolation_amount,
            first_row=start,
            account=account,
        )


# --- conversion -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """A table's converters, built once per table."""

    columns: tuple[Column, ...]  # every column but `extra`, in COPY order
    converters: tuple[_Convert | None, ...]  # per column; None: filled from the request
    known: frozenset[str]  # the documented keys; any other goes to `extra`
    fast: _RowsConverter  # the documented shape; hands any other row to `careful`


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
    return _Plan(columns, converters, table.documented_keys, fast)


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


def _convert_rows(data: list[object], bound: _Bound, where: str, first: int = 0) -> list[_Record]:
    def careful(index: int, row: object) -> _Record:
        return _convert_carefully(row, f"{where}{first + index}", bound)

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
