"""Running `ingest` as a subprocess against a test database and simulator."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from ingest.simulator import RunningSimulator

STREAM_1 = {
    "username": "demo@example.com",
    "client_id": "stream-1",
    "access_token": "demo-access-1",
}
STREAM_2 = {
    "username": "demo@example.com",
    "client_id": "stream-2",
    "access_token": "demo-access-2",
}


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def ingest_env(
    db_url: str, sim: RunningSimulator, streams: list[dict[str, str]], **extra: str
) -> dict[str, str]:
    """The environment of an `ingest` subprocess: the test's database and simulator only,
    with fast polls and retries; `extra` adds or overrides INGEST_ variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    env.update(
        INGEST_DATABASE_URL=db_url,
        INGEST_ANGUS_CONSOLE_URL=sim.url,
        INGEST_ANGUS_DATA_URL=sim.url,
        INGEST_ANGUS_STREAMS=json.dumps(streams),
        INGEST_VIDICENTER_URL=sim.url,
        INGEST_VIDICENTER_USERNAME="demo",
        INGEST_VIDICENTER_TOKEN="demo-token",
        INGEST_VIDICENTER_POLL_INITIAL_S="0.2",
        INGEST_WORKER_IDLE_POLL_S="0.2",
        INGEST_JOB_RETRY_BASE_S="0",
        INGEST_DAY_TIMEZONE="UTC",
    )
    env.update(extra)
    return env


async def ingest(env: dict[str, str], cwd: Path, *args: str) -> Finished:
    """Run `python -m ingest ARGS` to its end (the simulator keeps serving meanwhile)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ingest",
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return Finished(proc.returncode, out.decode(), err.decode())
