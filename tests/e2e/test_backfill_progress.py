"""A backfill's progress off a terminal, its summary and Ctrl-C: `ingest backfill`
subprocesses, the simulator over real HTTP, real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import re
import signal
import sys
from datetime import date
from pathlib import Path
from typing import Any

import anyio
import asyncpg

from tests.e2e.vidicenter_support import (
    assert_no_violations,
    backfill_args,
    finish,
    ingest_env,
    run_ingest,
    simulator,
    start_ingest,
)

DAY = date(2024, 3, 5)
TWO = ("1001", "1002")


def _events(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


async def test_off_a_terminal_the_progress_is_logged_from_the_start_and_reruns_claim_no_rows(
    db_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    args = [
        *backfill_args("viewers", DAY, date(2024, 3, 7), locations=TWO),
        "--progress-every",
        "0.2",
    ]
    async with simulator(build_seconds=0.5) as sim:
        env = ingest_env(db_url, sim)
        first = await run_ingest(env, *args, cwd=tmp_path)
        assert first.code == 0, first.explain()
        again = await run_ingest(env, *args, cwd=tmp_path)
        assert again.code == 0, again.explain()
        assert_no_violations(sim)

    events = _events(first.err)
    names = [e["event"] for e in events]
    progress = [e for e in events if e["event"] == "backfill.progress"]
    # the first line comes before the jobs are even enqueued, the last one after the work
    assert names.index("backfill.progress") < names.index("backfill.enqueued")
    assert progress[0]["jobs"] == 0
    assert progress[-1] | {"elapsed_s": 0, "rows_per_s": 0} == progress[-1] | {
        "jobs": 6,
        "done": 6,
        "dead": 0,
        "running": 0,
        "pending": 0,
        "eta_s": 0.0,
        "waiting_for": [],
        "elapsed_s": 0,
        "rows_per_s": 0,
    }
    assert any("export" in p["waiting_for"] and p["exports_building"] > 0 for p in progress)
    rows = await pool.fetchval("SELECT sum(rows_loaded) FROM ingest.jobs")
    assert progress[-1]["rows"] == rows > 0
    assert first.out.startswith(f"6 done, 0 dead, 0 not finished; {rows} rows loaded in ")

    assert again.out.startswith("6 done, 0 dead, 0 not finished; 0 rows loaded in "), again.out
    assert "6 of the jobs were done before this run" in again.out


async def _wait_for(pool: asyncpg.Pool, sql: str) -> None:
    """Until `sql` is true (a deadline, not a timing assertion)."""
    with anyio.fail_after(30):
        while True:
            if await pool.fetchval(sql):
                return
            await asyncio.sleep(0.05)


async def test_ctrl_c_hands_the_jobs_back_prints_the_summary_and_exits_130(
    db_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    args = backfill_args("viewers", DAY, date(2024, 3, 7), locations=TWO)
    async with simulator(build_seconds=600) as sim:  # the exports never finish
        env = ingest_env(db_url, sim)
        proc = await start_ingest(env, *args, cwd=tmp_path)
        await _wait_for(
            pool,
            "SELECT count(*) = 6 FROM ingest.jobs"
            " WHERE status = 'running' AND export_started_at IS NOT NULL",
        )
        proc.send_signal(signal.SIGINT)
        ran = await finish(proc)

    assert ran.code == 130, ran.explain()
    lines = ran.out.splitlines()
    assert lines[0].startswith("0 done, 0 dead, 6 not finished; 0 rows loaded in "), ran.out
    assert lines[1].startswith("  interrupted (SIGINT): the jobs not finished are back in the")
    assert "backfill.interrupted" in ran.err
    jobs = await pool.fetch("SELECT status, attempts, export_query FROM ingest.jobs")
    # handed back untried, their exports kept so that the next run resumes them
    assert {(j["status"], j["attempts"]) for j in jobs} == {("pending", 0)}
    assert all(j["export_query"] is not None for j in jobs)


def _read_all(fd: int) -> str:
    """Everything written to a pseudo-terminal until its other end is closed."""
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the writer is gone
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


async def test_on_a_terminal_a_live_display_shows_the_counts_and_what_the_run_waits_for(
    db_url: str, tmp_path: Path
) -> None:
    args = backfill_args("viewers", DAY, date(2024, 3, 7), locations=TWO)
    master, slave = pty.openpty()
    async with simulator(build_seconds=3.0) as sim:  # a few frames while exports build
        env = ingest_env(db_url, sim) | {"COLUMNS": "220", "TERM": "xterm"}
        del env["INGEST_LOG_FORMAT"]  # as a person runs it
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ingest", *args, env=env, cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE, stderr=slave,
        )  # fmt: skip
        os.close(slave)
        screen, (out, _) = await asyncio.gather(
            anyio.to_thread.run_sync(_read_all, master), proc.communicate()
        )
    os.close(master)

    assert proc.returncode == 0, screen
    assert out.decode().startswith("6 done, 0 dead, 0 not finished; ")
    assert "vidicenter viewers 1h" in screen
    assert "6 done · 0 dead · 0 running of 6 jobs" in screen  # the last frame
    assert "building at the vendor (next poll in" in screen
    assert re.search(r"elapsed \d+:\d\d:\d\d · ETA (\d+:\d\d:\d\d|\?)", screen)
    assert "job.done" not in screen  # on a terminal the display is the output, not info logs
