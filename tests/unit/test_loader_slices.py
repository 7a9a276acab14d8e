"""Splitting an export's rows back by (scope id, day): which rows each job owns."""

from datetime import date, datetime

import pytest

from ingest.datatypes import get_data_type, table_for
from ingest.errors import BadPayload, RowError
from ingest.loader import Slices, _owned_rows
from ingest.normalize.vidicenter import normalize_export

START = datetime(2024, 3, 5)
END = datetime(2024, 3, 7)  # two days
D1, D2 = date(2024, 3, 5), date(2024, 3, 6)


def _slices(
    name: str, resolution: str, owned: set[tuple[int | None, date]], **kw: object
) -> Slices:
    table = table_for(get_data_type(name), resolution)
    args: dict[str, object] = {"asked": frozenset({7, 8}), "start": START, "end": END} | kw
    return Slices(table, resolution, owned=frozenset(owned), **args)  # type: ignore[arg-type]


def _viewer(location: int, start_time: str, content: str) -> dict[str, object]:
    return {
        "location_id": location,
        "start_time": start_time,
        "contents": [{"content_id": content, "app_id": "a", "campaign_id": None}],
    }


def test_rows_of_slices_no_claimed_job_owns_are_left_out_with_their_children() -> None:
    data = [
        _viewer(7, "2024-03-05T23:59:59", "7 first day"),
        _viewer(8, "2024-03-05T10:00:00", "8 first day, not claimed"),
        _viewer(7, "2024-03-07T00:00:00", "after the end"),
        _viewer(7, "2024-03-06T00:00:00", "7 second day"),
    ]
    export = normalize_export(get_data_type("viewers_apc"), "finest", data, scope="location:7")
    kept, counts = _owned_rows(export, _slices("viewers_apc", "finest", {(7, D1), (7, D2)}))
    assert len(kept.rows.records) == 2
    assert kept.child is not None
    columns = kept.child.table.column_names
    contents = {r[0]: r[1 + columns.index("content_id")] for r in kept.child.records}
    assert contents == {0: "7 first day", 1: "7 second day"}  # parent indexes follow
    assert counts == {(7, D1): 1, (7, D2): 1}


def test_each_slice_is_counted_for_its_job() -> None:
    data = [
        {"location_id": loc, "period_start": f"2024-03-0{day} 0{h}:00:00", "watcher_count": 1}
        for loc in (7, 8)
        for day in (5, 6)
        for h in range(3)
    ]
    export = normalize_export(get_data_type("viewers"), "1h", data, scope="s")
    owned = {(loc, d) for loc in (7, 8) for d in (D1, D2)}
    kept, counts = _owned_rows(export, _slices("viewers", "1h", owned))
    assert kept is export
    assert counts == {key: 3 for key in owned}


def test_a_skipped_slice_is_left_out() -> None:
    data = [
        {"location_id": 7, "period_start": "2024-03-05 01:00:00", "watcher_count": 1},
        {"location_id": 8, "period_start": "2024-03-05 01:00:00", "watcher_count": 1},
    ]
    export = normalize_export(get_data_type("viewers"), "1h", data, scope="s")
    slices = _slices("viewers", "1h", {(7, D1), (8, D1)}, skip=frozenset({(8, D1)}))
    kept, counts = _owned_rows(export, slices)
    assert [r[0] for r in kept.rows.records] == [7]
    assert counts == {(7, D1): 1}


def test_a_raw_row_before_the_export_is_a_row_error_naming_its_location() -> None:
    data = [{"location_id": 7, "period_start": "2024-03-04T23:59:59"}]
    export = normalize_export(get_data_type("viewers"), "finest", data, scope="location:7")
    with pytest.raises(RowError, match=r"2024-03-04 23:59:59 is before .*location 7") as caught:
        _owned_rows(export, _slices("viewers", "finest", {(7, D1)}))
    assert (caught.value.scope_id, caught.value.day) == (7, D1)


def test_an_aggregate_that_starts_before_the_export_is_the_first_jobs() -> None:
    data = [{"location_id": 7, "period_start": "2024-03-01 00:00:00", "watcher_count": 3}]
    export = normalize_export(get_data_type("viewers"), "1M", data, scope="location:7")
    slices = _slices("viewers", "1M", {(7, date(2024, 3, 1))}, start=datetime(2024, 3, 1))
    kept, counts = _owned_rows(export, slices)
    assert kept.rows.records == export.rows.records
    assert counts == {(7, date(2024, 3, 1)): 1}


def test_weekly_rows_belong_to_the_job_of_their_iso_week() -> None:
    data = [
        {"location_id": 7, "period_start": f"2024-03-{d:02d} 00:00:00", "watcher_count": 3}
        for d in (4, 11)
    ]
    export = normalize_export(get_data_type("viewers"), "7d", data, scope="location:7")
    weeks = {(7, date(2024, 3, 4)), (7, date(2024, 3, 11))}
    slices = _slices("viewers", "7d", weeks, start=datetime(2024, 3, 4), end=datetime(2024, 3, 18))
    _, counts = _owned_rows(export, slices)
    assert counts == {key: 1 for key in weeks}


def test_rows_of_a_scope_the_export_did_not_ask_for_are_a_bad_payload() -> None:
    data = [{"location_id": 9, "period_start": "2024-03-05 00:00:00", "watcher_count": 3}]
    export = normalize_export(get_data_type("viewers"), "1h", data, scope="s")
    with pytest.raises(BadPayload, match=r"not asked for: \[9\]"):
        _owned_rows(export, _slices("viewers", "1h", {(7, D1)}))
