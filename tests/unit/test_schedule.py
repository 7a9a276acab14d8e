from datetime import UTC, date, datetime, timedelta

import pytest

from ingest.schedule import due_jobs, parse_schedule, refresh_rule

NOW = datetime(2026, 11, 25, 10, 30, tzinfo=UTC)  # a Wednesday
TODAY = NOW.date()


def test_today_is_refreshed_at_every_tick_whatever_the_interval() -> None:
    # a job of today done at any moment before this tick is stale at it: refreshed at every
    # interval, not every second one
    assert refresh_rule(TODAY, TODAY, NOW, reingest_days=2) == NOW


def test_recent_closed_days_are_refreshed_once_a_day_for_late_uploads() -> None:
    for back in (1, 2):
        stale = refresh_rule(TODAY - timedelta(days=back), TODAY, NOW, reingest_days=2)
        assert stale == datetime(2026, 11, 25, tzinfo=UTC)


def test_older_days_are_not_refreshed() -> None:
    assert refresh_rule(TODAY - timedelta(days=3), TODAY, NOW, reingest_days=2) is None


def test_a_bucket_is_refreshed_at_every_tick_until_it_has_ended() -> None:
    monday = date(2026, 11, 23)
    assert refresh_rule(monday, TODAY, NOW, reingest_days=0, resolution="7d") == NOW
    month = date(2026, 10, 1)
    stale = refresh_rule(month, TODAY, NOW, reingest_days=30, resolution="1M")
    assert stale == datetime(2026, 11, 25, tzinfo=UTC)  # ended 24 days ago: once a day
    assert refresh_rule(month, TODAY, NOW, reingest_days=24, resolution="1M") is None


def test_due_jobs_cover_every_scope_type_and_day_of_the_lookback() -> None:
    jobs = due_jobs(
        NOW,
        tz="UTC",
        lookback_days=2,
        reingest_days=2,
        vidicenter_types=[
            ("viewers", "1h"),
            ("proof_of_play_by_site", "1h"),
            ("extrapolated_ots", "1h"),
        ],
        locations=["1", "2"],
        sites=["7"],
        streams=["s1"],
    )
    days = {j.spec.day for j in jobs}
    assert days == {date(2026, 11, 23), date(2026, 11, 24), date(2026, 11, 25)}
    per_day = [j for j in jobs if j.spec.day == TODAY]
    assert sorted(j.spec.scope.encode() for j in per_day) == [
        "location:1",
        "location:2",
        "locations:1,2",
        "site:7",
        "stream:s1",
    ]
    extrapolated = next(j for j in per_day if j.spec.data_type == "extrapolated_ots")
    assert extrapolated.spec.params == {"extrapolation_amount": ""}


def test_coarse_resolutions_are_scheduled_one_job_per_bucket() -> None:
    jobs = due_jobs(
        NOW,
        tz="UTC",
        lookback_days=30,
        reingest_days=2,
        vidicenter_types=[("viewers", "7d"), ("viewers", "1M")],
        locations=["1"],
    )
    weeks = [j.spec.day for j in jobs if j.spec.time_resolution == "7d"]
    months = [j.spec.day for j in jobs if j.spec.time_resolution == "1M"]
    assert weeks == [date(2026, 10, 26) + timedelta(days=7 * i) for i in range(5)]
    assert all(d.weekday() == 0 for d in weeks)
    assert months == [date(2026, 10, 1), date(2026, 11, 1)]


def test_the_day_follows_the_configured_time_zone() -> None:
    late = datetime(2026, 11, 25, 23, 30, tzinfo=UTC)
    jobs = due_jobs(late, tz="Asia/Tokyo", lookback_days=0, reingest_days=0, streams=["s"])
    assert [j.spec.day for j in jobs] == [date(2026, 11, 26)]


def test_schedule_entries_are_checked_against_the_registry() -> None:
    assert parse_schedule(["viewers:1h", "persons:finest"]) == [
        ("viewers", "1h"),
        ("footfall", "finest"),
    ]
    with pytest.raises(ValueError):
        parse_schedule(["ots:finest"])
    with pytest.raises(ValueError):
        parse_schedule(["nonsense:1h"])
