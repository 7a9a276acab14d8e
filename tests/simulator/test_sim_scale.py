"""Exports over many days and locations: row caps, build time by size, long request lines,
counters of exports by size, and a poisoned row."""

from __future__ import annotations

from tests.simulator.simclient import BUILD_SECONDS, Start, Vendor


def fleet_export(locations: int, days: int) -> dict[str, str]:
    ids = ",".join(str(1001 + i) for i in range(locations))
    return {
        "locations": ids,
        "data_type": "viewers",
        "time_resolution": "1h",
        "start": "2024-03-01T00:00:00",
        "end": f"2024-03-{1 + days:02d}T00:00:00",
    }


async def test_an_aggregated_export_over_the_row_cap_ends_failed_with_the_reason(
    start: Start,
) -> None:
    # 10 locations x 30 days x 24 hours = 7,200 rows, over a cap of 5,000
    vendor = await start(location_count=10, max_aggregated_rows=5_000, build_seconds=0)
    assert (await vendor.export(fleet_export(10, 30)))["state"] == "started"
    failed = await vendor.export(fleet_export(10, 30))
    assert failed["state"] == "failed"
    assert "too large (7200 rows, at most 5000 allowed)" in failed["fail_reason"]
    assert (await vendor.stats())["exports_failed"] == 1
    # half of it is within the cap
    assert (await vendor.export(fleet_export(10, 15)))["state"] == "started"
    assert (await vendor.export(fleet_export(10, 15)))["state"] == "finished"


async def test_build_time_grows_with_the_exports_rows(start: Start) -> None:
    # 1,000 rows a second on top of the base build time
    vendor = await start(location_count=10, build_seconds_per_million_rows=1_000)
    small, large = fleet_export(1, 1), fleet_export(10, 20)  # 24 and 4,800 rows
    for query in (small, large):
        assert (await vendor.export(query))["state"] == "started"
    vendor.clock.advance(BUILD_SECONDS + 0.1)
    assert (await vendor.export(small))["state"] == "finished"
    assert (await vendor.export(large))["state"] == "in_progress"
    vendor.clock.advance(4.8)
    assert (await vendor.export(large))["state"] == "finished"


async def test_a_request_line_over_the_limit_is_answered_414_and_counted(start: Start) -> None:
    vendor = await start(location_count=1000, max_request_line=2000)
    refused = await vendor.get("/api/v1/data/", fleet_export(1000, 1))
    assert refused.status == 414
    assert refused.json()["error"] == 414
    stats = await vendor.stats()
    assert stats["requests_too_long"] == 1
    assert stats["exports_started"] == 0
    assert (await vendor.export(fleet_export(100, 1)))["state"] == "started"  # 500 bytes of ids


async def test_exports_are_counted_by_rows_and_by_days(vendor: Vendor) -> None:
    await vendor.export(fleet_export(1, 1))  # 24 rows, one day
    await vendor.export(fleet_export(6, 30))  # 4,320 rows, 30 days
    stats = await vendor.stats()
    assert stats["exports_by_rows"] == {"<1k": 1, "1k-10k": 1}
    assert stats["exports_by_days"] == {"1": 1, "8-31": 1}
    assert stats["largest_export_rows"] == 6 * 30 * 24


async def test_a_poisoned_location_day_has_one_row_of_the_wrong_type(start: Start) -> None:
    vendor = await start(poison="1002:2024-03-02", build_seconds=0)
    rows = await vendor.rows(fleet_export(3, 3))
    poisoned = [r for r in rows if "poisoned" in r.values()]
    assert len(poisoned) == 1
    assert poisoned[0]["location_id"] == 1002
    assert poisoned[0]["period_start"].startswith("2024-03-02")
