from typing import Any

from ingest.topology import ScheduledTopology


class Locations:
    """What VidiCenter's /api/v1/locations/ answers, and how often it was asked."""

    def __init__(self, *ids: int) -> None:
        self.ids = list(ids)
        self.calls = 0

    async def list_locations(self) -> list[dict[str, Any]]:
        self.calls += 1
        return [{"id": i, "site_id": 500 + i % 2, "active": i != 99} for i in self.ids]


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_new_locations_are_scheduled_once_the_refresh_interval_has_passed() -> None:
    clock = Clock()
    topology = ScheduledTopology(None, needs_sites=False, refresh_s=600, clock=clock)
    vendor = Locations(1, 2, 99)

    await topology.refresh(vendor)
    assert topology.locations == ["1", "2"]  # 99 is inactive

    vendor.ids.append(3)
    clock.now = 599
    await topology.refresh(vendor)
    assert topology.locations == ["1", "2"] and vendor.calls == 1  # not due: no call

    clock.now = 600
    await topology.refresh(vendor)
    assert topology.locations == ["1", "2", "3"] and vendor.calls == 2


async def test_a_configured_list_is_not_discovered_but_its_sites_are_when_needed() -> None:
    vendor = Locations(1, 2, 3)

    plain = ScheduledTopology(["1", "2"], needs_sites=False, refresh_s=3600)
    await plain.refresh(vendor)
    assert plain.locations == ["1", "2"] and vendor.calls == 0

    per_site = ScheduledTopology(["1", "2"], needs_sites=True, refresh_s=3600)
    await per_site.refresh(vendor)
    assert per_site.locations == ["1", "2"] and per_site.sites == ["500", "501"]
