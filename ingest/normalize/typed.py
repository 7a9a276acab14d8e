"""Pure: the bulk path of the VidiCenter normalizer.

The rows of an export are decoded by msgspec straight into a struct of the table's types
(in C, with no dict per row), then turned into COPY records by a loop written out once per
table. A payload that is not of the documented shape (an unknown key, a wrong type, a
missing key) is not decoded here: the caller falls back to the dict path, which keeps
unknown keys in `extra` and names the row and key of an error.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import cache
from typing import Annotated, Any, cast

import msgspec
from msgspec.structs import astuple

from ingest.datatypes import Column, Fill, TableSpec
from ingest.errors import BadPayload

_NO_EXTRA = "{}"
_INT_RANGES = {"integer": (-(2**31), 2**31 - 1), "bigint": (-(2**63), 2**63 - 1)}

# (structs, account, time_resolution, scope, extrapolation_amount) -> records, or None when
# a row needs the careful path (a time zone offset, a NUL character)
Converter = Callable[[list[Any], str, str, str, str], list[tuple[object, ...]] | None]


class _Careful(Exception):
    """A row the bulk path does not store as is."""


def _python_type(column: Column) -> Any:
    if column.pg_type in _INT_RANGES:
        low, high = _INT_RANGES[column.pg_type]
        return Annotated[int, msgspec.Meta(ge=low, le=high)]
    if column.pg_type == "double precision":
        return float
    if column.pg_type in ("text", "timestamp"):
        return str
    raise ValueError(f"no bulk type for {column.pg_type}")


@cache
def _decoder(table: TableSpec) -> msgspec.json.Decoder[list[Any]] | None:
    """A decoder of the table's rows, or None for a table with children (viewers_apc)."""
    if table.child is not None:
        return None
    fields: list[tuple[str, Any, Any]] = []
    for column in table.columns:
        if column.fill is not Fill.payload:
            continue
        kind = _python_type(column)
        if column.nullable:
            fields.append(
                (column.name, kind | None, msgspec.field(default=None, name=column.source))
            )
        else:
            fields.append((column.name, kind, msgspec.field(name=column.source)))
    row = msgspec.defstruct(f"{table.name}_row", fields, kw_only=True, forbid_unknown_fields=True)
    return msgspec.json.Decoder(list[row])  # type: ignore[valid-type]


def decode_rows(table: TableSpec, raw: msgspec.Raw | bytes) -> list[Any] | None:
    """The rows as structs, or None when some row is not of the documented shape."""
    decoder = _decoder(table)
    if decoder is None:
        return None
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError:
        return None
    except msgspec.DecodeError as error:
        raise BadPayload(f"the export's data is not JSON ({error})") from None


@cache
def converter(table: TableSpec) -> Converter:
    """The loop from structs to records, written out for the table's columns."""
    values: list[str] = []
    checks: list[str] = []
    position = 0
    for column in table.columns:
        if column.fill is Fill.extra:
            values.append(repr(_NO_EXTRA))
            continue
        if column.fill is not Fill.payload:
            values.append(column.fill.value)
            continue
        value = f"t[{position}]"
        position += 1
        if column.pg_type == "timestamp":
            name = f"ts{position}"
            if column.nullable:
                checks.append(f"{name} = None if {value} is None else parse({value})")
            else:
                checks.append(f"{name} = parse({value})")
            checks.append(f"if {name} is not None and {name}.tzinfo is not None: raise _Careful")
            value = name
        elif column.pg_type == "text":
            checks.append(f"if {value} is not None and '\\x00' in {value}: raise _Careful")
        values.append(value)
    source = "\n".join(
        [
            "def convert(rows, account, time_resolution, scope, extrapolation_amount):",
            "    records = []",
            "    append = records.append",
            "    try:",
            "        for row in rows:",
            "            t = astuple(row)",
            *(f"            {line}" for line in checks),
            f"            append(({', '.join(values)},))",
            "    except (_Careful, ValueError):",  # ValueError: a timestamp that does not parse
            "        return None",
            "    return records",
        ]
    )
    namespace: dict[str, object] = {
        "_Careful": _Careful,
        "astuple": astuple,
        "parse": datetime.fromisoformat,
    }
    exec(compile(source, f"<bulk path of {table.name}>", "exec"), namespace)
    return cast(Converter, namespace["convert"])


def to_dicts(rows: list[Any]) -> list[dict[str, Any]]:
    """Structs back to the vendor's rows, for the careful path."""
    return cast(list[dict[str, Any]], msgspec.to_builtins(rows))
