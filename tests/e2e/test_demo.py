import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import asyncpg

from ingest import planner
from ingest.commands.demo import demo_requests
from ingest.datatypes import FINEST, REGISTRY
from ingest.domain import Scope


def _run_demo(url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    env["INGEST_DATABASE_URL"] = url
    env["INGEST_LOG_FORMAT"] = "json"
    env["INGEST_LOG_LEVEL"] = "debug"  # export.poll_scheduled
    return subprocess.run(
        [sys.executable, "-m", "ingest", "demo"],
        env=env,
        cwd=cwd,
        text=True,
        capture_output=True,
        timeout=120,
    )


async def test_demo_migrates_an_empty_database_and_fills_every_table(
    empty_db_url: str, tmp_path: Path
) -> None:
    result = await asyncio.to_thread(_run_demo, empty_db_url, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "limit violations: {'exports': 0, 'calls': 0, 'connections': 0}" in result.stdout
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    finished = [e for e in events if e["event"] == "export.finished"]
    # two calls an export (start, then the finished answer): no poll found a build going on
    assert finished and all(e["polls"] == 1 for e in finished)
    assert f"VidiCenter exports: {len(finished)}," in result.stdout
    # the simulator's builds take 0.3 s: no export place is held seconds after one ended
    waits = [e["wait_s"] for e in events if e["event"] == "export.poll_scheduled"]
    assert max(waits) < 4.0, waits
    printed = dict(re.findall(r"^(\w+\.\w+)\s+(\d+)$", result.stdout, re.M))
    conn = await asyncpg.connect(empty_db_url)
    try:
        for table in REGISTRY.tables():
            name = f"vidicenter.{table.name}"
            n = await conn.fetchval(f"SELECT count(*) FROM {name}")
            assert n > 0, f"{name} is empty"
            assert int(printed[name]) == n
        assert await conn.fetchval("SELECT count(*) FROM angus.entities") > 0
        assert await conn.fetchval("SELECT count(*) FROM ingest.jobs WHERE status <> 'done'") == 0
    finally:
        await conn.close()


def test_demo_asks_for_the_biggest_exports_first() -> None:
    # The worker learns build times from the first builds it sees and scales them by the
    # rows it expects: learned on a raw export, they scale down for the smaller ones.
    requests = demo_requests(REGISTRY)
    expected = [
        planner.estimator(dt, res, options, {})(Scope.location(1)) for dt, res, options in requests
    ]
    assert expected == sorted(expected, reverse=True)
    assert requests[0][1] == FINEST
    kinds = {(dt.name, res) for dt, res, _ in requests}
    assert kinds == {
        (dt.name, res)
        for dt in REGISTRY
        for res in {dt.default_resolution} | ({FINEST} & set(dt.resolutions))
    }
