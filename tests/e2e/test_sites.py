"""Exports that name whole sites (`sites=ID`) end to end: a backfill that fills sites goes
out with their ids and lands each location's own rows; a site only partly wanted is listed
by its locations; a location moved between sites while the export is built is fetched
again on its own, and the rows of one moved in are left out, counted."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.e2e.vidicenter_support import (
    Simulator,
    assert_no_violations,
    assert_table_holds,
    backfill_args,
    ingest_env,
    run_ingest,
    simulator,
    vendor_rows,
)

pytestmark = pytest.mark.slow

FIRST = date(2024, 3, 1)
DAYS = 3
# sites 501 to 506 of ten locations each, 1001 to 1060; 1061 is inactive, in site 506
KNOBS: dict[str, Any] = {
    "build_seconds": 0.05,
    "location_count": 60,
    "site_count": 6,
    "inactive_location_count": 1,
}
# the shortest request line allowed: 60 ids listed would take three exports
SHORT_LINE = 256


def _ids(first: int, last: int) -> tuple[str, ...]:
    return tuple(str(i) for i in range(first, last + 1))


def _served(sim: Simulator, locations: tuple[str, ...]) -> list[Any]:
    """What the vendor serves for these locations over the test's days of hourly viewers."""
    query = {
        "data_type": "viewers",
        "time_resolution": "1h",
        "start": f"{FIRST.isoformat()}T00:00:00",
        "end": f"{(FIRST + timedelta(days=DAYS)).isoformat()}T00:00:00",
        "locations": ",".join(locations),
    }
    return [r | {"time_resolution": "1h"} for r in vendor_rows(sim, query)]


def _events(stderr: str, name: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in stderr.splitlines() if x.startswith("{") and name in x]


async def _rows_per_location(pool: asyncpg.Pool) -> Counter[int]:
    rows = await pool.fetch(
        "SELECT scope, rows_loaded FROM ingest.jobs WHERE status = 'done' ORDER BY id"
    )
    counts: Counter[int] = Counter()
    for r in rows:
        counts[int(r["scope"].split(":")[1])] += r["rows_loaded"]
    return counts


async def test_a_backfill_of_whole_sites_names_them_and_lands_each_locations_rows(
    db_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    locations = _ids(1001, 1060)
    last = FIRST + timedelta(days=DAYS - 1)
    async with simulator(**KNOBS) as sim:
        env = ingest_env(db_url, sim, vidicenter_max_request_line=SHORT_LINE)
        args = backfill_args("viewers", FIRST, last, resolution="1h", locations=locations)
        ran = await run_ingest(env, *args, cwd=tmp_path, limit_s=120)
        assert ran.code == 0, ran.explain()
        assert ran.out.startswith("180 done, 0 dead"), ran.out
        # one export, its six sites named: 60 ids listed would not fit the line
        (start,) = sim.starts()
        assert start.query["sites"] == "501,502,503,504,505,506", start.query
        assert "locations" not in start.query
        assert_no_violations(sim)
        expected = _served(sim, locations)

        # the plan of the same backfill reads the listing the run stored
        plan = await run_ingest(env, *args, "--plan", "--force", cwd=tmp_path)
        assert plan.code == 0, plan.explain()
        assert "1 export(s)" in plan.out and "(6 site(s) named for 60 location(s))" in plan.out

    await assert_table_holds(pool, "viewers", expected)
    assert await _rows_per_location(pool) == {int(i): 24 * DAYS for i in locations}
    # sites=506 brought the rows of the inactive 1061 too: left out, and said so
    (stray,) = _events(ran.err, "export.rows_not_claimed")
    assert (stray["locations"], stray["rows"]) == ([1061], 24 * DAYS), stray
    assert (
        await pool.fetchval("SELECT count(*) FROM vidicenter.viewers WHERE location_id = 1061") == 0
    )


async def test_a_site_only_partly_wanted_is_listed_by_its_locations(
    db_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    locations = _ids(1001, 1055)  # site 506 holds 1051 to 1060
    last = FIRST + timedelta(days=DAYS - 1)
    async with simulator(**KNOBS) as sim:
        env = ingest_env(db_url, sim, vidicenter_max_request_line=SHORT_LINE)
        args = backfill_args("viewers", FIRST, last, resolution="1h", locations=locations)
        ran = await run_ingest(env, *args, cwd=tmp_path, limit_s=120)
        assert ran.code == 0, ran.explain()
        (start,) = sim.starts()
        assert start.query["sites"] == "501,502,503,504,505"
        assert start.query["locations"] == ",".join(_ids(1051, 1055))
        assert_no_violations(sim)
        expected = _served(sim, locations)
    await assert_table_holds(pool, "viewers", expected)
    assert await _rows_per_location(pool) == {int(i): 24 * DAYS for i in locations}
    assert _events(ran.err, "export.rows_not_claimed") == []


async def test_a_location_moved_out_of_a_named_site_during_the_build_is_fetched_on_its_own(
    db_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    locations = _ids(1001, 1020)  # sites 501 and 502, whole; site 503 is not wanted
    last = FIRST + timedelta(days=DAYS - 1)
    async with simulator(**KNOBS | {"location_count": 30, "site_count": 3}) as sim:

        def move(query: Mapping[str, str]) -> None:
            # as the export of sites 501 and 502 reaches the vendor, 1005 goes to site 503
            # and 1025 comes to site 501
            if "sites" in query and not sim.state.config.site_moves:
                sim.state.configure(site_moves="1005:503,1025:501")

        sim.before_export = move
        env = ingest_env(db_url, sim, vidicenter_max_request_line=SHORT_LINE)
        args = backfill_args("viewers", FIRST, last, resolution="1h", locations=locations)
        ran = await run_ingest(env, *args, cwd=tmp_path, limit_s=120)
        assert ran.code == 0, ran.explain()
        assert ran.out.startswith("60 done, 0 dead"), ran.out
        first, again = sim.starts()
        assert (first.query["sites"], "locations" in first.query) == ("501,502", False)
        assert (again.query["locations"], "sites" in again.query) == ("1005", False)
        assert_no_violations(sim)
        expected = _served(sim, locations)

    await assert_table_holds(pool, "viewers", expected)
    assert await _rows_per_location(pool) == {int(i): 24 * DAYS for i in locations}
    (moved,) = _events(ran.err, "export.site_changed")
    assert moved["locations"] == [1005]
    (stray,) = _events(ran.err, "export.rows_not_claimed")
    assert (stray["locations"], stray["rows"]) == ([1025], 24 * DAYS), stray
