"""The image, built and run: against a postgres:15 container on a network of their own."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.conftest import PYTHON_BASE, ROOT, RUN_ID, healthy, podman, wait_for

pytestmark = [pytest.mark.deploy, pytest.mark.timeout(300)]

# what the dependency layer may add to the base image
MAX_ADDED_MB = 100


@dataclass
class Postgres:
    network: str
    url: str


@pytest.fixture(scope="module")
def postgres(image: str) -> Iterator[Postgres]:
    """A postgres:15 container with a password, alone on a new network."""
    network, name = f"ingest-test-{RUN_ID}", f"ingest-test-{RUN_ID}-pg"
    podman("network", "create", network)
    try:
        podman(
            "run", "-d", "--name", name, "--network", network,
            "-e", "POSTGRES_PASSWORD=test-secret", "-e", "POSTGRES_DB=ingest",
            "docker.io/library/postgres:15",
        )  # fmt: skip
        wait_for(
            "postgres accepts connections",
            lambda: (
                podman("exec", name, "pg_isready", "-h", "127.0.0.1", "-q", check=False).returncode
                == 0
            ),
            timeout=60,
            on_timeout=lambda: podman("logs", name, check=False).stderr,
        )
        yield Postgres(network, f"postgresql://postgres:test-secret@{name}:5432/ingest")
    finally:
        podman("rm", "-f", "-t", "0", name, check=False)
        podman("network", "rm", "-f", network, check=False)


def inspect(name: str, kind: str = "image") -> dict[str, Any]:
    data: list[dict[str, Any]] = json.loads(podman(kind, "inspect", name).stdout)
    return data[0]


def test_the_image_is_slim_and_runs_as_a_non_root_user(image: str) -> None:
    config = inspect(image)["Config"]
    assert config["User"] == "ingest"
    uid = podman("run", "--rm", "--entrypoint", "id", image, "-u").stdout.strip()
    assert uid == "10001"
    size, base = inspect(image)["Size"], inspect(PYTHON_BASE)["Size"]
    added_mb = (size - base) / 1e6
    print(f"image: {size / 1e6:.0f} MB, {added_mb:.0f} MB over {PYTHON_BASE}")
    assert added_mb < MAX_ADDED_MB


def test_the_build_context_holds_only_what_the_image_needs(
    podman_ready: None, tmp_path: Path
) -> None:
    # the same context as the real build (the repository, with its .dockerignore), copied
    # whole into an image to list it
    probe = tmp_path / "Containerfile"
    probe.write_text(f"FROM {PYTHON_BASE}\nCOPY . /context\n")
    name = f"localhost/ingest-test-{RUN_ID}-context"
    podman("build", "--pull=never", "-f", str(probe), "-t", name, str(ROOT))
    try:
        listing = podman("run", "--rm", "--entrypoint", "find", name, "/context", "-type", "f")
    finally:
        podman("rmi", "-f", name, check=False)
    files = {line.removeprefix("/context/") for line in listing.stdout.splitlines()}
    assert "pyproject.toml" in files and "requirements/runtime.txt" in files
    tops = {f.split("/")[0] for f in files}
    assert tops <= {"pyproject.toml", "README.md", "requirements", "ingest", "migrations", "deploy"}
    assert not [f for f in files if "__pycache__" in f]


def test_the_image_migrates_and_runs_the_demo_against_postgres_15(
    image: str, postgres: Postgres
) -> None:
    def ingest(*args: str) -> str:
        env = ["-e", f"INGEST_DATABASE_URL={postgres.url}"]
        result = podman("run", "--rm", "--network", postgres.network, *env, image, *args)
        return result.stdout

    migrations = len(list((ROOT / "migrations").glob("*.sql")))
    first = ingest("migrate")
    assert first.startswith(f"applied {migrations} migration(s)") or first.startswith(
        "applied 0 migration(s)"  # the other test of this module ran first
    ), first
    assert ingest("migrate").startswith("applied 0 migration(s)")  # idempotent
    report = ingest("demo")
    assert "limit violations: {'exports': 0, 'calls': 0, 'connections': 0}" in report, report
    assert " dead " not in report, report


def test_the_healthcheck_follows_INGEST_HTTP_PORT_and_sigterm_stops_the_worker_with_0(
    image: str, postgres: Postgres
) -> None:
    name = f"ingest-test-{RUN_ID}-worker"
    podman("run", "--rm", "--network", postgres.network,
           "-e", f"INGEST_DATABASE_URL={postgres.url}", image, "migrate")  # fmt: skip
    podman(
        "run", "-d", "--name", name, "--network", postgres.network,
        "-e", f"INGEST_DATABASE_URL={postgres.url}", "-e", "INGEST_HTTP_PORT=9181",
        image, "run",
    )  # fmt: skip
    try:
        # podman runs no health check on its own without systemd: run the image's by hand
        wait_for(
            "the image's health check passes",
            partial(healthy, name),
            timeout=60,
            on_timeout=lambda: podman("logs", name, check=False).stderr,
        )
        # and it asks the configured port: nothing answers on the default one
        wrong = podman(
            "exec", "-e", "INGEST_HTTP_PORT=8080", name,
            "python", "/usr/local/lib/ingest-healthcheck.py", check=False,
        )  # fmt: skip
        assert wrong.returncode == 1, wrong.stdout + wrong.stderr

        started = time.monotonic()
        podman("stop", "-t", "60", name)  # SIGTERM, the image's stop signal
        elapsed = time.monotonic() - started
        state = inspect(name, "container")["State"]
        logs = podman("logs", name).stderr
        assert state["ExitCode"] == 0, logs
        assert '"signal": "SIGTERM"' in logs and "run.stopped" in logs, logs
        assert elapsed < 30, f"took {elapsed:.1f} s to stop"
    finally:
        podman("rm", "-f", "-t", "0", name, check=False)
