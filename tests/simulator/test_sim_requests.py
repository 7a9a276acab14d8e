"""What the data endpoint accepts and refuses, the export sources, and the topology endpoints."""

from __future__ import annotations

import pytest

from tests.simulator.simclient import Start, Vendor

BASE = {
    "locations": "1001",
    "data_type": "viewers",
    "start": "2024-03-04T10:00:00",
    "end": "2024-03-04T13:00:00",
    "time_resolution": "1h",
}
AGGREGATED = ("5m", "10m", "15m", "30m", "1h", "1d", "7d", "30d", "1M")


def without(key: str) -> dict[str, str]:
    return {k: v for k, v in BASE.items() if k != key}


@pytest.mark.parametrize(
    "params",
    [
        pytest.param(BASE | {"data_type": "ots", "time_resolution": "finest"}, id="finest-ots"),
        pytest.param(BASE | {"data_type": "gate", "time_resolution": "finest"}, id="finest-gate"),
        pytest.param(
            BASE | {"data_type": "proof_of_play_by_location", "time_resolution": "finest"},
            id="finest-pop-location",
        ),
        pytest.param(
            BASE | {"data_type": "proof_of_play_by_site", "time_resolution": "finest"},
            id="finest-pop-site",
        ),
        pytest.param(
            BASE
            | {
                "data_type": "extrapolated_ots",
                "time_resolution": "finest",
                "extrapolation_amount": "",
            },
            id="finest-extrapolated",
        ),
        pytest.param(BASE | {"data_type": "im", "time_resolution": "finest"}, id="finest-im"),
        pytest.param(BASE | {"data_type": "im", "time_resolution": "1d"}, id="im-1d"),
        pytest.param(BASE | {"data_type": "viewers_apc", "time_resolution": "1h"}, id="apc-1h"),
        pytest.param(BASE | {"data_type": "audience"}, id="unknown-data-type"),
        pytest.param(BASE | {"time_resolution": "2h"}, id="unknown-resolution"),
        pytest.param(without("data_type"), id="missing-data-type"),
        pytest.param(without("time_resolution"), id="missing-resolution"),
        pytest.param(without("start"), id="missing-start"),
        pytest.param(without("end"), id="missing-end"),
        pytest.param(without("locations"), id="missing-source"),
        pytest.param(BASE | {"start": "2024-03-04 00:00:00"}, id="date-with-space"),
        pytest.param(BASE | {"start": "2024-03-04"}, id="date-without-time"),
        pytest.param(BASE | {"end": "2024-03-04T03:00:00+00:00"}, id="date-with-offset"),
        pytest.param(BASE | {"end": "2024-03-03T00:00:00"}, id="end-before-start"),
        pytest.param(BASE | {"locations": "9999"}, id="unknown-location"),
        pytest.param(BASE | {"locations": "abc"}, id="bad-location-id"),
        pytest.param(BASE | {"data_type": "extrapolated_watchers"}, id="missing-extrapolation"),
        pytest.param(
            BASE | {"data_type": "extrapolated_ots", "extrapolation_amount": "x"},
            id="bad-extrapolation",
        ),
    ],
)
async def test_bad_request_gets_400_with_message(vendor: Vendor, params: dict[str, str]) -> None:
    answer = await vendor.get("/api/v1/data/", params)
    assert answer.status == 400
    body = answer.json()
    assert set(body) == {"message", "error"}
    assert body["error"] == 400
    assert body["message"]
    assert (await vendor.stats())["exports_started"] == 0


async def test_every_documented_combination_is_accepted(start: Start) -> None:
    vendor = await start(build_seconds=0)
    combos = [(t, "finest") for t in ("viewers", "viewers_apc", "vehicles", "footfall")]
    combos += [(t, "finest") for t in ("vehicles_footfall", "persons", "vehicles_persons")]
    combos += [("im", "1h")]
    for data_type in ("viewers", "ots", "gate", "proof_of_play_by_location", "vehicles"):
        combos += [(data_type, res) for res in AGGREGATED]
    for data_type in ("footfall", "vehicles_footfall", "extrapolated_watchers"):
        combos += [(data_type, res) for res in AGGREGATED]
    combos += [("proof_of_play_by_site", res) for res in AGGREGATED]
    combos += [("extrapolated_ots", res) for res in AGGREGATED]
    for data_type, resolution in combos:
        params = BASE | {"data_type": data_type, "time_resolution": resolution}
        params |= {"extrapolation_amount": ""} if data_type.startswith("extrapolated") else {}
        answer = await vendor.get("/api/v1/data/", params)
        assert answer.status == 200, (data_type, resolution, answer.text)


async def test_sources_resolve_to_their_locations(vendor: Vendor) -> None:
    day = {k: v for k, v in BASE.items() if k != "locations"} | {"end": "2024-03-04T11:00:00"}

    async def located(**source: str) -> set[int]:
        return {row["location_id"] for row in await vendor.rows(day, **source)}

    assert await located(locations="1001,1004") == {1001, 1004}
    assert await located(sites="501") == {1001, 1002, 1003}
    assert await located(location_tags="302") == {1002, 1004, 1006}
    assert await located(site_tags="402") == set(range(1001, 1008))
    assert await located(sites="501", locations="1006") == {1001, 1002, 1003, 1006}


async def test_a_sites_export_of_a_per_location_type_is_its_locations_rows_inactive_included(
    vendor: Vendor,
) -> None:
    # the docs give location_id on every row of a per-location type; sites= stands for every
    # location the site holds, the inactive 1007 too (its periods are placeholders)
    day = without("locations")
    by_site = await vendor.rows(day, sites="502")
    by_id = await vendor.rows(day, locations="1004,1005,1006,1007")
    assert by_site == by_id
    assert {row["location_id"] for row in by_site} == {1004, 1005, 1006, 1007}
    inactive = [row for row in by_site if row["location_id"] == 1007]
    assert inactive and all(row["watcher_count"] is None for row in inactive)


