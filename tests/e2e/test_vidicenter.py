"""VidiCenter end to end: `ingest backfill` subprocesses, the simulator, real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import asyncpg
import pytest

from ingest.simulator.exports import FAIL_REASONS
from tests.e2e.vidicenter_support import (
    LOCATIONS,
    SITES,
    Simulator,
    assert_no_violations,
    assert_table_holds,
    backfill_args,
    day_query,
    finish,
    ingest_env,
    job_counts,
    plain_value,
    run_ingest,
    simulator,
    start_ingest,
    vendor_rows,
)

DAY = date(2024, 3, 5)
LAST = date(2024, 3, 7)  # three days from DAY
FILLED_AGGREGATED = {"time_resolution": "1h"}
FILLED_EXTRAPOLATED = {
    "time_resolution": "1h",
    "scope": "locations:1001,1002",
    "extrapolation_amount": "100",
}


# (CLI options, export query options, table, columns ingest fills in) for every data type
# and resolution of `ingest demo`: every VidiCenter table gets rows.
EVERY_TYPE: list[tuple[dict[str, Any], dict[str, str], str, dict[str, str]]] = [
    ({"data_type": "viewers", "resolution": "1h"}, {}, "viewers", FILLED_AGGREGATED),
    (
        {"data_type": "viewers", "resolution": "1h", "group_by_demographics": True},
        {"group_by_demographics": "1"},
        "viewers",
        FILLED_AGGREGATED,
    ),
    ({"data_type": "viewers", "resolution": "finest"}, {}, "viewers_finest", {}),
    ({"data_type": "viewers_apc"}, {}, "viewers_apc", {}),
    ({"data_type": "ots", "resolution": "1h"}, {}, "ots", FILLED_AGGREGATED),
    ({"data_type": "gate", "resolution": "1h"}, {}, "gate", FILLED_AGGREGATED),
    (
        {"data_type": "proof_of_play_by_location", "resolution": "1h"},
        {},
        "proof_of_play_by_location",
        FILLED_AGGREGATED,
    ),
    (
        {"data_type": "proof_of_play_by_site", "resolution": "1h", "locations": None},
        {"sites": ",".join(SITES)},
        "proof_of_play_by_site",
        FILLED_AGGREGATED,
    ),
    *(
        (
            {
                "data_type": name,
                "resolution": "1h",
                "locations": ("1001", "1002"),
                "extrapolation_amount": "100",
            },
            {"locations": "1001,1002", "extrapolation_amount": "100"},
            name,
            FILLED_EXTRAPOLATED,
        )
        for name in ("extrapolated_watchers", "extrapolated_ots")
    ),
    *(
        ({"data_type": name, "resolution": res}, {}, table, filled)
        for name in ("vehicles", "footfall", "vehicles_footfall")
        for res, table, filled in (
            ("1h", name, FILLED_AGGREGATED),
            ("finest", f"{name}_finest", {}),
        )
    ),
    ({"data_type": "im", "resolution": "1h"}, {}, "im", FILLED_AGGREGATED),
]


def _cli(options: dict[str, Any], first: date, last: date | None = None) -> list[str]:
    options = dict(options)
    data_type = options.pop("data_type")
    resolution = options.pop("resolution", None)
    locations = options.pop("locations", LOCATIONS)
    if data_type == "proof_of_play_by_site":
        options["sites"] = ",".join(SITES)
    return backfill_args(
        data_type, first, last, resolution=resolution, locations=locations, **options
    )


def _query(options: dict[str, Any], extra: dict[str, str], day: date) -> dict[str, str]:
    resolution = options.get("resolution", "finest")
    scope = {} if "sites" in extra or "locations" in extra else {"locations": ",".join(LOCATIONS)}
    return day_query(options["data_type"], resolution, day, **scope, **extra)


async def _vidicenter_tables(pool: asyncpg.Pool) -> dict[str, int]:
    names = await pool.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'vidicenter'"
    )
    return {
        r["table_name"]: await pool.fetchval(f'SELECT count(*) FROM vidicenter."{r["table_name"]}"')
        for r in names
    }


# --- 1. every data type ---------------------------------------------------------------


@pytest.mark.slow
async def test_every_data_type_lands_with_the_rows_and_values_the_vendor_served(
    db_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    # Builds end before the first poll: two calls an export, 34 for the 17 exports.
    # Unknown keys and out-of-range enumerations are switched on: both must be kept.
    async with simulator(build_seconds=0.05, extra_keys=True, bad_enums=True) as sim:
        env = ingest_env(db_url, sim)
        places = asyncio.Semaphore(3)  # each backfill has one export: never more than 3 out

        async def backfill(options: dict[str, Any]) -> tuple[dict[str, Any], Any]:
            async with places:
                return options, await run_ingest(env, *_cli(options, DAY), cwd=tmp_path)

        results = await asyncio.gather(*(backfill(o) for o, *_ in EVERY_TYPE))
        for options, ran in results:
            assert ran.code == 0, (options, ran.explain())

        expected: dict[str, list[dict[str, Any]]] = {}
        contents: list[dict[str, Any]] = []  # with their viewer's location and time
        for options, query_options, table, filled in EVERY_TYPE:
            for row in vendor_rows(sim, _query(options, query_options, DAY)):
                if table == "viewers_apc":  # the vendor's start_time is stored as period_start
                    row["period_start"] = row.pop("start_time")
                    contents += [
                        c | {"location_id": row["location_id"], "period_start": row["period_start"]}
                        for c in row["contents"]
                    ]
                expected.setdefault(table, []).append(row | filled)
        assert_no_violations(sim)
        assert sim.stats()["exports_started"] == len(EVERY_TYPE)

    # the request exercised what it should: placeholders, unknown keys, odd enumerations
    assert any(r["watcher_count"] is None for r in expected["viewers"])
    assert all("new_metric" in r for rows in expected.values() for r in rows)
    assert any(r["gender"] == 7 for r in expected["viewers_finest"])

    for table, rows in expected.items():
        await assert_table_holds(pool, table, rows, ignore=("contents",))
    stored = await _vidicenter_tables(pool)
    assert {t for t, n in stored.items() if n == 0} == set(), stored
    stored_contents = await pool.fetch(
        """
        SELECT v.location_id, v.period_start, c.*
        FROM vidicenter.viewers_apc_contents c
        JOIN vidicenter.viewers_apc v ON v.id = c.viewers_apc_id
        """
    )
    jobs = await pool.fetch(
        "SELECT status, data_type, time_resolution, rows_loaded FROM ingest.jobs"
    )
    # every content played before a viewer's eyes is kept, linked to its viewer
    keys = sorted({k for c in contents for k in c})
    assert Counter(tuple(r[k] for k in keys) for r in stored_contents) == Counter(
        tuple(plain_value(c[k]) for k in keys) for c in contents
    )
    # the jobs' row counts add up to what the tables hold
    assert {j["status"] for j in jobs} == {"done"}
    by_table: Counter[str] = Counter()
    for j in jobs:
        finest = j["time_resolution"] == "finest" and j["data_type"] != "viewers_apc"
        by_table[j["data_type"] + ("_finest" if finest else "")] += j["rows_loaded"]
    assert by_table == {t: n for t, n in stored.items() if t != "viewers_apc_contents"}


def _expected(sim: Simulator, data_type: str, resolution: str, days: list[date]) -> list[Any]:
    rows = []
    for day in days:
        query = day_query(data_type, resolution, day, locations=",".join(LOCATIONS))
        filled = {} if resolution == "finest" else {"time_resolution": resolution}
        rows += [r | filled for r in vendor_rows(sim, query)]
    return rows


def _days(first: date, last: date) -> list[date]:
    return [date.fromordinal(n) for n in range(first.toordinal(), last.toordinal() + 1)]


def _every_job(data_types: list[tuple[str, str]], days: list[date]) -> dict[Any, int]:
    """(data type, resolution, location, day) of every job, each once."""
    return {
        (name, res, location, day.isoformat()): 1
        for name, res in data_types
        for location in LOCATIONS
        for day in days
    }


async def _duplicate_keys(pool: asyncpg.Pool) -> int:
    return int(
        await pool.fetchval(
            """
            SELECT count(*) FROM (
                SELECT 1 FROM vidicenter.viewers
                GROUP BY location_id, time_resolution, period_start, gender, age
                HAVING count(*) > 1) d
            """
        )
    )


# --- 2. the vendor's limits -----------------------------------------------------------


@pytest.mark.slow
async def test_the_vendors_limits_hold_while_two_backfills_work_36_jobs(
    db_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    # Two processes, 6 claim loops, 6 exports of 2 locations and 3 days each, each export
    # building for 0.5 s: more exports want to run than the 3 the vendor allows, and with
    # half the answers slow, more calls want to be in flight than the 2 connections allowed.
    async with simulator(build_seconds=0.5, slow_share=0.5, slow_seconds=0.3) as sim:
        env = ingest_env(
            db_url,
            sim,
            vidicenter_locations_per_export=2,
            vidicenter_poll_initial_s=0.6,
            vidicenter_calls_per_minute=50,
        )
        types = [("viewers", "1h"), ("ots", "1h")]
        runs = await asyncio.gather(
            *(
                run_ingest(env, *backfill_args(name, DAY, LAST, resolution=res), cwd=tmp_path)
                for name, res in types
            )
        )
        for ran in runs:
            assert ran.code == 0, ran.explain()
            assert ran.out.startswith("18 done, 0 dead"), ran.out
        assert_no_violations(sim)
        stats = sim.stats()
        # the three days of two locations went out together, each job once
        assert stats["exports_started"] == 6, stats
        assert sim.exported_days() == _every_job(types, _days(DAY, LAST))
    assert await job_counts(pool) == {"pending": 0, "running": 0, "done": 36, "dead": 0}
    assert await pool.fetchval("SELECT count(*) FROM vidicenter.viewers") == 6 * 24 * 3
    assert await pool.fetchval("SELECT count(*) FROM vidicenter.ots") == 6 * 24 * 3


# --- 3. killed and run again ----------------------------------------------------------


async def _kill_moment(
    pool: asyncpg.Pool, procs: list[asyncio.subprocess.Process], sim: Simulator
) -> None:
    """Wait until a job is done while another's export is still building at the vendor, no
    call in flight.

    The vendor's side is read from the simulator, which runs on this event loop: between
    this check and the kill that follows it (with no await in between) it answers nobody,
    so the export still building cannot be loaded before the kill lands.
    """
    async with asyncio.timeout(30):
        while True:
            row = await pool.fetchrow(
                """
                SELECT count(*) FILTER (WHERE status = 'done') AS done,
                       count(*) FILTER (WHERE status = 'running'
                                        AND export_started_at IS NOT NULL) AS out,
                       (SELECT count(*) FROM ingest.vendor_calls
                        WHERE finished_at > clock_timestamp()) AS calling
                FROM ingest.jobs
                """
            )
            assert row is not None
            building = sim.state.exports.running(sim.state.now())
            if row["done"] and row["out"] and not row["calling"] and building:
                return
            assert any(p.returncode is None for p in procs), "both backfills ended before the kill"
            await asyncio.sleep(0.02)


@pytest.mark.slow
async def test_a_backfill_killed_mid_multi_day_export_then_run_again_ends_with_exact_rows(
    db_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    days = _days(DAY, LAST)
    types = [("viewers", "finest"), ("viewers", "1h")]
    # the raw export (5,184 rows) builds 2 s longer than the hourly one (432 rows): the
    # hourly one is loaded while the raw one is still building, and the kill lands then
    async with simulator(build_seconds=1.0, build_seconds_per_million_rows=400.0) as sim:
        env = ingest_env(db_url, sim, job_lease_s=5, vidicenter_poll_initial_s=0.4)
        commands = [backfill_args(n, DAY, LAST, resolution=r) for n, r in types]
        procs = [await start_ingest(env, *args, cwd=tmp_path) for args in commands]
        await _kill_moment(pool, procs, sim)
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
        codes = [(await finish(proc)).code for proc in procs]
        # killed, or over before the kill with every job done (the hourly one)
        assert -9 in codes and set(codes) <= {-9, 0}, codes
        out_at_kill = {
            r["export_query"]
            for r in await pool.fetch(
                "SELECT export_query FROM ingest.jobs WHERE status = 'running'"
                " AND export_started_at IS NOT NULL"
            )
        }
        calls_at_kill = len(sim.calls)
        assert (await job_counts(pool))["done"] < 36

        again = await asyncio.gather(*(run_ingest(env, *args, cwd=tmp_path) for args in commands))
        for ran in again:
            assert ran.code == 0, ran.explain()

        # the exports left running were resumed with the same query, never started again
        assert out_at_kill
        spans = {
            (dict(parse_qsl(q))["start"][:10], dict(parse_qsl(q))["end"][:10]) for q in out_at_kill
        }
        assert spans == {("2024-03-05", "2024-03-08")}  # each export spans the three days
        after = sim.calls[calls_at_kill:]
        for query in out_at_kill:
            identity = tuple(sorted(parse_qsl(query, keep_blank_values=True)))
            asked = [c for c in after if c.identity == identity]
            assert asked and all(c.state != "started" for c in asked), (query, asked)
        assert sim.exported_days() == _every_job(types, days)
        assert_no_violations(sim)
        finest = _expected(sim, "viewers", "finest", days)
        hourly = _expected(sim, "viewers", "1h", days)

    assert await job_counts(pool) == {"pending": 0, "running": 0, "done": 36, "dead": 0}
    await assert_table_holds(pool, "viewers_finest", finest)
    await assert_table_holds(pool, "viewers", hourly)
    assert await _duplicate_keys(pool) == 0
    per_slice = await pool.fetch(
        "SELECT count(*) AS n FROM vidicenter.viewers_finest"
        " GROUP BY location_id, period_start::date"
    )
    assert sorted(r["n"] for r in per_slice) == [24 * 12] * 18


@pytest.mark.slow
async def test_calls_of_a_killed_backfill_hold_their_places_no_longer_than_their_lease(
    db_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    # every answer takes 2 s: the two exports of three locations each have a call in flight
    async with simulator(build_seconds=0.05, slow_share=1.0, slow_seconds=2.0) as sim:
        # a call that makes no progress cannot outlive its timeout: a dead worker's calls
        # stop counting when their lease (4/3 of the timeout and a second: 6.7 s) runs out
        env = ingest_env(db_url, sim, http_timeout_s=4, vidicenter_locations_per_export=3)
        second_day = date.fromordinal(DAY.toordinal() + 1)
        args = backfill_args("viewers", DAY, second_day, resolution="1h")
        proc = await start_ingest(env, *args, cwd=tmp_path)
        async with asyncio.timeout(20):
            while (
                await pool.fetchval(
                    "SELECT count(*) FROM ingest.vendor_calls WHERE finished_at > clock_timestamp()"
                )
                < 2
            ):
                assert proc.returncode is None, "the backfill ended before the kill"
                await asyncio.sleep(0.02)
        proc.kill()
        assert (await finish(proc)).code == -9

        sim.state.configure(slow_share=0.0)
        # one export, two calls: a few seconds past the lease, unless the dead calls still
        # hold the places
        three = LOCATIONS[:3]
        ran = await run_ingest(
            env,
            *backfill_args("ots", DAY, resolution="1h", locations=three),
            cwd=tmp_path,
            limit_s=10,
        )
        assert ran.code == 0, ran.explain()
        assert_no_violations(sim)


# --- 4. two backfills at once ---------------------------------------------------------


@pytest.mark.slow
async def test_two_identical_backfills_at_once_end_as_one_would(
    db_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    last = date.fromordinal(DAY.toordinal() + 1)
    async with simulator(build_seconds=0.3) as sim:
        env = ingest_env(
            db_url, sim, vidicenter_locations_per_export=2, vidicenter_poll_initial_s=0.4
        )
        args = backfill_args("viewers", DAY, last, resolution="finest")
        runs = await asyncio.gather(*(run_ingest(env, *args, cwd=tmp_path) for _ in range(2)))
        for ran in runs:
            assert ran.code == 0, ran.explain()
            assert ran.out.startswith("12 done, 0 dead"), ran.out
        # each (location, day) was exported once, by one of the two
        assert sim.exported_days() == _every_job([("viewers", "finest")], [DAY, last])
        assert_no_violations(sim)
        expected = _expected(sim, "viewers", "finest", [DAY, last])
    assert await job_counts(pool) == {"pending": 0, "running": 0, "done": 12, "dead": 0}
    await assert_table_holds(pool, "viewers_finest", expected)


# --- 5. idempotence, and --force after late uploads -----------------------------------


async def _snapshot(pool: asyncpg.Pool) -> dict[str, Counter[tuple[Any, ...]]]:
    """Every stored row, ingested_at included, of the two viewers tables."""
    return {
        table: Counter(
            tuple(r.values()) for r in await pool.fetch(f"SELECT * FROM vidicenter.{table}")
        )
        for table in ("viewers", "viewers_finest")
    }


@pytest.mark.slow
async def test_the_same_backfill_twice_changes_nothing_and_force_picks_up_late_uploads(
    db_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    types = [("viewers", "1h"), ("viewers", "finest")]
    commands = [backfill_args(n, DAY, resolution=r) for n, r in types]
    async with simulator(build_seconds=0.05) as sim:
        env = ingest_env(db_url, sim)

        async def backfill(*flags: str) -> None:
            runs = await asyncio.gather(
                *(run_ingest(env, *args, *flags, cwd=tmp_path) for args in commands)
            )
            for ran in runs:
                assert ran.code == 0, ran.explain()
                assert ran.out.startswith("6 done, 0 dead"), ran.out

        await backfill()
        first = await _snapshot(pool)
        exports = len(sim.calls)

        await backfill()
        # done (and final) days are not asked for again; only the scope is checked
        assert len(sim.calls) == exports
        assert await _snapshot(pool) == first  # not a row touched: ingested_at unchanged

        sim.state.late_uploads()
        hourly = _expected(sim, "viewers", "1h", [DAY])
        finest = _expected(sim, "viewers", "finest", [DAY])
        await backfill("--force")
        stats = sim.stats()
        # the cached exports were rebuilt, with force_rebuild on the first request only
        assert stats["exports_rebuilt"] == 2, stats
        assert [c.state for c in sim.calls if c.forced] == ["started", "started"]
        assert_no_violations(sim)

    await assert_table_holds(pool, "viewers", hourly)
    await assert_table_holds(pool, "viewers_finest", finest)
    assert await _duplicate_keys(pool) == 0
    forced = await _snapshot(pool)
    assert {t: sum(c.values()) for t, c in forced.items()} == {
        t: sum(c.values()) for t, c in first.items()
    }
    assert forced["viewers"] != first["viewers"]
    assert forced["viewers_finest"] != first["viewers_finest"]


# --- 6. bad answers and failed exports ------------------------------------------------


@pytest.mark.slow
async def test_an_answer_never_readable_is_read_again_cut_down_then_dead_and_spares_others(
    db_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    two = ("1001", "1002")
    async with simulator(build_seconds=0.05, malformed_share=1.0) as sim:
        env = ingest_env(db_url, sim, job_max_attempts=2)
        ran = await run_ingest(
            env, *backfill_args("viewers", DAY, resolution="1h", locations=two), cwd=tmp_path
        )
        assert ran.code == 1, ran.explain()
        assert "not JSON" in ran.out and "dead" in ran.out, ran.out
        # the export of both locations was read twice, then cut in two: each location's own
        # export read until its job had no tries left
        assert sim.stats()["faults"]["malformed"] == 2 + 2 * 1
        starts = [c.query["locations"] for c in sim.starts()]
        assert starts == ["1001,1002", "1001", "1002"] or starts == ["1001,1002", "1002", "1001"]

        sim.state.configure(malformed_share=0.0)
        other = await run_ingest(
            env, *backfill_args("ots", DAY, resolution="1h", locations=two), cwd=tmp_path
        )
        assert other.code == 0, other.explain()
        ots = [
            r | FILLED_AGGREGATED
            for r in vendor_rows(sim, day_query("ots", "1h", DAY, locations="1001,1002"))
        ]
        assert_no_violations(sim)

    jobs = await pool.fetch(
        "SELECT data_type, status, attempts, last_error FROM ingest.jobs ORDER BY id"
    )
    dead = [j for j in jobs if j["data_type"] == "viewers"]
    assert [(j["status"], j["attempts"]) for j in dead] == [("dead", 2)] * 2
    assert all("not JSON" in j["last_error"] for j in dead), dead
    assert [j["status"] for j in jobs if j["data_type"] == "ots"] == ["done"] * 2
    assert await pool.fetchval("SELECT count(*) FROM vidicenter.viewers") == 0
    await assert_table_holds(pool, "ots", ots)


@pytest.mark.slow
async def test_a_failed_export_is_cut_down_then_rebuilt_then_dead_with_the_vendors_reason(
    db_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    async with simulator(build_seconds=0.05, fail_share=1.0) as sim:
        env = ingest_env(db_url, sim, job_max_attempts=5, vidicenter_rebuilds_after_failure=2)
        ran = await run_ingest(
            env,
            *backfill_args("viewers", DAY, resolution="1h", locations=("1001", "1002")),
            cwd=tmp_path,
        )
        assert ran.code == 1, ran.explain()
        stats = sim.stats()
        # the export of both locations failed and was cut in two; each location's own export
        # was then rebuilt twice before its job was dead
        assert (stats["exports_started"], stats["exports_rebuilt"]) == (1 + 2 * 3, 2 * 2), stats
        assert stats["exports_failed"] == 7, stats
        assert (
            sorted(c.query["locations"] for c in sim.starts())
            == ["1001"] * 3 + ["1001,1002"] + ["1002"] * 3
        )
        # force_rebuild went with the first request of each rebuild only, never with a poll
        assert [c.state for c in sim.calls if c.forced] == ["started"] * 4
        assert_no_violations(sim)
    jobs = await pool.fetch("SELECT status, last_error FROM ingest.jobs")
    assert [j["status"] for j in jobs] == ["dead", "dead"]
    for job in jobs:
        assert any(reason in job["last_error"] for reason in FAIL_REASONS), job
        assert job["last_error"] in ran.out, ran.out  # the reason is printed


# --- 7. usage errors ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--data-type", "ots", "--resolution", "finest"], "--resolution"),
        (["--data-type", "im", "--resolution", "1d"], "--resolution"),
        (["--data-type", "no_such_type"], "--data-type"),
    ],
    ids=["ots-finest", "im-1d", "unknown-type"],
)
async def test_a_request_vidicenter_does_not_offer_exits_2_with_one_line_naming_the_option(
    options: list[str], named: str, tmp_path: Path
) -> None:
    # no database is reachable: the request is refused before any I/O
    env = ingest_env("postgresql://postgres@127.0.0.1:1/nowhere", None)
    args = ["backfill", "--vendor", "vidicenter", *options, "--from", "2024-03-05"]
    ran = await run_ingest(env, *args, "--to", "2024-03-05", "--locations", "1001", cwd=tmp_path)
    assert ran.code == 2, ran.explain()
    lines = ran.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"ingest: {named}"), lines
    assert ran.out == ""


async def test_a_vidicenter_backfill_without_credentials_exits_2_naming_the_variable(
    tmp_path: Path,
) -> None:
    env = ingest_env(
        "postgresql://postgres@127.0.0.1:1/nowhere",
        None,
        vidicenter_username=None,
        vidicenter_token=None,
    )
    ran = await run_ingest(env, *backfill_args("viewers", DAY), cwd=tmp_path)
    assert ran.code == 2, ran.explain()
    lines = ran.err.strip().splitlines()
    assert len(lines) == 1 and "INGEST_VIDICENTER_USERNAME" in lines[0], lines


# --- 8. status ------------------------------------------------------------------------


async def test_status_json_after_a_backfill_counts_every_job_done(
    db_url: str, tmp_path: Path
) -> None:
    async with simulator(build_seconds=0.05) as sim:
        env = ingest_env(db_url, sim)
        ran = await run_ingest(env, *backfill_args("ots", DAY, resolution="1h"), cwd=tmp_path)
        assert ran.code == 0, ran.explain()
    status = await run_ingest(env, "status", "--json", cwd=tmp_path)
    assert status.code == 0, status.explain()
    report = json.loads(status.out)
    assert report["jobs"] == {"pending": 0, "running": 0, "done": 6, "dead": 0}


# --- the day's end ----------------------------------------------------------------------


@pytest.mark.slow
async def test_a_vendor_that_counts_the_end_in_gives_each_day_its_rows_and_no_more(
    db_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    # the export asks up to the next midnight: a vendor that includes `end` sends the next
    # day's first period too, which belongs to the next day's job, not this one
    async with simulator(build_seconds=0.05, inclusive_end=True) as sim:
        env = ingest_env(db_url, sim)
        for resolution in ("1h", "finest"):
            ran = await run_ingest(
                env, *backfill_args("viewers", DAY, resolution=resolution), cwd=tmp_path
            )
            assert ran.code == 0, ran.explain()
        next_midnight = datetime.combine(date.fromordinal(DAY.toordinal() + 1), time.min)
        for resolution, table in (("1h", "viewers"), ("finest", "viewers_finest")):
            served = _expected(sim, "viewers", resolution, [DAY])
            assert any(_when(r) >= next_midnight for r in served) or resolution == "finest"
            expected = [r for r in served if _when(r) < next_midnight]
            await assert_table_holds(pool, table, expected)
        assert_no_violations(sim)


def _when(row: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(row["period_start"]))
