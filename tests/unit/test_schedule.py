from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ingest.schedule import (
    angus_day_final,
    due_jobs,
    is_silent,
    parse_schedule,
    refresh_rule,
    vidicenter_day_end,
    vidicenter_day_final,
)

NOW = datetime(2026, 11, 25, 10, 30, tzinfo=UTC)  # a Wednesday
TODAY = NOW.date()
DAY = date(2026, 11, 23)
SETTLE_S = 3600.0
SILENCE_S = 3 * 86400.0


def test_an_open_done_day_is_stale_at_every_tick_whatever_the_interval() -> None:
    # a job of an open day done at any moment before this tick is stale at it: refreshed
    # at every interval, not every second one
    assert refresh_rule(NOW) == NOW


def test_due_jobs_cover_every_scope_type_and_day_of_the_lookback() -> None:
    jobs = due_jobs(
        NOW,
        tz="UTC",
        lookback_days=2,
        account="v.example/me",
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
    assert {j.spec.account for j in per_day if j.spec.vendor == "vidicenter"} == {"v.example/me"}
    assert {j.spec.account for j in per_day if j.spec.vendor == "angus"} == {"s1"}
    extrapolated = next(j for j in per_day if j.spec.data_type == "extrapolated_ots")
    assert extrapolated.spec.params == {"extrapolation_amount": ""}


def test_coarse_resolutions_are_scheduled_one_job_per_bucket() -> None:
    jobs = due_jobs(
        NOW,
        tz="UTC",
        lookback_days=30,
        account="v.example/me",
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
    jobs = due_jobs(late, tz="Asia/Tokyo", lookback_days=0, streams=["s"])
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


# --- completeness -----------------------------------------------------------------------


def _final(*uploads: datetime | None) -> bool:
    return vidicenter_day_final(DAY, uploads, now=NOW, settle_s=SETTLE_S, silence_s=SILENCE_S)


def test_a_vidicenter_day_is_final_once_every_location_uploaded_past_its_end_and_the_margin() -> (
    None
):
    end = vidicenter_day_end(DAY)
    assert end == datetime(2026, 11, 24)
    settled = end + timedelta(seconds=SETTLE_S)
    assert _final(settled, settled + timedelta(hours=5))
    assert not _final(settled, settled - timedelta(seconds=1))  # one location is not in yet
    assert not _final(end)  # past the end, but not past the margin


def test_a_silent_location_holds_no_day_open() -> None:
    settled = vidicenter_day_end(DAY) + timedelta(seconds=SETTLE_S)
    long_ago = datetime(2026, 11, 1)
    assert is_silent(long_ago, NOW, silence_s=SILENCE_S)
    assert is_silent(None, NOW, silence_s=SILENCE_S)  # never uploaded
    assert _final(settled, long_ago, None)
    # a location a day behind is late, not silent: the day waits for it
    yesterday = datetime(2026, 11, 24, 9, 0)
    assert not is_silent(yesterday, NOW, silence_s=SILENCE_S)
    assert not _final(settled, datetime(2026, 11, 23, 20, 0))


def test_the_silence_is_measured_on_the_vendors_clock_in_utc() -> None:
    paris = datetime(2026, 11, 25, 11, 30, tzinfo=ZoneInfo("Europe/Paris"))
    just_in = datetime(2026, 11, 22, 10, 30, 1)  # 3 days less one second before 10:30 UTC
    assert not is_silent(just_in, paris, silence_s=SILENCE_S)
    assert is_silent(just_in - timedelta(seconds=2), paris, silence_s=SILENCE_S)


def test_an_angus_day_is_final_once_it_has_ended_plus_the_margin_in_its_time_zone() -> None:
    end_utc = datetime(2026, 11, 24, tzinfo=UTC)
    assert not angus_day_final(DAY, tz="UTC", now=end_utc, settle_s=SETTLE_S)
    assert angus_day_final(DAY, tz="UTC", now=end_utc + timedelta(hours=1), settle_s=SETTLE_S)
    # in Tokyo the day ended 9 hours earlier
    assert angus_day_final(DAY, tz="Asia/Tokyo", now=end_utc, settle_s=SETTLE_S)
    assert not angus_day_final(TODAY, tz="UTC", now=NOW, settle_s=0)
