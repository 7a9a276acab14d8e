"""deploy/ingest.service: its systemd-analyze score, and its command lines run outside
systemd (this machine has none) under strace, against the unit's own sandbox rules.

What stands in for what: a new virtualenv, installed from the lock as the README says,
for /opt/ingest; a temporary folder for /var/lib/ingest; the test's user for `ingest`; an
environment file made from .env.example (a test database, the simulator, a free port) for
/etc/ingest/ingest.env. Namespaces, the user and read-only paths are not exercised."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.deploy.conftest import ROOT, free_port, http_get

pytestmark = [pytest.mark.deploy, pytest.mark.timeout(300)]

UNIT = ROOT / "deploy" / "ingest.service"
PREFIX = "/opt/ingest"
MAX_EXPOSURE = 3.0
GRACE_S = 30.0


def service_lines() -> list[tuple[str, str]]:
    """(key, value) of every line of the [Service] section, repeated keys kept in order."""
    section, out = "", []
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
        elif section == "[Service]":
            key, _, value = line.partition("=")
            out.append((key.strip(), value.strip()))
    return out


def service(key: str) -> str:
    (value,) = [v for k, v in service_lines() if k == key]
    return value


def parse_environment_file(text: str) -> dict[str, str]:
    """systemd's EnvironmentFile= rules, for what .env.example uses: KEY=VALUE lines, # and ;
    comments, a value in single or double quotes unquoted, else taken as it is."""
    env = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        env[key.strip()] = value
    return env


def syscall_groups() -> dict[str, set[str]]:
    """systemd's system call groups (@name: members, groups among them), as installed."""
    listing = subprocess.run(
        ["systemd-analyze", "syscall-filter"], capture_output=True, text=True, check=True
    ).stdout
    groups: dict[str, set[str]] = {}
    current = ""
    for line in listing.splitlines():
        if line.startswith("@"):
            current = line.split()[0]
            groups[current] = set()
        elif line.strip() and not line.strip().startswith("#") and current:
            groups[current].add(line.strip())
    return groups


def allowed_syscalls() -> set[str]:
    """The calls the unit's SystemCallFilter= lines allow: the first list, less every ~list."""
    groups = syscall_groups()

    def expand(names: list[str]) -> set[str]:
        out: set[str] = set()
        for name in names:
            out |= expand(sorted(groups[name])) if name.startswith("@") else {name}
        return out

    allowed: set[str] = set()
    for key, value in service_lines():
        if key == "SystemCallFilter":
            if value.startswith("~"):
                allowed -= expand(value[1:].split())
            else:
                allowed |= expand(value.split())
    return allowed


def traced(log: Path) -> tuple[set[str], set[str]]:
    """(system calls, socket families) in an `strace -f` log."""
    calls, families = set(), set()
    for line in log.read_text().splitlines():
        match = re.match(r"^\d+\s+(?:<\.\.\. )?([a-z0-9_]+)[( ]", line)
        if match:
            calls.add(match.group(1))
        families.update(re.findall(r"\bsocket\((AF_[A-Z0-9]+)", line))
    return calls, families


