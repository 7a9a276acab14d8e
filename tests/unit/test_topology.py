from datetime import datetime
from typing import Any

import pytest

from ingest.domain import Scope
from ingest.errors import UsageError
from ingest.topology import (
    ScheduledTopology,
    UploadWatch,
    check_named,
    fleet_from,
    parse_upload,
)


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


# --- the fleet: scopes checked, locations covered, last uploads shared ------------------

LISTED = [
    {"id": 1, "site_id": 10, "active": True, "last_upload_timestamp": "2026-11-25 09:00:00"},
    {"id": 2, "site_id": 10, "active": True, "last_upload_timestamp": "2026-11-25T10:00:00+02:00"},
    {"id": 3, "site_id": 11, "active": False, "last_upload_timestamp": "2019-06-01 00:00:00"},
    {"id": 4, "site_id": 11, "active": True, "last_upload_timestamp": None},
]


def test_last_uploads_are_read_as_delivered_and_an_offset_is_taken_in_utc() -> None:
    fleet = fleet_from(LISTED)
    assert fleet.last_uploads(["1", "2", "4", "99"]) == [
        datetime(2026, 11, 25, 9, 0),
        datetime(2026, 11, 25, 8, 0),
        None,  # never uploaded
        None,  # not a location of the account
    ]
    assert parse_upload("not a time") is None


def test_a_location_west_of_utc_counts_its_uploads_that_much_earlier() -> None:
    fleet = fleet_from(
        [
            {"id": 1, "last_timezone": -18000, "last_upload_timestamp": "2026-11-25 09:00:00"},
            {"id": 2, "last_timezone": 32400, "last_upload_timestamp": "2026-11-25 09:00:00"},
        ]
    )
    # UTC-5: its day may end 5 h after the UTC one; east of UTC: no earlier than UTC's
    assert fleet.last_uploads(["1", "2"]) == [datetime(2026, 11, 25, 4), datetime(2026, 11, 25, 9)]


def test_a_job_covers_its_location_its_sites_locations_or_the_requests() -> None:
    fleet = fleet_from(LISTED)
    assert fleet.covered(Scope.location(2)) == ["2"]
    assert fleet.covered(Scope.site(11)) == ["3", "4"]
    assert fleet.covered(Scope.request({"locations": ["1"], "sites": ["11"]})) == ["1", "3", "4"]
    everyone = fleet.covered(Scope.request({"location_tags": ["5"]}))
    assert sorted(everyone) == ["1", "2", "3", "4"]  # a tag's members are not listed here


def test_a_location_or_site_the_account_lacks_is_a_usage_error_naming_it() -> None:
    fleet = fleet_from(LISTED)
    check_named(fleet, ["1", "3"], ["10"], account="h/u", option="--locations")
    with pytest.raises(UsageError, match=r"^--locations: no such location 7, 9 in VidiCenter"):
        check_named(fleet, ["9", "1", "7"], [], account="h/u", option="--locations")
    with pytest.raises(UsageError, match=r"^--sites: no such site 12 in VidiCenter account h/u$"):
        check_named(fleet, [], ["12"], account="h/u", option="--locations")


class Shared:
    """The database's copy of the listed locations, as other processes left it."""

    def __init__(self, locations: list[dict[str, Any]] | None = None) -> None:
        self.locations = locations
        self.saved = 0

    async def load(self, account: str, max_age_s: float) -> list[dict[str, Any]] | None:
        return self.locations

    async def save(self, account: str, locations: Any) -> None:
        self.locations = list(locations)
        self.saved += 1


async def test_the_upload_watch_reuses_a_shared_listing_and_asks_the_vendor_when_told() -> None:
    vendor = Locations(1, 2)
    clock = Clock()
    shared = Shared([{"id": 7, "site_id": 70, "active": True}])
    watch = UploadWatch(
        vendor, account="h/u", max_age_s=300, silence_s=3600, store=shared, clock=clock
    )

    assert (await watch.fleet()).locations == ["7"] and vendor.calls == 0
    clock.now = 299
    assert (await watch.fleet()).locations == ["7"]  # held in memory: not even the store
    fresh = await watch.fleet(fresh=True)
    assert fresh.locations == ["1", "2"] and vendor.calls == 1 and shared.saved == 1
