"""Rows have exactly the keys of each example of the data export page, and the data's properties.

The key sets are copied from the examples of vidicenter-data-export.rst (not read at test
time), one per data type and resolution.
"""

from __future__ import annotations

import re

import pytest

from tests.simulator.simclient import Start, Vendor

FINEST_VIEWERS = {
    "happy",
    "dwell_time_in_tenths_of_sec",
    "gender",
    "age",
    "age_value",
    "neutral",
    "unhappy",
    "very_unhappy",
    "attention_time_in_tenths_of_sec",
    "period_start",
    "glasses",
    "location_id",
    "very_happy",
    "mustache",
    "beard",
}
VIEWERS_APC = {
    "beard",
    "dwell_time_in_tenths_of_sec",
    "start_time",
    "gender",
    "age",
    "age_value",
    "neutral",
    "mustache",
    "unhappy",
    "attention_time_in_tenths_of_sec",
    "location_id",
    "glasses",
    "very_unhappy",
    "very_happy",
    "contents",
    "happy",
}
APC_CONTENT = {
    "campaign_id",
    "dwell_time_in_milliseconds",
    "unhappy_time",
    "happy_time",
    "very_happy_time",
    "app_id",
    "very_unhappy_time",
    "attention_time_in_milliseconds",
    "content_id",
    "neutral_time",
}
AGGREGATED_VIEWERS = {
    "dwell_time_in_tenths_of_sec",
    "conversion_ratio",
    "watcher_count",
    "attention_time_in_tenths_of_sec",
    "period_start",
    "location_id",
}
DEMOGRAPHICS = {
    "dwell_time_in_tenths_of_sec",
    "gender",
    "age",
    "watcher_count",
    "attention_time_in_tenths_of_sec",
    "period_start",
    "location_id",
}
OTS = {"duration", "watcher_count", "period_start", "location_id", "ots_count"}
GATE = {"in_count", "gate_id", "out_count", "duration", "period_start", "location_id"}
POP_COMMON = {
    "content_duration",
    "content_id",
    "duration",
    "impressions",
    "period_start",
    "play_count",
    "impressions_per_play",
    "watchers",
    "watchers_2sec",
    "total_dwell_time_in_tenths_of_sec",
    "total_attention_time_in_tenths_of_sec",
}
POP_BY_LOCATION = POP_COMMON | {"location_id"}
POP_BY_SITE = POP_COMMON | {"site_id"}
EXTRAPOLATED_WATCHERS = {
    "dwell_time_in_tenths_of_sec",
    "watcher_count",
    "attention_time_in_tenths_of_sec",
    "period_start",
}
EXTRAPOLATED_OTS = {"duration", "watcher_count", "period_start", "ots_count"}
FINEST_VEHICLES = {
    "vehicle_presence_time",
    "period_start",
    "type",
    "location_id",
    "color",
    "vehicle_impressions",
    "impressions_per_vehicle",
}
AGGREGATED_VEHICLES = {
    "vehicle_presence_time",
    "vehicle_count",
    "period_start",
    "location_id",
    "vehicle_impressions",
    "impressions_per_vehicle",
}
FINEST_FOOTFALL = {"footfall_presence_time", "period_start", "location_id"}
AGGREGATED_FOOTFALL = {
    "footfall_presence_time",
    "footfall_impressions",
    "period_start",
    "location_id",
}
FINEST_VEHICLES_FOOTFALL = {
    "type",
    "color",
    "location_id",
    "period_start",
    "vehicle_presence_time",
    "vehicle_impressions",
    "impressions_per_vehicle",
    "footfall_presence_time",
}
AGGREGATED_VEHICLES_FOOTFALL = {
    "location_id",
    "vehicle_impressions",
    "impressions_per_vehicle",
    "period_start",
    "vehicle_count",
    "vehicle_presence_time",
    "footfall_impressions",
    "footfall_presence_time",
}
IM = {
    "location_id",
    "vehicle_impressions",
    "impressions_per_vehicle",
    "footfall_impressions",
    "footfall_total_dwell_time",
    "im",
    "im_footfall",
    "im_vehicle",
    "analysis_window",
    "backup_value",
    "period_start",
    "vehicle_count",
    "vehicle_total_presence_time",
}