def test_systemd_analyze_scores_the_unit_3_or_lower() -> None:
    assert shutil.which("systemd-analyze"), "systemd-analyze is missing (Debian: systemd)"
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(UNIT.relative_to(ROOT))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    match = re.search(r"Overall exposure level for ingest\.service: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    print(f"systemd-analyze security: {match.group(1)}")
    assert float(match.group(1)) <= MAX_EXPOSURE, result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtualenv with the project, installed as the README's systemd part says."""
    prefix = tmp_path_factory.mktemp("opt") / "ingest"
    pip = [str(prefix / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check"]
    for command in (
        [sys.executable, "-m", "venv", str(prefix)],
        [*pip, "--require-hashes", "-r", str(ROOT / "requirements" / "runtime.txt")],
        [*pip, "--no-deps", str(ROOT)],
    ):
        result = subprocess.run(command, capture_output=True, text=True, timeout=240)
        assert result.returncode == 0, f"{command}: {result.stdout}{result.stderr}"
    return prefix


def exec_line(key: str, prefix: Path) -> list[str]:
    """The unit's command line, with the install prefix replaced."""
    argv = shlex.split(service(key))
    assert argv[0].startswith(PREFIX + "/"), argv
    return [str(prefix) + argv[0].removeprefix(PREFIX), *argv[1:]]


async def test_the_units_command_lines_run_outside_systemd_within_its_sandbox_rules(
    installed: Path, empty_db_url: str, tmp_path: Path
) -> None:
    strace = shutil.which("strace")
    assert strace, "strace is missing (Debian: strace)"
    port, sim_port = free_port(), free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    example = (ROOT / ".env.example").read_text()
    example = re.sub(
        r"^INGEST_DATABASE_URL=.*$", f"INGEST_DATABASE_URL={empty_db_url}", example, flags=re.M
    )
    env_file = tmp_path / "ingest.env"
    env_file.write_text(
        example
        + f"\nINGEST_HTTP_PORT={port}\nINGEST_VIDICENTER_URL={sim_url}\n"
        + "INGEST_VIDICENTER_USERNAME=demo\nINGEST_VIDICENTER_TOKEN=demo-token\n"
        + "INGEST_VIDICENTER_LOCATIONS=all\nINGEST_VIDICENTER_POLL_INITIAL_S=0.5\n"
        + f"INGEST_ANGUS_CONSOLE_URL={sim_url}\nINGEST_ANGUS_DATA_URL={sim_url}\n"
        + 'INGEST_ANGUS_STREAMS=[{"username": "demo@example.com", "client_id": "stream-1",'
        + ' "access_token": "demo-access-1"}]\n'
    )
    workdir = tmp_path / "var-lib-ingest"
    workdir.mkdir()
    # what systemd gives a service: its own minimal environment, then the file's
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(workdir),
        **parse_environment_file(env_file.read_text()),
    }

    async def start(
        argv: list[str], *, strace_log: Path | None = None, output: int = asyncio.subprocess.PIPE
    ) -> asyncio.subprocess.Process:
        """Start a command the way the unit would: its environment, its working folder."""
        traced = [strace, "-f", "-qq", "-o", str(strace_log)] if strace_log else []
        return await asyncio.create_subprocess_exec(
            *traced, *argv, env=env, cwd=workdir, stdout=output, stderr=output
        )

    ingest = str(installed / "bin" / "ingest")
    simulator = await start(
        [ingest, "simulate", "--host", "127.0.0.1", "--port", str(sim_port)],
        output=asyncio.subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while (await asyncio.to_thread(http_get, f"{sim_url}/_sim/stats"))[0] != 200:
            assert time.monotonic() < deadline, "the simulator does not answer"
            await asyncio.sleep(0.2)

        # ExecStartPre
        pre_log = tmp_path / "pre.strace"
        pre = await start(exec_line("ExecStartPre", installed), strace_log=pre_log)
        out, err = await asyncio.wait_for(pre.communicate(), timeout=60)
        assert pre.returncode == 0, out.decode() + err.decode()

        # ExecStart, until it has done jobs; then SIGTERM, as systemd stops it
        run_log = tmp_path / "run.strace"
        run = await start(exec_line("ExecStart", installed), strace_log=run_log)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            metrics = (await asyncio.to_thread(http_get, f"{base}/metrics"))[1]
            if re.search(r'^ingest_jobs\{status="done",[^}]*\} [1-9]', metrics, re.M):
                break
            if run.returncode is not None or time.monotonic() > deadline:
                run.kill()
                out, err = await run.communicate()
                pytest.fail(f"no job done by the worker\n{out.decode()}{err.decode()[-3000:]}")
            await asyncio.sleep(0.5)
        assert (await asyncio.to_thread(http_get, f"{base}/healthz"))[0] == 200
        assert (await asyncio.to_thread(http_get, f"{base}/readyz"))[0] == 200
        # strace's log starts with its child's pid: the traced `ingest run`
        worker_pid = int(run_log.read_text().split(maxsplit=1)[0])
        stopping = time.monotonic()
        os.kill(worker_pid, getattr(signal, service("KillSignal")))
        out, err = await asyncio.wait_for(run.communicate(), timeout=GRACE_S + 30)
        elapsed = time.monotonic() - stopping
        assert run.returncode == 0, out.decode() + err.decode()[-3000:]
        assert elapsed < GRACE_S, f"took {elapsed:.1f} s to stop"
    finally:
        simulator.terminate()
        await simulator.wait()

    # the calls and socket families it used are ones the unit allows
    calls, families = traced(pre_log)
    run_calls, run_families = traced(run_log)
    calls, families = calls | run_calls, families | run_families
    denied = sorted(calls - allowed_syscalls())
    assert not denied, f"SystemCallFilter would refuse {denied}"
    assert families <= set(service("RestrictAddressFamilies").split()), families

    # a bad configuration exits 2, which RestartPreventExitStatus= names
    env["INGEST_DATABASE_POOL_SIZE"] = "1"  # below its minimum, 2
    bad = await start(exec_line("ExecStart", installed))
    out, err = await asyncio.wait_for(bad.communicate(), timeout=60)
    assert bad.returncode == 2, out.decode() + err.decode()
    assert "2" in service("RestartPreventExitStatus").split()
