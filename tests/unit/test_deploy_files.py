"""The deployment files (docker-compose.yml, Dockerfile, deploy/ingest.service) agree with
the code: every command they run exists, every file they copy is there."""

from __future__ import annotations

import argparse
import configparser
import json
import os
import re
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from ingest.cli import build_parser
from ingest.config import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]


def commands() -> dict[str, argparse.ArgumentParser]:
    """The subcommands of `ingest`, by name."""
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def as_argv(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    out = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((ROOT / "deploy" / "ingest.service").read_text())
    return parser


def seconds(duration: str) -> float:
    """A compose or systemd duration ("45s", "1m30s", "60") in seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "": 1}
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*(h|min|m|s|)", duration.strip())
    assert parts, f"not a duration: {duration!r}"
    return sum(float(n) * units[u[:1]] for n, u in parts)


# --- docker-compose.yml -------------------------------------------------------------------


def test_compose_runs_postgres_with_a_volume_for_its_data() -> None:
    data = compose()
    postgres = data["services"]["postgres"]
    assert postgres["image"].startswith("postgres:")
    mounts = [str(v).split(":") for v in postgres["volumes"]]
    assert any(m[-1] == "/var/lib/postgresql/data" for m in mounts), mounts
    named = [m[0] for m in mounts if len(m) > 1 and not m[0].startswith((".", "/"))]
    assert set(named) <= set(data.get("volumes") or {})  # named volumes are declared
    assert "healthcheck" in postgres


def test_compose_migrates_once_after_postgres_is_healthy() -> None:
    migrate = compose()["services"]["migrate"]
    assert as_argv(migrate["command"]) == ["migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_compose_worker_runs_after_a_successful_migration() -> None:
    worker = compose()["services"]["worker"]
    assert as_argv(worker["command"]) == ["run"]
    assert worker["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_compose_demo_profile_has_a_simulator_and_a_worker_pointed_at_it() -> None:
    demo = {
        name: service
        for name, service in compose()["services"].items()
        if "demo" in service.get("profiles", [])
    }
    commands_run = {as_argv(s["command"])[0] for s in demo.values() if "command" in s}
    assert {"simulate", "run"} <= commands_run
    (worker,) = [s for s in demo.values() if as_argv(s.get("command", []))[:1] == ["run"]]
    env = worker["environment"]
    for name in ("INGEST_VIDICENTER_URL", "INGEST_ANGUS_CONSOLE_URL", "INGEST_ANGUS_DATA_URL"):
        assert env[name].startswith("http://127.0.0.1:"), name
    json.loads(env["INGEST_ANGUS_STREAMS"])


def test_every_compose_command_is_an_ingest_command_that_parses() -> None:
    known = commands()
    for name, service in compose()["services"].items():
        if "command" not in service:
            continue
        argv = as_argv(service["command"])
        assert argv[0] in known, f"{name}: `ingest {argv[0]}` does not exist"
        build_parser().parse_args(argv)  # exits (SystemExit 2) on an unknown option


def test_every_ingest_variable_in_compose_is_a_setting() -> None:
    settings = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    for name, service in compose()["services"].items():
        env = service.get("environment") or {}
        names = env if isinstance(env, dict) else [e.split("=", 1)[0] for e in env]
        unknown = {n for n in names if n.startswith(ENV_PREFIX)} - settings
        assert not unknown, f"{name}: {sorted(unknown)} are not settings"


def test_compose_gives_the_worker_longer_than_its_shutdown_grace_to_stop() -> None:
    grace = Settings.model_fields["shutdown_grace_s"].default
    for name, service in compose()["services"].items():
        if as_argv(service.get("command", []))[:1] == ["run"]:
            assert seconds(service["stop_grace_period"]) > grace, name


# --- Dockerfile ---------------------------------------------------------------------------


def test_dockerfile_builds_from_a_slim_python_image() -> None:
    froms = [args for keyword, args in dockerfile_instructions() if keyword == "FROM"]
    assert froms and all("python" in f and "slim" in f for f in froms), froms


def test_dockerfile_creates_and_switches_to_a_non_root_user() -> None:
    instructions = dockerfile_instructions()
    users = [(i, args) for i, (keyword, args) in enumerate(instructions) if keyword == "USER"]
    assert users, "no USER instruction"
    index, user = users[-1]
    name = user.split(":")[0]
    assert name not in ("root", "0")
    created = [
        args
        for keyword, args in instructions[:index]
        if keyword == "RUN" and re.search(rf"\b(useradd|adduser)\b.*\b{re.escape(name)}\b", args)
    ]
    assert created, f"USER {name} is never created"


def test_dockerfile_healthcheck_asks_healthz_on_the_default_port() -> None:
    checks = [args for keyword, args in dockerfile_instructions() if keyword == "HEALTHCHECK"]
    assert len(checks) == 1
    port = Settings.model_fields["http_port"].default
    assert f":{port}/healthz" in checks[0]


def test_every_dockerfile_copy_source_exists_in_the_repository() -> None:
    copies = [args for keyword, args in dockerfile_instructions() if keyword in ("COPY", "ADD")]
    assert copies
    for args in copies:
        if args.startswith("["):
            parts = json.loads(args)
        else:
            parts = [p for p in shlex.split(args) if not p.startswith("--")]
        if any(p.startswith("--from") for p in shlex.split(args)):
            continue  # from another build stage
        *sources, _target = parts
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"


def test_dockerfile_runs_the_ingest_command_by_default() -> None:
    instructions = dict(dockerfile_instructions())
    assert json.loads(instructions["ENTRYPOINT"]) == ["ingest"]
    assert json.loads(instructions["CMD"])[0] in commands()


# --- deploy/ingest.service ----------------------------------------------------------------


def test_systemd_unit_restarts_on_failure_and_reads_an_environment_file() -> None:
    service = unit()["Service"]
    assert service["Restart"] == "on-failure"
    assert service["EnvironmentFile"].lstrip("-").startswith("/")


def test_systemd_unit_stops_with_sigterm_after_the_shutdown_grace() -> None:
    service = unit()["Service"]
    assert service["KillSignal"] == "SIGTERM"
    grace = Settings.model_fields["shutdown_grace_s"].default
    assert seconds(service.get("TimeoutStopSec", "90s")) > grace


def test_systemd_unit_starts_ingest_run() -> None:
    argv = shlex.split(unit()["Service"]["ExecStart"])
    assert Path(argv[0]).name == "ingest"
    assert argv[1:] == ["run"]


# --- the command line ---------------------------------------------------------------------


def test_every_command_answers_help_with_exit_0() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}

    def run_help(command: list[str]) -> tuple[list[str], subprocess.CompletedProcess[str]]:
        result = subprocess.run(
            [sys.executable, "-m", "ingest", *command, "--help"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return command, result

    names = sorted(commands())
    assert "simulate" in names
    with ThreadPoolExecutor(max_workers=len(names) + 1) as pool:
        results = list(pool.map(run_help, [[], *[[n] for n in names]]))
    for command, result in results:
        shown = " ".join(["ingest", *command, "--help"])
        assert result.returncode == 0, f"{shown}: {result.stderr}"
        assert result.stdout.startswith("usage: ingest"), shown


@pytest.mark.parametrize("command", sorted(commands()))
def test_every_command_is_described_in_the_readme(command: str) -> None:
    assert f"`ingest {command}" in (ROOT / "README.md").read_text()


def test_the_dependency_layer_stub_has_every_folder_the_build_backend_needs() -> None:
    import tomllib

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    forced = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    stub = next(line for line in dockerfile.splitlines() if line.startswith("RUN mkdir "))
    made = stub.removeprefix("RUN mkdir ").split("&&")[0].split()
    for source in forced:
        assert source in made, f"the stub layer lacks {source}/: pip install . would fail"
