"""The asynchronous export lifecycle: states, identity, cache, rebuilds, failures, late uploads."""

from __future__ import annotations

from tests.simulator.simclient import BUILD_SECONDS, Start, Vendor

VIEWERS = {
    "locations": "1001",
    "data_type": "viewers",
    "start": "2024-03-04T00:00:00",
    "end": "2024-03-05T00:00:00",
    "time_resolution": "1h",
}


async def test_export_goes_started_then_in_progress_then_finished(vendor: Vendor) -> None:
    assert await vendor.export(**VIEWERS) == {"state": "started"}
    vendor.clock.advance(BUILD_SECONDS / 2)
    polled = await vendor.export(**VIEWERS)
    assert polled["state"] == "in_progress"
    assert set(polled) == {"state", "creation_date"}
    vendor.clock.advance(BUILD_SECONDS / 2)
    finished = await vendor.export(**VIEWERS)
    assert finished["state"] == "finished"
    assert set(finished) == {"state", "data", "creation_date"}
    assert finished["creation_date"] == polled["creation_date"]
    assert len(finished["data"]) == 24


async def test_parameter_order_does_not_change_the_export(vendor: Vendor) -> None:
    query = "&".join(f"{k}={v}" for k, v in VIEWERS.items())
    reordered = "&".join(f"{k}={v}" for k, v in reversed(VIEWERS.items()))
    assert (await vendor.get(f"/api/v1/data/?{query}")).json()["state"] == "started"
    assert (await vendor.get(f"/api/v1/data/?{reordered}")).json()["state"] == "in_progress"
    assert (await vendor.stats())["exports_started"] == 1


async def test_finished_export_is_served_from_cache_for_24_hours(vendor: Vendor) -> None:
    rows = await vendor.rows(**VIEWERS)
    first = await vendor.export(**VIEWERS)
    vendor.clock.advance(23 * 3600)
    cached = await vendor.export(**VIEWERS)
    assert cached == first
    assert cached["data"] == rows
    vendor.clock.advance(2 * 3600)
    assert await vendor.export(**VIEWERS) == {"state": "started"}
    assert (await vendor.stats())["exports_started"] == 2


async def test_force_rebuild_starts_a_new_build(vendor: Vendor) -> None:
    await vendor.rows(**VIEWERS)
    vendor.clock.advance(60)
    assert await vendor.export(**VIEWERS, force_rebuild="1") == {"state": "started"}
    polled = await vendor.export(**VIEWERS)
    assert polled["state"] == "in_progress"
    stats = await vendor.stats()
    assert (stats["exports_started"], stats["exports_rebuilt"]) == (2, 1)


async def test_force_rebuild_false_still_rebuilds(vendor: Vendor) -> None:
    await vendor.rows(**VIEWERS)
    assert await vendor.export(**VIEWERS, force_rebuild="false") == {"state": "started"}
    assert (await vendor.export(**VIEWERS))["state"] == "in_progress"


async def test_status_only_answers_finished_without_data(vendor: Vendor) -> None:
    await vendor.rows(**VIEWERS)
    answer = await vendor.export(**VIEWERS, status_only="false")
    assert set(answer) == {"state", "creation_date"}
    assert answer["state"] == "finished"


async def test_late_uploads_change_rebuilt_values_but_not_cached_ones(vendor: Vendor) -> None:
    before = await vendor.rows(**VIEWERS)
    assert (await vendor.post("/_sim/late-uploads")).json() == {"data_version": 1}
    assert (await vendor.export(**VIEWERS))["data"] == before  # the cached export
    assert (await vendor.export(**VIEWERS, force_rebuild="1"))["state"] == "started"
    vendor.clock.advance(BUILD_SECONDS)
    after = (await vendor.export(**VIEWERS))["data"]

    def keys(rows: list[dict[str, object]]) -> list[tuple[object, object]]:
        return [(r["location_id"], r["period_start"]) for r in rows]

    assert keys(after) == keys(before)
    assert after != before


async def test_failed_builds_are_deterministic_and_a_rebuild_can_succeed(start: Start) -> None:
    vendor = await start(fail_share=0.5, build_seconds=0)
    outcomes: dict[str, list[str]] = {}
    for day in range(1, 9):
        params = VIEWERS | {
            "start": f"2024-03-{day:02d}T00:00:00",
            "end": f"2024-03-{day:02d}T01:00:00",
        }
        states = [
            (await vendor.export(**params))["state"],
            (await vendor.export(**params))["state"],
        ]
        for _ in range(6):
            if states[-1] == "finished":
                break
            failed = await vendor.export(**params)
            assert failed["state"] == "failed" and failed["fail_reason"]
            assert {"state", "fail_reason", "creation_date"} == set(failed)
            await vendor.export(**params, force_rebuild="1")
            states.append((await vendor.export(**params))["state"])
        outcomes[params["start"]] = states
    assert any("failed" in s for s in outcomes.values())
    assert all(s[-1] == "finished" for s in outcomes.values())
    again = await start(fail_share=0.5, build_seconds=0)
    params = VIEWERS | {"start": "2024-03-01T00:00:00", "end": "2024-03-01T01:00:00"}
    await again.export(**params)
    assert (await again.export(**params))["state"] == outcomes[params["start"]][1]


async def test_export_over_the_row_limit_fails_with_a_reason(start: Start) -> None:
    vendor = await start(max_finest_rows=100, build_seconds=0)
    params = VIEWERS | {"time_resolution": "finest"}
    await vendor.export(**params)
    failed = await vendor.export(**params)
    assert failed["state"] == "failed"
    assert "too large" in failed["fail_reason"]


async def test_reset_forgets_exports_and_counters(vendor: Vendor) -> None:
    await vendor.rows(**VIEWERS)
    assert (await vendor.post("/_sim/reset")).status == 200
    stats = await vendor.stats()
    assert (stats["calls"], stats["exports_started"]) == (0, 0)
    assert await vendor.export(**VIEWERS) == {"state": "started"}
