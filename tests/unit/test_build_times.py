"""Predicting an export's build time from the builds seen, to put the first poll after it."""

import anyio
import pytest

from ingest.vendors.builds import (
    COLD_ROWS,
    BuildTimes,
    Seen,
    cold_first_wait,
    first_poll_after,
)


def test_nothing_is_predicted_before_a_build_is_seen() -> None:
    assert BuildTimes().predict("viewers:1h", 1000) is None


async def test_a_build_seen_between_two_polls_is_taken_late_so_the_next_poll_covers_it() -> None:
    builds = BuildTimes()
    await builds.observe(
        "viewers:1h", 1000, not_ready_at=24.0, ready_after=48.0
    )  # a doubling probe
    predicted = builds.predict("viewers:1h", 1000)
    assert predicted == 42.0
    assert first_poll_after(predicted) >= 48.0  # a build as long as the probe could tell


async def test_an_export_of_another_size_is_scaled() -> None:
    builds = BuildTimes()
    await builds.observe("viewers:1h", 1000, not_ready_at=8.5, ready_after=10.5)
    assert builds.predict("viewers:1h", 1200) == 12.0  # close in size: in proportion
    await builds.observe("viewers:1h", 100_000, not_ready_at=100.0, ready_after=120.0)
    # two sizes seen: a line through them (a fixed part and a part per row)
    assert 10.0 < builds.predict("viewers:1h", 50_000) < 110.0  # type: ignore[operator]


def test_with_one_size_seen_a_bigger_export_is_scaled_up_by_the_square_root() -> None:
    builds = BuildTimes([Seen("viewers:1h", 24_000, 21.0)])  # a day of 1,000 locations
    assert builds.predict("viewers:1h", 384_000) == pytest.approx(84.0)  # 16 times the rows


def test_with_one_size_seen_a_smaller_export_is_scaled_down_by_the_fourth_root() -> None:
    # a backfill's build seen; a day's refresh is predicted long rather than short
    builds = BuildTimes([Seen("viewers:1h", 384_000, 42.0)])
    assert builds.predict("viewers:1h", 24_000) == pytest.approx(21.0)
    assert first_poll_after(21.0) > 20.0 + 60.0 * 0.024  # the simulator's build: 2 calls


def test_with_one_size_seen_small_exports_count_as_10000_rows() -> None:
    builds = BuildTimes([Seen("viewers:1h", 144, 3.0)])  # a demo's export
    assert builds.predict("viewers:1h", 2160) == 3.0
    assert builds.predict("viewers:1h", 40_000) == pytest.approx(6.0)


async def test_a_build_ready_at_the_first_poll_keeps_the_prediction_about_where_it_was() -> None:
    builds = BuildTimes()
    await builds.observe("ots:1h", 500, not_ready_at=8.5, ready_after=10.5)
    predicted = builds.predict("ots:1h", 500)
    assert predicted is not None
    await builds.observe("ots:1h", 500, not_ready_at=0.0, ready_after=first_poll_after(predicted))
    after = builds.predict("ots:1h", 500)
    assert after is not None and 0.9 * predicted <= after <= predicted


async def test_another_kind_of_export_borrows_the_builds_seen_until_its_own_are() -> None:
    builds = BuildTimes()
    await builds.observe("viewers:1h", 1000, not_ready_at=8.5, ready_after=10.5)
    assert builds.predict("footfall:1h", 1000) == 10.0
    await builds.observe("footfall:1h", 1000, not_ready_at=28.5, ready_after=30.5)
    assert builds.predict("footfall:1h", 1000) == 30.0


async def test_exports_waiting_for_the_probe_wake_when_it_ends_without_a_build() -> None:
    builds = BuildTimes()
    builds.start_probe()
    woken: list[bool] = []

    async def wait() -> None:
        await builds.wait_learned(timeout_s=3600)
        woken.append(builds.probing)

    with anyio.fail_after(10):  # an hour's wait would mean it was not woken
        async with anyio.create_task_group() as tg:
            tg.start_soon(wait)
            await anyio.wait_all_tasks_blocked()
            builds.end_probe()  # its export failed: no build seen
    assert woken == [False]  # the waiter is free to probe in turn


def test_builds_seen_before_predict_from_the_start() -> None:
    seed = [Seen("viewers:1h", 1000, 30.0), Seen("viewers:1h", 1000, 20.0)]
    builds = BuildTimes(seed)
    assert builds.predict("viewers:1h", 1000) == 20.0  # the newest of one size
    assert builds.predict("ots:1h", 1000) == 20.0  # borrowed by another kind


async def test_the_newest_build_of_a_size_sets_the_next_prediction() -> None:
    builds = BuildTimes([Seen("ots:1h", 1000, 10.0)])
    # slower now: the first poll, at 12 s, found it building, the next one ready
    await builds.observe("ots:1h", 1010, not_ready_at=12.0, ready_after=20.0)
    assert builds.predict("ots:1h", 1010) == 18.0


def test_a_kind_seen_at_one_size_takes_the_shape_of_the_others_builds() -> None:
    builds = BuildTimes(
        [
            Seen("viewers:1h", 10_000, 20.0),
            Seen("viewers:1h", 1_000_000, 80.0),  # 20 s + 60 s a million rows
            Seen("ots:1h", 10_000, 40.0),  # ots: twice as slow
        ]
    )
    assert builds.predict("ots:1h", 1_000_000) == pytest.approx(160.0, rel=0.01)
    assert builds.predict("viewers:1h", 505_000) == pytest.approx(50.0)


async def test_each_build_seen_is_handed_on_to_be_kept() -> None:
    handed: list[Seen] = []

    async def keep(seen: Seen) -> None:
        handed.append(seen)

    builds = BuildTimes(on_observe=keep)
    seen = await builds.observe("viewers:1h", 1000, not_ready_at=24.0, ready_after=48.0)
    assert handed == [seen] == [Seen("viewers:1h", 1000, 42.0)]


async def test_a_build_that_cannot_be_kept_is_still_used() -> None:
    async def broken(_seen: Seen) -> None:
        raise OSError("the database is away")

    async def stuck(_seen: Seen) -> None:
        await anyio.sleep(3600)

    for keep in (broken, stuck):
        builds = BuildTimes(on_observe=keep, save_timeout_s=0.05)
        with anyio.fail_after(10):
            await builds.observe("viewers:1h", 1000, not_ready_at=8.5, ready_after=10.5)
        assert builds.predict("viewers:1h", 1000) == 10.0


def test_with_nothing_seen_a_bigger_export_is_first_polled_later() -> None:
    assert cold_first_wait(0, 3.0) == cold_first_wait(COLD_ROWS, 3.0) == 3.0
    assert cold_first_wait(4 * COLD_ROWS, 3.0) == 6.0  # the square root of its size
    assert cold_first_wait(36 * COLD_ROWS, 3.0) == 18.0
