"""The bulk path (rows decoded by msgspec into the table's types) against the dict path."""

from __future__ import annotations

import json
from collections import Counter

import msgspec
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ingest.datatypes import REGISTRY, Fill, TableSpec, get_data_type
from ingest.errors import BadPayload
from ingest.normalize.vidicenter import NormalizedExport, normalize_chunks, normalize_export

from .test_normalize_vidicenter import (
    _ODD_VALUES,
    EXAMPLES,
    PROPERTY_SETTINGS,
    Row,
    _rows,
    typed,
)


def _data_type_of(table: TableSpec) -> tuple[str, str]:
    for name in ("viewers", "vehicles", "footfall", "vehicles_footfall", "viewers_apc"):
        if table.name == f"{name}_finest" or (name == "viewers_apc" and table.name == name):
            return name, "finest"
    return table.name, "1h"


def _bulk(name: str, resolution: str, rows: object, chunk_rows: int = 2) -> list[NormalizedExport]:
    raw = msgspec.Raw(json.dumps(rows).encode())
    return list(
        normalize_chunks(
            get_data_type(name),
            resolution,
            raw,
            scope="s",
            extrapolation_amount="7",
            chunk_rows=chunk_rows,
        )
    )


def _records(chunks: list[NormalizedExport]) -> list[tuple[object, ...]]:
    return [r for chunk in chunks for r in chunk.rows.records]


def _plain(name: str, resolution: str, rows: object) -> NormalizedExport:
    return normalize_export(
        get_data_type(name), resolution, rows, scope="s", extrapolation_amount="7"
    )


@pytest.mark.parametrize(
    ("name", "resolution", "data"),
    [(n, r, d) for n, r, d, _ in EXAMPLES],
    ids=[f"{n}-{r}-{i}" for i, (n, r, _, _) in enumerate(EXAMPLES)],
)
def test_documented_examples_give_the_same_records_on_the_bulk_path(
    name: str, resolution: str, data: list[Row]
) -> None:
    expected = _plain(name, resolution, data)
    chunks = _bulk(name, resolution, data)
    assert typed(_records(chunks)) == typed(expected.rows.records)
    counts: Counter[int] = Counter()
    for chunk in chunks:
        counts.update(chunk.counts_by_scope())
    assert dict(counts) == expected.counts_by_scope()


@pytest.mark.parametrize("table", REGISTRY.tables(), ids=lambda table: table.name)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_the_bulk_path_gives_the_dict_paths_records_for_any_payload(
    table: TableSpec, data: st.DataObject
) -> None:
    if table.name == "viewers_apc_contents":
        return  # a child table: its rows come inside viewers_apc's
    rows = data.draw(_rows(table, max_size=5))
    payload = [c for c in table.columns if c.fill is Fill.payload]
    for row in rows:  # now and then a value off the documented shape
        for column in data.draw(st.lists(st.sampled_from(payload), max_size=1)):
            row[column.source] = data.draw(_ODD_VALUES[column.pg_type])
    name, resolution = _data_type_of(table)
    try:
        text = json.dumps(rows, allow_nan=False)
    except ValueError:
        assume(False)  # inf or nan: no JSON body can carry it
    try:
        expected = _plain(name, resolution, json.loads(text))
    except BadPayload as error:
        with pytest.raises(BadPayload) as info:
            _bulk(name, resolution, rows)
        assert str(info.value) == str(error)
        return
    chunks = _bulk(name, resolution, rows)
    assert typed(_records(chunks)) == typed(expected.rows.records)
    if expected.child is not None:
        # a slice's children point at their viewer's place in that slice
        children: list[tuple[object, ...]] = []
        offset = 0
        for chunk in chunks:
            assert chunk.child is not None
            children += [(offset + int(r[0]), *r[1:]) for r in chunk.child.records]  # type: ignore[call-overload]
            offset += len(chunk.rows.records)
        assert typed(children) == typed(expected.child.records)


def test_a_bad_row_on_the_bulk_path_is_named_by_its_place_in_the_whole_export() -> None:
    rows = [{"location_id": 1, "period_start": "2018-01-29T00:00:27"} for _ in range(5)]
    rows[3]["gender"] = "male"
    with pytest.raises(BadPayload, match=r"^row 3: key 'gender'"):
        _bulk("viewers", "finest", rows, chunk_rows=2)


def test_undecodable_data_on_the_bulk_path_is_a_bad_payload() -> None:
    raw = msgspec.Raw(b'[{"location_id": 1,')
    with pytest.raises(BadPayload, match="not JSON"):
        list(normalize_chunks(get_data_type("ots"), "1h", raw, scope="s"))


def test_data_that_is_not_a_list_on_the_bulk_path_is_a_bad_payload() -> None:
    raw = msgspec.Raw(b'{"rows": []}')
    with pytest.raises(BadPayload, match="expected a list of rows"):
        list(normalize_chunks(get_data_type("ots"), "1h", raw, scope="s"))
