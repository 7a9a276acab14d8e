from datetime import datetime

import pytest

from ingest.datatypes import get_data_type
from ingest.errors import BadPayload
from ingest.loader import _within_day
from ingest.normalize.vidicenter import normalize_export

START = datetime(2024, 3, 5)
END = datetime(2024, 3, 6)


def _viewer(start_time: str, content: str) -> dict[str, object]:
    return {
        "location_id": 7,
        "start_time": start_time,
        "contents": [{"content_id": content, "app_id": "a", "campaign_id": None}],
    }


def test_rows_of_the_next_day_are_left_to_its_job_with_their_children() -> None:
    data = [
        _viewer("2024-03-05T23:59:59", "last"),
        _viewer("2024-03-06T00:00:00", "next day"),
        _viewer("2024-03-05T00:00:00", "first"),
    ]
    export = normalize_export(get_data_type("viewers_apc"), "finest", data, scope="location:7")
    kept = _within_day(export, START, END, first=0)
    assert len(kept.rows.records) == 2
    assert kept.child is not None
    columns = kept.child.table.column_names
    contents = {r[0]: r[1 + columns.index("content_id")] for r in kept.child.records}
    assert contents == {0: "last", 1: "first"}  # parent indexes follow the kept rows
    assert kept.counts_by_scope() == {7: 2}


def test_a_raw_row_before_the_day_is_a_bad_payload_naming_it() -> None:
    data = [{"location_id": 7, "period_start": "2024-03-04T23:59:59"}]
    export = normalize_export(get_data_type("viewers"), "finest", data, scope="location:7")
    with pytest.raises(BadPayload, match=r"^row 40: period_start 2024-03-04 23:59:59 is before"):
        _within_day(export, START, END, first=40)


def test_an_aggregate_that_starts_before_the_day_is_kept() -> None:
    data = [{"location_id": 7, "period_start": "2024-03-01 00:00:00", "watcher_count": 3}]
    export = normalize_export(get_data_type("viewers"), "1M", data, scope="location:7")
    assert _within_day(export, START, END, first=0).rows.records == export.rows.records
