"""The compose stack with the demo profile, brought up by podman-compose.

podman-compose 1.6 on podman 4.3 ignores `condition: service_healthy` and cannot start a
service whose dependency is a completed one-shot (`migrate`), so the stack is brought up in
the three steps the README gives for podman: the databases; once their own health checks
pass, the migrations; once those exited 0, the rest, with --no-deps. The order the
conditions would give is thus kept by the test, with the compose file's health checks."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import asyncpg
import pytest

from tests.deploy.conftest import ROOT, RUN_ID, free_port, healthy, http_get, podman, wait_for

pytestmark = [pytest.mark.deploy, pytest.mark.timeout(300)]

COMPOSE_VARIABLES = (
    "POSTGRES_PASSWORD",
    "POSTGRES_HOST_PORT",
    "WORKER_HOST_PORT",
    "DEMO_HOST_PORT",
)
WORKERS = ("worker", "demo-worker")


@dataclass
class Stack:
    folder: Path
    project: str
    env: dict[str, str]  # what the stack's .env holds

    def compose(self, *args: str, timeout: float = 300) -> str:
        """podman-compose with the demo profile; fails the test when it exits non-zero."""
        executable = Path(sys.executable).with_name("podman-compose")
        assert executable.exists(), "podman-compose is missing: install the test extra"
        env = {k: v for k, v in os.environ.items() if k not in COMPOSE_VARIABLES}
        result = subprocess.run(
            [str(executable), "-p", self.project, "--profile", "demo", *args],
            cwd=self.folder,
            env={**env, "BUILDAH_FORMAT": "docker"},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            pytest.fail(f"podman-compose {' '.join(args)}: exit {result.returncode}\n"
                        f"{result.stdout}\n{result.stderr}\n{self.logs()}")  # fmt: skip
        return result.stdout

    def container(self, service: str) -> str:
        return f"{self.project}_{service}_1"

    def logs(self) -> str:
        names = podman("ps", "-a", "--format", "{{.Names}}", "--filter",
                       f"label=io.podman.compose.project={self.project}", check=False)  # fmt: skip
        return "\n".join(
            f"--- {name}\n{podman('logs', '--tail', '30', name, check=False).stderr}"
            for name in names.stdout.split()
        )


@pytest.fixture
def stack(podman_ready: None, tmp_path: Path) -> Iterator[Stack]:
    """A copy of the repository (never the developer's .env) with an .env of the test's:
    a password and free host ports; torn down with its volumes and images afterwards."""
    folder = tmp_path / "ingest"
    shutil.copytree(
        ROOT,
        folder,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", ".env", "__pycache__", ".*cache", ".hypothesis"
        ),
    )
    env = {
        "POSTGRES_PASSWORD": f"pw-{RUN_ID}",
        "POSTGRES_HOST_PORT": str(free_port()),
        "WORKER_HOST_PORT": str(free_port()),
        "DEMO_HOST_PORT": str(free_port()),
    }
    (folder / ".env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    stack = Stack(folder, f"ingesttest{RUN_ID}", env)
    try:
        yield stack
    finally:
        try:
            stack.compose("down", "-v", "-t", "5")
        finally:
            images = podman("images", "--format", "{{.Repository}}", "--filter",
                            f"reference=localhost/{stack.project}_*", check=False)  # fmt: skip
            for name in set(images.stdout.split()):
                podman("rmi", "-f", name, check=False)
            podman("network", "rm", "-f", f"{stack.project}_default", check=False)


def done_jobs(metrics: str) -> int:
    return sum(
        int(float(n))
        for n in re.findall(r'^ingest_jobs\{status="done",[^}]*\} (\S+)', metrics, re.M)
    )


async def real_database(url: str) -> tuple[int, int]:
    """(migrations applied, jobs) of the stack's real database, from the host."""
    conn = await asyncpg.connect(url)
    try:
        applied = await conn.fetchval("SELECT count(*) FROM ingest.schema_migrations")
        jobs = await conn.fetchval("SELECT count(*) FROM ingest.jobs")
        return int(applied), int(jobs)
    finally:
        await conn.close()


def test_the_compose_stack_runs_the_demo_and_stops_on_sigterm(stack: Stack) -> None:
    started = time.monotonic()
    databases = ("postgres", "demo-postgres")
    stack.compose("up", "-d", *databases)
    for service in databases:  # the compose file's own health check, run by hand
        name = stack.container(service)
        wait_for(f"{service} is healthy", partial(healthy, name), 90, stack.logs)
    stack.compose("up", "-d", "--no-deps", "migrate", "demo-migrate")
    codes = podman("wait", stack.container("migrate"), stack.container("demo-migrate"), timeout=120)
    assert codes.stdout.split() == ["0", "0"], stack.logs()
    stack.compose("up", "-d", "--no-deps", "worker", "simulator", "demo-worker")

    demo = f"http://127.0.0.1:{stack.env['DEMO_HOST_PORT']}"
    worker = f"http://127.0.0.1:{stack.env['WORKER_HOST_PORT']}"
    wait_for(
        "the demo worker has done jobs",
        lambda: done_jobs(http_get(f"{demo}/metrics")[1]) > 0,
        timeout=120,
        on_timeout=stack.logs,
    )
    assert http_get(f"{demo}/healthz")[0] == 200
    wait_for(
        "the worker answers /readyz", lambda: http_get(f"{worker}/readyz")[0] == 200, 30, stack.logs
    )
    assert http_get(f"{worker}/healthz")[0] == 200
    assert healthy(stack.container("worker"))

    # the real database: on the host's loopback only, with the password of .env, migrated,
    # and untouched by the demo
    port = stack.env["POSTGRES_HOST_PORT"]
    published = podman("port", stack.container("postgres")).stdout.split()
    assert published == ["5432/tcp", "->", f"127.0.0.1:{port}"], published
    policy = podman("inspect", "--format", "{{.HostConfig.RestartPolicy.Name}}",
                    stack.container("postgres")).stdout.strip()  # fmt: skip
    assert policy == "unless-stopped"
    url = f"postgresql://postgres:{stack.env['POSTGRES_PASSWORD']}@127.0.0.1:{port}/ingest"
    applied, jobs = asyncio.run(real_database(url))
    assert applied == len(list((ROOT / "migrations").glob("*.sql")))
    assert jobs == 0, "the demo wrote into the real database"
    print(f"compose stack up and working in {time.monotonic() - started:.0f} s")

    # SIGTERM (podman stop, with the stop_grace_period as its timeout)
    stopping = time.monotonic()
    stack.compose("stop", *WORKERS)
    elapsed = time.monotonic() - stopping
    for service in WORKERS:
        name = stack.container(service)
        code = podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
        logs = podman("logs", name).stderr
        assert code == "0", f"{service} exited {code}\n{logs}"
        assert '"signal": "SIGTERM"' in logs and "run.stopped" in logs, logs
    assert elapsed < 30, f"the workers took {elapsed:.1f} s to stop (grace: 30 s)"
