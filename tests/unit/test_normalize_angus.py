"""The Angus normalizer: documented payloads → records, bad shapes → BadPayload."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.errors import BadPayload
from ingest.normalize.angus import COLUMNS, normalize_entities

WINDOW = datetime(2017, 9, 3, tzinfo=UTC)


def page(entities: dict[str, Any], **rest: Any) -> dict[str, Any]:
    return {"entities": entities, "time": "by_hour", "next_page": "", **rest}


def as_dicts(records: list[tuple[object, ...]]) -> list[dict[str, object]]:
    return [dict(zip(COLUMNS, record, strict=True)) for record in records]


def normalize(pages: list[dict[str, Any]], time_bucket: str = "by_hour") -> list[dict[str, object]]:
    return as_dicts(
        normalize_entities(pages, stream="cid-1", time_bucket=time_bucket, window_start=WINDOW)
    )


DOCUMENTED_BUCKET = {
    "passing_by": {"value": 12},
    "interested": {"value": 5},
    "stop_time": {"value": 3.5},
    "attention_time": {"value": 1.25},
    "gender": {"?": 1, "female": 2, "male": 2},
    "category": {"senior_female": 0, "senior_male": 1, "young_female": 2, "young_male": 2},
    "satisfaction": {"happy": 3},
}


def test_documented_bucket_lands_in_every_column() -> None:
    [row] = normalize([page({"2017-09-03T10:00:00+00:00": DOCUMENTED_BUCKET})])

    assert row == {
        "stream": "cid-1",
        "time_bucket": "by_hour",
        "period_start": datetime(2017, 9, 3, 10, tzinfo=UTC),
        "passing_by": 12,
        "interested": 5,
        "stop_time": 3.5,
        "attention_time": 1.25,
        "gender": '{"?":1,"female":2,"male":2}',
        "category": '{"senior_female":0,"senior_male":1,"young_female":2,"young_male":2}',
        "satisfaction": '{"happy":3}',
        "extra": "{}",
    }


def test_columns_match_the_contract_order() -> None:
    assert COLUMNS == (
        "stream",
        "time_bucket",
        "period_start",
        "passing_by",
        "interested",
        "stop_time",
        "attention_time",
        "gender",
        "category",
        "satisfaction",
        "extra",
    )


def test_zero_buckets_are_kept_as_zeros() -> None:
    zero = {
        "passing_by": {"value": 0},
        "interested": {"value": 0},
        "stop_time": {"value": None},
        "attention_time": {"value": None},
    }
    rows = normalize([page({"2017-09-03T00:00:00+00:00": zero, "2017-09-03T01:00:00+00:00": zero})])

    assert [(r["passing_by"], r["interested"], r["stop_time"]) for r in rows] == [
        (0, 0, None),
        (0, 0, None),
    ]


def test_missing_metrics_are_null_not_zero() -> None:
    [row] = normalize([page({"2017-09-03T00:00:00+00:00": {"passing_by": {"value": 4}}})])

    assert row["passing_by"] == 4
    assert row["interested"] is None
    assert row["stop_time"] is None
    assert row["gender"] is None
    assert row["satisfaction"] is None


def test_global_bucket_is_stored_at_window_start() -> None:
    [row] = normalize([page({"global": DOCUMENTED_BUCKET}, time="global")], time_bucket="global")

    assert row["period_start"] == WINDOW
    assert row["time_bucket"] == "global"


def test_global_bucket_in_an_hourly_answer_is_bad_payload() -> None:
    with pytest.raises(BadPayload, match="global"):
        normalize([page({"global": DOCUMENTED_BUCKET})], time_bucket="by_hour")


def test_bucket_key_keeps_its_offset() -> None:
    [row] = normalize([page({"2017-09-03T02:00:00+02:00": {"passing_by": {"value": 1}}})])

    start = row["period_start"]
    assert isinstance(start, datetime)
    assert start == datetime(2017, 9, 3, 0, tzinfo=UTC)
    assert start.utcoffset() == timedelta(hours=2)


def test_z_suffix_is_read_as_utc() -> None:
    [row] = normalize([page({"2017-09-03T05:00:00Z": {"passing_by": {"value": 1}}})])

    assert row["period_start"] == datetime(2017, 9, 3, 5, tzinfo=UTC)


def test_unknown_metric_goes_to_extra() -> None:
    bucket = {"passing_by": {"value": 1}, "dwell": {"value": 7}, "note": "new"}
    [row] = normalize([page({"2017-09-03T00:00:00+00:00": bucket})])

    assert json.loads(str(row["extra"])) == {"dwell": {"value": 7}, "note": "new"}
    assert row["passing_by"] == 1


def test_unknown_keys_beside_value_go_to_extra_under_the_metric() -> None:
    bucket = {"passing_by": {"value": 3, "confidence": 0.9}}
    [row] = normalize([page({"2017-09-03T00:00:00+00:00": bucket})])

    assert row["passing_by"] == 3
    assert json.loads(str(row["extra"])) == {"passing_by": {"confidence": 0.9}}


def test_bare_numbers_are_accepted_for_wrapped_metrics() -> None:
    bucket = {"passing_by": 3, "interested": 2.0, "stop_time": 4}
    [row] = normalize([page({"2017-09-03T00:00:00+00:00": bucket})])

    assert (row["passing_by"], row["interested"], row["stop_time"]) == (3, 2, 4.0)
    assert isinstance(row["interested"], int)
    assert isinstance(row["stop_time"], float)


def test_satisfaction_is_stored_as_delivered_whatever_its_shape() -> None:
    bucket = {"satisfaction": [1, "two", {"three": None}]}
    [row] = normalize([page({"2017-09-03T00:00:00+00:00": bucket})])

    assert row["satisfaction"] == '[1,"two",{"three":null}]'


def test_buckets_of_every_page_are_kept_in_order() -> None:
    rows = normalize(
        [
            page({"2017-09-03T00:00:00+00:00": {"passing_by": {"value": 1}}}, page=1),
            page({"2017-09-03T01:00:00+00:00": {"passing_by": {"value": 2}}}, page=2),
        ]
    )

    assert [r["passing_by"] for r in rows] == [1, 2]


def test_duplicate_bucket_across_pages_last_wins() -> None:
    rows = normalize(
        [
            page({"2017-09-03T00:00:00+00:00": {"passing_by": {"value": 1}}}),
            page({"2017-09-03T00:00:00+00:00": {"passing_by": {"value": 9}}}),
        ]
    )

    assert [(r["period_start"], r["passing_by"]) for r in rows] == [
        (datetime(2017, 9, 3, tzinfo=UTC), 9)
    ]


def test_same_instant_spelled_with_two_offsets_is_one_record() -> None:
    rows = normalize(
        [
            page(
                {
                    "2017-09-03T00:00:00+00:00": {"passing_by": {"value": 1}},
                    "2017-09-03T02:00:00+02:00": {"passing_by": {"value": 2}},
                }
            )
        ]
    )

    assert [r["passing_by"] for r in rows] == [2]


def test_no_pages_and_empty_entities_give_no_records() -> None:
    assert normalize([]) == []
    assert normalize([page({})]) == []


@pytest.mark.parametrize(
    ("entities", "named"),
    [
        ({"2017-09-03T00:00:00+00:00": {"passing_by": {"value": "x"}}}, "passing_by"),
        ({"2017-09-03T00:00:00+00:00": {"interested": {"value": 1.5}}}, "interested"),
        ({"2017-09-03T00:00:00+00:00": {"passing_by": {"value": True}}}, "passing_by"),
        ({"2017-09-03T00:00:00+00:00": {"passing_by": [1]}}, "passing_by"),
        ({"2017-09-03T00:00:00+00:00": {"stop_time": {"value": "long"}}}, "stop_time"),
        ({"2017-09-03T00:00:00+00:00": {"attention_time": {"value": float("nan")}}}, "attention"),
        ({"2017-09-03T00:00:00+00:00": {"gender": {"male": float("inf")}}}, "gender"),
        ({"2017-09-03T00:00:00+00:00": {"category": {"a\x00": 1}}}, "category"),
        ({"yesterday": {"passing_by": {"value": 1}}}, "yesterday"),
        ({"2017-09-03T00:00:00": {"passing_by": {"value": 1}}}, "offset"),
        ({"2017-09-03T00:00:00+00:00": [1, 2]}, "not an object"),
        ({"2017-09-03T00:00:00+00:00": None}, "not an object"),
    ],
    ids=[
        "count-is-text",
        "count-is-fraction",
        "count-is-bool",
        "count-is-list",
        "seconds-is-text",
        "seconds-is-nan",
        "jsonb-has-infinity",
        "jsonb-has-nul",
        "key-not-a-date",
        "key-without-offset",
        "value-is-list",
        "value-is-null",
    ],
)
def test_bad_shape_is_bad_payload_naming_bucket_and_metric(
    entities: dict[str, Any], named: str
) -> None:
    key = next(iter(entities))
    with pytest.raises(BadPayload) as caught:
        normalize([page(entities)])

    assert key in str(caught.value)
    assert named in str(caught.value)


@pytest.mark.parametrize(
    "bad_page",
    [{}, {"entities": None}, {"entities": []}, []],
    ids=["no-key", "null", "list", "list-page"],
)
def test_page_without_entities_object_is_bad_payload(bad_page: Any) -> None:
    with pytest.raises(BadPayload, match="entities"):
        normalize([bad_page])


def test_naive_window_start_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        normalize_entities([], stream="s", time_bucket="by_hour", window_start=datetime(2017, 9, 3))


# --- property: every bucket of a documented payload lands once ----------------------------

counts = st.integers(min_value=0, max_value=2**31 - 1)
seconds = st.one_of(st.none(), st.floats(min_value=0, max_value=1e6, allow_nan=False))
documented_value = st.fixed_dictionaries(
    {},
    optional={
        "passing_by": st.builds(lambda v: {"value": v}, counts),
        "interested": st.builds(lambda v: {"value": v}, counts),
        "stop_time": st.builds(lambda v: {"value": v}, seconds),
        "attention_time": st.builds(lambda v: {"value": v}, seconds),
        "gender": st.fixed_dictionaries({"?": counts, "female": counts, "male": counts}),
        "category": st.dictionaries(
            st.sampled_from(["senior_female", "senior_male", "young_female", "young_male"]),
            counts,
        ),
        "satisfaction": st.one_of(
            st.none(),
            counts,
            st.dictionaries(st.sampled_from(["happy", "neutral", "?"]), counts, max_size=3),
        ),
    },
)
offsets = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))])
bucket_starts = st.builds(
    lambda hours, tz: (WINDOW + timedelta(hours=hours)).astimezone(tz),
    st.integers(min_value=0, max_value=24 * 60),
    offsets,
)


@st.composite
def documented_pages(draw: st.DrawFn) -> tuple[list[dict[str, Any]], int]:
    starts = draw(st.lists(bucket_starts, unique_by=lambda d: d.timestamp(), max_size=8))
    buckets = [(start.isoformat(), draw(documented_value)) for start in starts]
    cuts = sorted(draw(st.lists(st.integers(0, len(buckets)), max_size=2)))
    bounds = [0, *cuts, len(buckets)]
    pages = [
        page(dict(buckets[lo:hi]), page=n, nb_of_pages=len(bounds) - 1)
        for n, (lo, hi) in enumerate(pairwise(bounds), start=1)
    ]
    return pages, len(buckets)


@given(documented_pages())
def test_every_documented_bucket_lands_as_exactly_one_record(
    drawn: tuple[list[dict[str, Any]], int],
) -> None:
    pages, bucket_count = drawn
    rows = normalize(pages)

    assert len(rows) == bucket_count
    keys = {key for p in pages for key in p["entities"]}
    assert {r["period_start"] for r in rows} == {datetime.fromisoformat(k) for k in keys}
    for row in rows:
        assert row["stream"] == "cid-1"
        assert json.loads(str(row["extra"])) == {}
        assert row["passing_by"] is None or isinstance(row["passing_by"], int)


@given(st.lists(documented_value, max_size=3))
def test_documented_global_answer_is_one_record_at_window_start(
    values: list[dict[str, Any]],
) -> None:
    pages = [page({"global": value}, time="global") for value in values]
    rows = normalize(pages, time_bucket="global")

    assert [r["period_start"] for r in rows] == ([WINDOW] if values else [])