NIGHT = {"start": "2018-01-29T00:00:00", "end": "2018-01-29T02:00:00"}
EARLY = {"start": "2018-01-29T02:00:00", "end": "2018-01-29T04:59:59"}


def q(data_type: str, resolution: str, span: dict[str, str], **more: str) -> dict[str, str]:
    return {"data_type": data_type, "time_resolution": resolution, **span, **more}


EXAMPLES = [
    ("finest viewers", q("viewers", "finest", NIGHT, locations="1001"), FINEST_VIEWERS),
    ("finest viewers, PRO", q("viewers", "finest", NIGHT, locations="1003"), FINEST_VIEWERS),
    (
        "viewers apc",
        q("viewers_apc", "finest", {"start": "2018-01-14T00:00:00", "end": "2018-01-14T10:00:00"}),
        VIEWERS_APC,
    ),
    ("aggregated viewers", q("viewers", "1h", EARLY, locations="1001"), AGGREGATED_VIEWERS),
    (
        "group by demographics",
        q("viewers", "1h", EARLY, locations="1001", group_by_demographics="1"),
        DEMOGRAPHICS,
    ),
    ("ots", q("ots", "1h", EARLY, locations="1001"), OTS),
    ("gate", q("gate", "1h", EARLY, locations="1001"), GATE),
    (
        "proof of play by location",
        q("proof_of_play_by_location", "1h", EARLY, locations="1001"),
        POP_BY_LOCATION,
    ),
    ("proof of play by site", q("proof_of_play_by_site", "1h", EARLY, sites="501"), POP_BY_SITE),
    (
        "extrapolated watchers",
        q("extrapolated_watchers", "1h", EARLY, locations="1001", extrapolation_amount="12"),
        EXTRAPOLATED_WATCHERS,
    ),
    (
        "extrapolated ots",
        q("extrapolated_ots", "1h", EARLY, locations="1001", extrapolation_amount="12"),
        EXTRAPOLATED_OTS,
    ),
    ("finest vehicles", q("vehicles", "finest", NIGHT, locations="1001"), FINEST_VEHICLES),
    ("aggregated vehicles", q("vehicles", "1h", EARLY, locations="1001"), AGGREGATED_VEHICLES),
    (
        "finest footfall as persons",
        q("persons", "finest", NIGHT, locations="1001"),
        FINEST_FOOTFALL,
    ),
    ("finest footfall", q("footfall", "finest", NIGHT, locations="1001"), FINEST_FOOTFALL),
    (
        "aggregated footfall as persons",
        q("persons", "1h", EARLY, locations="1001"),
        AGGREGATED_FOOTFALL,
    ),
    ("aggregated footfall", q("footfall", "1h", EARLY, locations="1001"), AGGREGATED_FOOTFALL),
    (
        "finest vehicles_persons",
        q("vehicles_persons", "finest", NIGHT, locations="1001"),
        FINEST_VEHICLES_FOOTFALL,
    ),
    (
        "finest vehicles_footfall",
        q("vehicles_footfall", "finest", NIGHT, locations="1001"),
        FINEST_VEHICLES_FOOTFALL,
    ),
    (
        "aggregated vehicles_persons",
        q("vehicles_persons", "30m", EARLY, locations="1001"),
        AGGREGATED_VEHICLES_FOOTFALL,
    ),
    (
        "aggregated vehicles_footfall",
        q("vehicles_footfall", "30m", EARLY, locations="1001"),
        AGGREGATED_VEHICLES_FOOTFALL,
    ),
    ("im", q("im", "1h", EARLY, locations="1001"), IM),
]


