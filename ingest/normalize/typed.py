"""Pure: the bulk path of the VidiCenter normalizer.

The rows of a slice of an export are decoded by msgspec, in C and in one pass, straight into
a struct whose fields are the table's COPY columns in order: values of the table's types
(naive datetimes parsed by msgspec), and the columns ingest fills in (time_resolution,
scope, extra) as defaults. A record is then the struct as a tuple. A row that is not of
the documented shape (an unknown key, a wrong type, a missing key, a time zone offset, a
NUL character) fails the slice's decoding: the caller falls back to the dict path, which
keeps unknown keys in `extra` and names the row and key of an error.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Annotated, Any

import msgspec
from msgspec.structs import astuple

from ingest.datatypes import Column, Fill, TableSpec

_NO_EXTRA = "{}"
_INT_RANGES = {"integer": (-(2**31), 2**31 - 1), "bigint": (-(2**63), 2**63 - 1)}
_NO_NUL = msgspec.Meta(pattern="^[^\x00]*$")  # PostgreSQL cannot store a NUL character
# A JSON key no vendor row has: the fields ingest fills in are never read from a row.
_FILLED = "\x7fingest:"


def _python_type(column: Column) -> Any:
    if column.pg_type in _INT_RANGES:
        low, high = _INT_RANGES[column.pg_type]
        return Annotated[int, msgspec.Meta(ge=low, le=high)]
    if column.pg_type == "double precision":
        return float
    if column.pg_type == "text":
        return Annotated[str, _NO_NUL]
    if column.pg_type == "timestamp":
        return Annotated[datetime, msgspec.Meta(tz=False)]
    raise ValueError(f"no bulk type for {column.pg_type}")


@cache
def decoder(table: TableSpec, fills: tuple[str, str, str, str]) -> msgspec.json.Decoder[Any] | None:
    """A decoder of a slice's rows into records, or None for a table with children.

    `fills` are the request's time_resolution, scope, extrapolation_amount and account.
    """
    if table.child is not None:
        return None
    filled = {
        Fill.time_resolution: fills[0],
        Fill.scope: fills[1],
        Fill.extrapolation_amount: fills[2],
        Fill.account: fills[3],
        Fill.extra: _NO_EXTRA,
    }
    fields: list[tuple[str, Any, Any]] = []
    for column in table.columns:
        if column.fill is not Fill.payload:
            name = _FILLED + column.name
            fields.append((column.name, str, msgspec.field(default=filled[column.fill], name=name)))
            continue
        kind = _python_type(column)
        if column.nullable:
            fields.append(
                (column.name, kind | None, msgspec.field(default=None, name=column.source))
            )
        else:
            fields.append((column.name, kind, msgspec.field(name=column.source)))
    row = msgspec.defstruct(
        f"{table.name}_row", fields, kw_only=True, forbid_unknown_fields=True, gc=False
    )
    return msgspec.json.Decoder(list[row])  # type: ignore[valid-type]


def decode_records(
    table: TableSpec, fills: tuple[str, str, str, str], data: bytes | bytearray
) -> list[tuple[object, ...]] | None:
    """The records of a slice (a JSON array of rows), or None when a row is not of the
    documented shape. Raises msgspec.DecodeError when the slice is not JSON."""
    decode = decoder(table, fills)
    if decode is None:
        return None
    try:
        rows = decode.decode(data)
    except msgspec.ValidationError:
        return None
    return list(map(astuple, rows))
