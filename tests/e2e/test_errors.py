"""Every failure a user can cause ends in one line and a documented exit status, never a
traceback; one vendor failing leaves the other's work going."""

from __future__ import annotations

import json
import socket
from datetime import date
from pathlib import Path

import asyncpg
import pytest

from .ingest_process import STREAM_1
from .vidicenter_support import Ran, backfill_args, ingest_env, run_ingest, simulator

pytestmark = pytest.mark.slow

DAY = date(2024, 3, 5)
ACCOUNT = "127.0.0.1/demo"  # the simulator's user, on the loopback host


def error_line(ran: Ran) -> str:
    """The one line a failed command ends with: its stderr holds nothing else but log
    lines (JSON), and no traceback."""
    assert "Traceback" not in ran.err, ran.explain()
    lines = [line for line in ran.err.strip().splitlines() if not line.startswith("{")]
    assert len(lines) == 1, ran.explain()
    return lines[0]


async def test_refused_credentials_end_a_backfill_in_one_line_naming_the_account(
    db_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    async with simulator(build_seconds=0.05) as sim:
        env = ingest_env(db_url, sim, vidicenter_token="wrong-token")
        ran = await run_ingest(env, *backfill_args("viewers", DAY), cwd=tmp_path)
    assert ran.code == 2
    assert error_line(ran) == (
        f"ingest: VidiCenter account {ACCOUNT} refused the credentials "
        "(vidicenter answered 401: Invalid API Token; error: 401)"
    )
    assert "wrong-token" not in ran.out + ran.err
    assert await pool.fetchval("SELECT count(*) FROM ingest.jobs") == 0


async def test_refused_credentials_leave_the_jobs_untried_for_a_later_run(
    db_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    async with simulator(build_seconds=0.05) as sim:
        good = ingest_env(db_url, sim)
        args = backfill_args("viewers", DAY, locations=["1001"])
        ran = await run_ingest(good, *args, "--enqueue-only", cwd=tmp_path)
        assert ran.code == 0, ran.explain()

        bad = ingest_env(db_url, sim, vidicenter_token="wrong-token")
        ran = await run_ingest(bad, "run", "--once", cwd=tmp_path)
        assert ran.code == 2
        assert error_line(ran).startswith(f"ingest: VidiCenter account {ACCOUNT} refused")
        row = await pool.fetchrow("SELECT status, attempts FROM ingest.jobs")
        assert (row["status"], row["attempts"]) == ("pending", 0)  # handed back, untried

        ran = await run_ingest(good, "run", "--once", cwd=tmp_path)
        assert ran.code == 0, ran.explain()
    assert await pool.fetchval("SELECT status FROM ingest.jobs") == "done"


async def test_a_vidicenter_failure_leaves_angus_scheduled_and_worked(
    db_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    async with simulator(build_seconds=0.05) as sim:
        env = ingest_env(
            db_url,
            sim,
            vidicenter_token="wrong-token",
            vidicenter_locations="all",  # discovery is refused while scheduling
            angus_console_url=sim.url,
            angus_data_url=sim.url,
            angus_streams=json.dumps([STREAM_1]),
            schedule_lookback_days=0,
        )
        ran = await run_ingest(env, "run", "--once", cwd=tmp_path)
    assert ran.code == 2
    assert error_line(ran).startswith(f"ingest: VidiCenter account {ACCOUNT} refused")
    jobs = await pool.fetch("SELECT vendor, account, status FROM ingest.jobs")
    assert [tuple(r) for r in jobs] == [("angus", "stream-1", "done")]
    paused = [json.loads(line) for line in ran.err.splitlines() if '"vendor.paused"' in line]
    assert [(p["vendor"], p["account"]) for p in paused] == [("vidicenter", ACCOUNT)]


@pytest.mark.parametrize(
    ("data_type", "options", "line"),
    [
        ("viewers", ["--locations", "1001,9999"], "--locations: no such location 9999"),
        ("viewers", ["--sites", "501,999"], "--sites: no such site 999"),
        ("proof_of_play_by_site", ["--sites", "999"], "--sites: no such site 999"),
        ("viewers", ["--location-tags", "998"], "--location-tags: no such tag 998"),
        ("viewers", ["--site-tags", "997"], "--site-tags: no such tag 997"),
        ("extrapolated_ots", ["--locations", "9999"], "--locations: no such location 9999"),
        ("viewers", [], "INGEST_VIDICENTER_LOCATIONS: no such location 9999"),
    ],
    ids=["location", "site", "site-type", "location-tag", "site-tag", "extrapolated", "default"],
)
async def test_an_unknown_location_site_or_tag_is_named_with_exit_2(
    db_url: str,
    pool: asyncpg.Pool,
    tmp_path: Path,
    data_type: str,
    options: list[str],
    line: str,
) -> None:
    async with simulator(build_seconds=0.05) as sim:
        env = ingest_env(db_url, sim, vidicenter_locations="1001,9999")
        args = [*backfill_args(data_type, DAY, locations=None), *options]
        ran = await run_ingest(env, *args, cwd=tmp_path)
    assert ran.code == 2
    assert error_line(ran) == f"ingest: {line} in VidiCenter account {ACCOUNT}"
    assert await pool.fetchval("SELECT count(*) FROM ingest.jobs") == 0


async def test_an_account_that_is_not_configured_is_refused_before_any_io(tmp_path: Path) -> None:
    env = ingest_env("postgresql://postgres@127.0.0.1:1/nowhere", None)
    args = backfill_args("viewers", DAY)
    ran = await run_ingest(env, *args, "--account", "v.example.com/nobody", cwd=tmp_path)
    assert ran.code == 2
    assert error_line(ran) == (
        "ingest: --account: v.example.com/nobody is not configured; "
        "configured: vidicenter.quividi.com/demo"
    )


async def test_a_vendor_that_cannot_be_reached_ends_the_command_in_one_line_with_exit_1(
    db_url: str, tmp_path: Path
) -> None:
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    env = ingest_env(db_url, None, vidicenter_url=f"http://127.0.0.1:{port}", http_retries=0)
    ran = await run_ingest(env, *backfill_args("viewers", DAY), cwd=tmp_path)
    assert ran.code == 1
    assert error_line(ran).startswith("ingest: GET /api/v1/locations/: ClientConnectorError")


async def test_run_schedules_no_job_for_a_configured_location_the_account_lacks(
    db_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    async with simulator(build_seconds=0.05) as sim:
        env = ingest_env(
            db_url,
            sim,
            vidicenter_locations="1001,9999",
            vidicenter_schedule="ots:1h",
            schedule_lookback_days=0,
        )
        ran = await run_ingest(env, "run", "--once", cwd=tmp_path)
    assert ran.code == 0, ran.explain()
    jobs = await pool.fetch("SELECT scope, status FROM ingest.jobs")
    assert [tuple(r) for r in jobs] == [("location:1001", "done")]
    warned = [json.loads(x) for x in ran.err.splitlines() if "schedule.unknown_locations" in x]
    assert [w["locations"] for w in warned] == [["9999"]]
