import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import asyncpg

from ingest.datatypes import REGISTRY


def _run_demo(url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    env["INGEST_DATABASE_URL"] = url
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
