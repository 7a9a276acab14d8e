"""An export's answer read from a spooled file: its keys, and its rows a slice at a time."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any
from unittest.mock import patch

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.errors import BodyUnreadable
from ingest.vendors import body

SMALL = 300  # in these tests, bodies over 300 bytes are read from the file, a slice at a time


@pytest.fixture(autouse=True)
def small_is_small() -> Iterator[None]:
    with patch.object(body, "SMALL", SMALL):
        yield


def rows(n: int, **extra: Any) -> list[dict[str, Any]]:
    return [
        {"location_id": 1000 + i % 7, "period_start": f"2024-03-05 {i % 24:02d}:00:00", **extra}
        for i in range(n)
    ]


def padded(answer: dict[str, Any], indent: int | None = None) -> bytes:
    """The answer as JSON, with a key after `data` that makes it a large body."""
    return json.dumps(answer | {"creation_date": "x" * SMALL}, indent=indent).encode()


def read_rows(answer: body.ExportAnswer, slice_bytes: int) -> list[Any]:
    out: list[Any] = []
    for piece in answer.row_slices(slice_bytes):
        out += msgspec.json.decode(piece)
    return out


@pytest.mark.parametrize("indent", [None, 2])
def test_a_large_answers_rows_come_in_slices_of_whole_rows(indent: int | None) -> None:
    data = rows(3000)
    answer = body.open_answer(io.BytesIO(padded({"state": "finished", "data": data}, indent)))
    assert answer.state == "finished"
    slices = list(answer.row_slices(4000))
    assert len(slices) > 10
    assert all(len(s) < 4000 + 200 for s in slices)
    assert [r for s in slices for r in msgspec.json.decode(s)] == data


def test_strings_with_braces_and_nested_lists_do_not_cut_a_row() -> None:
    tricky = '}, {"location_id": 1, "x": [' + "\\" + '"'
    data = rows(500, note=tricky, contents=[{"content_id": "a", "ids": [1, [2]]}])
    answer = body.open_answer(io.BytesIO(padded({"state": "finished", "data": data})))
    assert read_rows(answer, 700) == data


def test_a_nested_list_of_objects_keyed_as_the_rows_does_not_cut_a_row() -> None:
    # `, {"location_id"` inside a row: only the list around it tells it from a row's start
    children = [{"location_id": 1}, {"location_id": 2, "ids": [3]}, {"location_id": 4}]
    data = rows(400, children=children)
    answer = body.open_answer(io.BytesIO(padded({"state": "finished", "data": data})))
    for slice_bytes in (150, 333, 1000):
        assert read_rows(answer, slice_bytes) == data


def test_each_slice_is_its_own_array_of_rows() -> None:
    data = rows(2000)
    answer = body.open_answer(io.BytesIO(padded({"state": "finished", "data": data})))
    slices = list(answer.row_slices(3000))
    assert all(s[:1] == b"[" and s[-1:] == b"]" for s in slices)
    assert [r for s in slices for r in msgspec.json.decode(s)] == data


@settings(max_examples=40, deadline=None)
@given(
    data=st.lists(
        st.fixed_dictionaries(
            {"location_id": st.integers(0, 10**6)},
            optional={
                "s": st.text(max_size=20),
                "nested": st.recursive(
                    st.integers() | st.text(max_size=5),
                    lambda inner: (
                        st.lists(inner, max_size=3)
                        | st.dictionaries(st.text(max_size=3), inner, max_size=3)
                    ),
                    max_leaves=5,
                ),
            },
        ),
        max_size=60,
    ),
    slice_bytes=st.integers(50, 2000),
)
def test_any_rows_read_in_slices_are_the_rows_of_the_answer(
    data: list[dict[str, Any]], slice_bytes: int
) -> None:
    with patch.object(body, "SMALL", SMALL):
        answer = body.open_answer(io.BytesIO(padded({"state": "finished", "data": data})))
        assert read_rows(answer, slice_bytes) == data


def test_a_small_answer_is_decoded_whole_with_every_key() -> None:
    data = rows(2)
    answer = body.open_answer(io.BytesIO(json.dumps({"data": data, "state": "finished"}).encode()))
    assert dict(answer) | {"data": None} == {"state": "finished", "data": None}
    assert read_rows(answer, 10) == data
    assert msgspec.json.decode(answer["data"]) == data


def test_an_answer_without_data_has_its_keys_only() -> None:
    answer = body.open_answer(io.BytesIO(b'{"state": "in_progress"}'))
    assert not answer.has_data and answer.state == "in_progress"
    assert list(answer.row_slices()) == []


def test_an_empty_data_array_has_no_rows() -> None:
    answer = body.open_answer(io.BytesIO(padded({"state": "finished", "data": []})))
    assert answer.has_data and list(answer.row_slices()) == []


@pytest.mark.parametrize("keep", [0.3, 0.5, 0.99])
def test_a_large_answer_cut_short_is_unreadable(keep: float) -> None:
    text = padded({"state": "finished", "data": rows(2000)})
    cut = json.dumps({"state": "finished", "data": rows(2000)}).encode()
    cut = cut[: int(len(cut) * keep)] + b"}"  # it ends as an object would, but data does not
    for broken in (text[: int(len(text) * keep)], cut):
        with pytest.raises(BodyUnreadable):
            answer = body.open_answer(io.BytesIO(broken))
            read_rows(answer, 3000)


@pytest.mark.parametrize("text", [b'{"state": "fini', b"<html>502</html>", b"[1, 2]"])
def test_a_small_answer_that_is_not_a_json_object_is_unreadable(text: bytes) -> None:
    with pytest.raises(BodyUnreadable):
        body.open_answer(io.BytesIO(text))