@pytest.mark.parametrize(
    ("params", "keys"), [pytest.param(p, k, id=name) for name, p, k in EXAMPLES]
)
async def test_rows_have_exactly_the_documented_keys(
    vendor: Vendor, params: dict[str, str], keys: set[str]
) -> None:
    params = (
        params if "sites" in params or "locations" in params else params | {"locations": "1001"}
    )
    rows = await vendor.rows(params)
    assert rows
    for row in rows:
        assert set(row) == keys


async def test_viewers_apc_contents_have_the_documented_keys(vendor: Vendor) -> None:
    rows = await vendor.rows(q("viewers_apc", "finest", NIGHT, locations="1001"))
    contents = [c for row in rows for c in row["contents"]]
    assert contents
    assert all(set(c) == APC_CONTENT for c in contents)


async def test_both_timestamp_formats_are_as_documented(vendor: Vendor) -> None:
    finest = await vendor.rows(q("viewers", "finest", NIGHT, locations="1001"))
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", r["period_start"]) for r in finest)
    apc = await vendor.rows(q("viewers_apc", "finest", NIGHT, locations="1001"))
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", r["start_time"]) for r in apc)
    aggregated = await vendor.rows(q("ots", "15m", EARLY, locations="1001"))
    assert all(
        re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", r["period_start"]) for r in aggregated
    )
    assert aggregated[0]["period_start"] == "2018-01-29 02:00:00"
    assert aggregated[1]["period_start"] == "2018-01-29 02:15:00"


async def test_finest_rows_stay_within_the_range_at_the_configured_density(start: Start) -> None:
    vendor = await start(finest_rows_per_hour=50)
    span = {"start": "2018-01-29T00:00:00", "end": "2018-01-29T03:00:00"}
    rows = await vendor.rows(q("viewers", "finest", span, locations="1001,1002"))
    assert len(rows) == 2 * 3 * 50
    assert all("2018-01-29T00:00:00" <= r["period_start"] < "2018-01-29T03:00:00" for r in rows)


async def test_placeholder_rows_have_null_metrics(vendor: Vendor) -> None:
    span = {"start": "2018-01-29T00:00:00", "end": "2018-01-31T00:00:00"}
    rows = await vendor.rows(q("ots", "1h", span, locations="1001,1002,1003,1004,1005,1006,1007"))
    assert len(rows) == 7 * 48
    placeholders = [r for r in rows if r["ots_count"] is None]
    assert all(r["duration"] is None and r["watcher_count"] is None for r in placeholders)
    active = [r for r in rows if r["location_id"] != 1007]
    assert 0.03 < sum(r["ots_count"] is None for r in active) / len(active) < 0.2
    assert all(r["ots_count"] is None for r in rows if r["location_id"] == 1007)


async def test_same_seed_gives_same_rows_in_another_simulator(vendor: Vendor, start: Start) -> None:
    other = await start()
    different = await start(seed=7)
    for params in (
        q("viewers", "finest", NIGHT, locations="1001,1002"),
        q("ots", "1h", EARLY, sites="501"),
    ):
        rows = await vendor.rows(params)
        assert await other.rows(params) == rows
        assert await different.rows(params) != rows


async def test_extra_keys_switch_adds_unknown_keys(start: Start) -> None:
    vendor = await start(extra_keys=True)
    ots = await vendor.rows(q("ots", "1h", EARLY, locations="1001"))
    assert all(set(r) == OTS | {"new_metric", "status"} for r in ots)
    assert {r["status"] for r in ots} == {"active"}
    finest = await vendor.rows(q("viewers", "finest", NIGHT, locations="1001"))
    assert all(r["new_metric"] == 1 for r in finest)


async def test_bad_enums_switch_delivers_out_of_range_values(start: Start) -> None:
    vendor = await start(bad_enums=True, finest_rows_per_hour=200)
    viewers = await vendor.rows(q("viewers", "finest", NIGHT, locations="1001"))
    assert {7} <= {r["gender"] for r in viewers}
    vehicles = await vendor.rows(q("vehicles", "finest", NIGHT, locations="1001"))
    assert 12356 in {r["color"] for r in vehicles}
