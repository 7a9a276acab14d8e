"""The span of a job: a day, or a whole bucket for 7d, 30d and 1M."""

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.buckets import ANCHOR_30D, bucket_end, bucket_index, bucket_start, buckets_between
from ingest.jobspecs import job_days


def test_a_week_is_an_iso_week_from_monday() -> None:
    assert bucket_start("7d", date(2024, 3, 7)) == date(2024, 3, 4)  # a Thursday
    assert bucket_start("7d", date(2024, 3, 4)) == date(2024, 3, 4)
    assert bucket_end("7d", date(2024, 3, 4)) == date(2024, 3, 11)


def test_a_month_is_a_calendar_month() -> None:
    assert bucket_start("1M", date(2024, 2, 29)) == date(2024, 2, 1)
    assert bucket_end("1M", date(2024, 12, 1)) == date(2025, 1, 1)
    assert bucket_end("1M", date(2024, 1, 1)) == date(2024, 2, 1)


def test_thirty_days_are_counted_from_the_epoch() -> None:
    assert bucket_start("30d", ANCHOR_30D + timedelta(days=29)) == ANCHOR_30D
    assert bucket_start("30d", date(2024, 1, 20)) == date(2024, 1, 18)
    assert bucket_end("30d", date(2024, 1, 18)) == date(2024, 2, 17)


@pytest.mark.parametrize("res", ["finest", "5m", "1h", "1d"])
def test_a_resolution_up_to_a_day_has_a_job_per_day(res: str) -> None:
    day = date(2024, 3, 7)
    assert (bucket_start(res, day), bucket_end(res, day)) == (day, day + timedelta(days=1))


@given(day=st.dates(date(1971, 1, 1), date(2100, 1, 1)), res=st.sampled_from(["7d", "30d", "1M"]))
def test_buckets_hold_their_days_and_follow_each_other(day: date, res: str) -> None:
    start = bucket_start(res, day)
    assert start <= day < bucket_end(res, start)
    after = bucket_end(res, start)
    assert bucket_start(res, after) == after
    assert bucket_index(res, after) == bucket_index(res, start) + 1


def test_a_backfill_of_four_days_at_7d_is_one_job_per_week_not_four() -> None:
    # the four days run Thursday to Sunday: one ISO week
    days = [date(2024, 3, 7) + timedelta(days=i) for i in range(4)]
    assert job_days("7d", days) == [date(2024, 3, 4)]
    assert job_days("1M", days) == [date(2024, 3, 1)]
    assert job_days("1h", days) == days
    assert buckets_between("7d", days[0], days[-1] + timedelta(days=1)) == [
        date(2024, 3, 4),
        date(2024, 3, 11),
    ]
