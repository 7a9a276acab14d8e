"""The deployment built and run for real: podman builds the image and runs it, the compose
stack and the systemd unit's command lines. Every test module here is marked `deploy`
(`pytest -m "not deploy"` leaves them out); without podman they fail, they do not skip.

Everything they create is named after one run id (containers, networks, images, a compose
project), uses free host ports, and is removed afterwards, failed or not."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN_ID = uuid.uuid4().hex[:8]
PYTHON_BASE = "docker.io/library/python:3.11-slim"
POSTGRES_BASE = "docker.io/library/postgres:15"
SETUP_HINT = (
    "run `bash ../shared/tools/container-bases.sh` from the repository root (as .ci/run does)"
)


def podman(
    *args: str, check: bool = True, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """Run podman; with `check`, fail the test with its output when it exits non-zero.
    Builds keep HEALTHCHECK (BUILDAH_FORMAT=docker: the OCI format drops it)."""
    result = subprocess.run(
        ["podman", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "BUILDAH_FORMAT": "docker"},
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"podman {' '.join(args)}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
        )
    return result


def healthy(container: str) -> bool:
    """Whether the container's health check passes now (podman runs none on its own here:
    it schedules them with systemd timers)."""
    return podman("healthcheck", "run", container, check=False).returncode == 0


def free_port() -> int:
    """A TCP port free on this machine now (the kernel's choice)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(url: str, timeout: float = 3) -> tuple[int, str]:
    """(status, body) of a GET; (0, error) when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError as error:
        return 0, str(error)


def wait_for(
    what: str, check: Callable[[], bool], timeout: float, on_timeout: Callable[[], str] = str
) -> None:
    """Poll `check` every half second until it is true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:.0f} s\n{on_timeout()}")
        time.sleep(0.5)


@pytest.fixture(scope="session")
def podman_ready() -> None:
    """podman and the base images are here, or the deploy tests fail saying how to get them."""
    if shutil.which("podman") is None:
        pytest.fail(f"podman is missing: {SETUP_HINT}")
    for base in (PYTHON_BASE, POSTGRES_BASE):
        if podman("image", "exists", base, check=False).returncode != 0:
            pytest.fail(f"the base image {base} is missing: {SETUP_HINT}")


@pytest.fixture(scope="session")
def image(podman_ready: None) -> Iterator[str]:
    """The project's image, built from the repository as `podman build --pull=never .`."""
    name = f"localhost/ingest-test-{RUN_ID}"
    podman("build", "--pull=never", "--format", "docker", "-t", name, str(ROOT), timeout=600)
    try:
        yield name
    finally:
        podman("rmi", "-f", name, check=False)