async def test_a_moved_location_follows_its_new_site_in_listings_and_exports(
    start: Start,
) -> None:
    vendor = await start(site_moves="1002:502")
    listed = {loc["id"]: loc["site_id"] for loc in (await vendor.get("/api/v1/locations/")).json()}
    assert (listed[1001], listed[1002], listed[1004]) == (501, 502, 502)
    day = without("locations")
    assert {r["location_id"] for r in await vendor.rows(day, sites="501")} == {1001, 1003}
    # moved back at run time: an export started from then on follows
    assert (await vendor.post("/_sim/config", {"site_moves": ""})).status == 200
    later = day | {"end": "2024-03-04T12:00:00"}
    assert {r["location_id"] for r in await vendor.rows(later, sites="501")} == {1001, 1002, 1003}


async def test_proof_of_play_by_site_rows_carry_site_id(vendor: Vendor) -> None:
    rows = await vendor.rows(
        without("locations"), sites="501,502", data_type="proof_of_play_by_site"
    )
    assert {row["site_id"] for row in rows} == {501, 502}
    assert all("location_id" not in row for row in rows)


async def test_extrapolated_rows_cover_the_scope_once_per_period(vendor: Vendor) -> None:
    params = BASE | {"data_type": "extrapolated_watchers", "locations": "1001,1002,1003"}
    average = await vendor.rows(params, extrapolation_amount="")
    scaled = await vendor.rows(params, extrapolation_amount="100")
    assert [row["period_start"] for row in average] == [
        "2024-03-04 10:00:00",
        "2024-03-04 11:00:00",
        "2024-03-04 12:00:00",
    ]
    assert all("location_id" not in row for row in average + scaled)
    assert sum(r["watcher_count"] or 0 for r in scaled) > sum(
        r["watcher_count"] or 0 for r in average
    )


async def test_content_ids_filter_proof_of_play_and_apc(vendor: Vendor) -> None:
    pop = await vendor.rows(BASE, data_type="proof_of_play_by_location", content_ids="content-b")
    assert pop and {row["content_id"] for row in pop} == {"content-b"}
    params = BASE | {"data_type": "viewers_apc", "time_resolution": "finest"}
    apc = await vendor.rows(params, content_ids="content-b,content-c")
    contents = {c["content_id"] for row in apc for c in row["contents"]}
    assert apc and contents <= {"content-b", "content-c"}


async def test_group_by_demographics_gives_every_gender_and_age_per_period(vendor: Vendor) -> None:
    rows = await vendor.rows(BASE, group_by_demographics="1")
    assert len(rows) == 3 * 15
    for period in {row["period_start"] for row in rows}:
        cells = {(r["gender"], r["age"]) for r in rows if r["period_start"] == period}
        assert cells == {(g, a) for g in range(3) for a in range(5)}


async def test_gate_rows_have_gate_ids_one_and_two(vendor: Vendor) -> None:
    rows = await vendor.rows(BASE, data_type="gate")
    assert {row["gate_id"] for row in rows} == {1, 2}
    assert len(rows) == 3 * 2


async def test_im_rows_have_backup_value_empty_or_yes(vendor: Vendor) -> None:
    params = BASE | {"data_type": "im", "locations": "1001,1002,1003,1004,1005,1006"}
    rows = await vendor.rows(params, start="2024-03-04T00:00:00", end="2024-03-05T00:00:00")
    assert {row["backup_value"] for row in rows} == {"", "yes", None}  # None: placeholders


async def test_locations_and_sites_report_active_and_timezone(vendor: Vendor) -> None:
    locations = (await vendor.get("/api/v1/locations/")).json()
    assert [loc["id"] for loc in locations] == list(range(1001, 1008))
    assert [loc["id"] for loc in locations if not loc["active"]] == [1007]
    assert {loc["last_timezone"] for loc in locations} == {3600, -18000}
    sites = (await vendor.get("/api/v1/sites/")).json()
    assert [(s["id"], s["active"], s["last_timezone"]) for s in sites] == [
        (501, True, 3600),
        (502, True, -18000),
    ]
    site = (await vendor.get("/api/v1/site/501/locations/")).json()
    assert [loc["id"] for loc in site] == [1001, 1002, 1003]
    assert (await vendor.get("/api/v1/site/999/locations/")).status == 404


async def test_tag_endpoints_list_their_members(vendor: Vendor) -> None:
    location_tags = (await vendor.get("/api/v1/location_tags/")).json()
    assert {t["id"]: t["locations"] for t in location_tags} == {
        301: [1001, 1003, 1005, 1007],
        302: [1002, 1004, 1006],
    }
    site_tags = (await vendor.get("/api/v1/site_tags")).json()  # no trailing slash: same
    assert {t["id"]: t["sites"] for t in site_tags} == {401: [501], 402: [501, 502]}


async def test_topology_follows_the_location_and_site_knobs(start: Start) -> None:
    vendor = await start(location_count=10, site_count=3, inactive_location_count=0)
    locations = (await vendor.get("/api/v1/locations/")).json()
    assert len(locations) == 10 and all(loc["active"] for loc in locations)
    assert {loc["site_id"] for loc in locations} == {501, 502, 503}


async def test_unknown_api_path_is_404(vendor: Vendor) -> None:
    answer = await vendor.get("/api/v1/nothing/")
    assert answer.status == 404
    assert answer.json()["error"] == 404
