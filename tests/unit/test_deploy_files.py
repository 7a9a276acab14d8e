"""The deployment files (docker-compose.yml, Dockerfile, .dockerignore,
deploy/ingest.service, the lock) agree with the code: every command they run exists, every
file they copy is there, every install goes through the lock. tests/deploy builds and runs
them for real."""

from __future__ import annotations

import argparse
import configparser
import fnmatch
import http.server
import json
import os
import re
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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


# After SIGTERM the worker gives running jobs the grace, then has 15 s more to hand them back
# before its task group is cancelled (the `run` command's signal handler); the engine's or
# systemd's kill timeout must leave a margin over that.
HAND_BACK_S = 15
MARGIN_S = 10


def stop_deadline(grace: float) -> float:
    """The latest a worker with this grace exits after SIGTERM."""
    return grace + HAND_BACK_S


def dockerignored(path: str) -> bool:
    """Whether .dockerignore leaves the path out of the build context (its last matching
    pattern wins; `!` re-includes; a pattern that matches a folder covers its contents)."""
    ignored = False
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.removeprefix("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatchcase(p, pattern) for p in prefixes) or (
            pattern.startswith("**/") and any(fnmatch.fnmatchcase(p, pattern[3:]) for p in parts)
        ):
            ignored = not negate
    return ignored


@contextmanager
def healthz_server(status: int) -> Iterator[int]:
    """A server on a free loopback port whose /healthz answers `status`; yields the port."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status if self.path == "/healthz" else 404)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def run_healthcheck(cwd: Path, **env: str) -> int:
    """The image's health check script, run in `cwd` with only these INGEST_ variables."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    result = subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "healthcheck.py")],
        cwd=cwd,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    return result.returncode


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
            assert seconds(service["stop_grace_period"]) >= stop_deadline(grace) + MARGIN_S, name


def test_compose_restarts_postgres_and_publishes_it_on_the_hosts_loopback_only() -> None:
    services = compose()["services"]
    for name, service in services.items():
        if str(service.get("image", "")).startswith("postgres:"):
            assert service["restart"] in ("always", "unless-stopped"), name
        for mapping in service.get("ports", []):
            published = str(mapping).split(":")
            if published[-1] == "5432":
                assert published[0] == "127.0.0.1", f"{name}: {mapping} is not loopback only"
    assert services["postgres"]["ports"], "the database is not published for BI tools"


def test_compose_takes_the_database_password_from_env_with_a_default() -> None:
    services = compose()["services"]
    password = services["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert re.fullmatch(r"\$\{POSTGRES_PASSWORD:-[^}]+\}", password), password
    for name in ("migrate", "worker"):
        url = services[name]["environment"]["INGEST_DATABASE_URL"]
        assert f":{password}@postgres:5432/" in url, name


def test_compose_demo_writes_into_a_database_of_its_own() -> None:
    services = compose()["services"]
    real = urlsplit(services["worker"]["environment"]["INGEST_DATABASE_URL"].replace("$", ""))
    demo = [s for s in services.values() if "demo" in s.get("profiles", [])]
    urls = [
        urlsplit(s["environment"]["INGEST_DATABASE_URL"])
        for s in demo
        if "INGEST_DATABASE_URL" in s.get("environment", {})
    ]
    assert urls
    for url in urls:
        assert (url.hostname, url.path) != (real.hostname, real.path), url.geturl()
        db_service = services[str(url.hostname)]
        assert "demo" in db_service["profiles"]  # started only with the demo


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


def test_dockerfile_healthcheck_runs_the_script_that_follows_the_workers_port() -> None:
    instructions = dockerfile_instructions()
    checks = [args for keyword, args in instructions if keyword == "HEALTHCHECK"]
    assert len(checks) == 1
    assert "8080" not in checks[0]  # the port comes from the settings, not the Dockerfile
    command = json.loads(checks[0].split(" CMD ", 1)[1])
    script = command[-1]
    copied = [args.split() for keyword, args in instructions if keyword == "COPY"]
    assert ["deploy/healthcheck.py", script] in copied


def test_the_healthcheck_asks_the_port_of_the_environment_or_dotenv(tmp_path: Path) -> None:
    with healthz_server(200) as port:
        assert run_healthcheck(tmp_path, INGEST_HTTP_PORT=str(port)) == 0
        (tmp_path / ".env").write_text(f"INGEST_HTTP_PORT={port}\n")
        assert run_healthcheck(tmp_path) == 0
    assert run_healthcheck(tmp_path) == 1  # nothing serves that port any more


def test_the_healthcheck_fails_on_a_stuck_worker_and_passes_with_the_server_off(
    tmp_path: Path,
) -> None:
    with healthz_server(503) as port:
        assert run_healthcheck(tmp_path, INGEST_HTTP_PORT=str(port)) == 1
    assert run_healthcheck(tmp_path, INGEST_HTTP_PORT="0") == 0


def test_dockerignore_keeps_secrets_and_the_venv_out_of_the_build_context() -> None:
    for path in (
        ".env",
        ".venv/bin/python",
        ".git/config",
        "tests/conftest.py",
        "x/__pycache__/a.pyc",
    ):
        assert dockerignored(path), f"{path} goes into the build context"
    copies = [args for keyword, args in dockerfile_instructions() if keyword == "COPY"]
    for args in copies:
        *sources, _target = args.split()
        for source in sources:
            inside = ROOT / source
            files = [inside] if inside.is_file() else [f for f in inside.rglob("*") if f.is_file()]
            for f in files:
                rel = f.relative_to(ROOT).as_posix()
                assert "__pycache__" in rel or not dockerignored(rel), f"COPY {rel}: ignored"


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
    assert seconds(service.get("TimeoutStopSec", "90s")) >= stop_deadline(grace) + MARGIN_S


def test_systemd_unit_does_not_restart_on_a_bad_configuration() -> None:
    service = unit()["Service"]
    assert "2" in service["RestartPreventExitStatus"].split()  # exit 2: bad usage or config


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


def test_the_project_layer_copies_every_folder_the_build_backend_needs() -> None:
    import tomllib

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    forced = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    copies = [args.split() for keyword, args in dockerfile_instructions() if keyword == "COPY"]
    (project_dir,) = [c[-1] for c in copies if "pyproject.toml" in c[:-1]]
    for source in forced:
        targets = [c[-1] for c in copies if c[:-1] == [source]]
        assert targets, f"the image lacks {source}/: pip install . would fail"
        assert Path(targets[0]) == Path(project_dir) / source


# --- pinned dependencies ------------------------------------------------------------------


def test_the_lock_matches_pyproject_and_the_requirements_files_match_the_lock() -> None:
    uv = Path(sys.executable).with_name("uv")
    assert uv.exists(), "uv is missing: install the test extra (requirements/test.txt)"
    result = subprocess.run(
        ["bash", "requirements/lock.sh", "--check"],
        cwd=ROOT,
        env={**os.environ, "UV": str(uv)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("path", "lock"),
    [
        ("Dockerfile", "requirements/runtime.txt"),
        (".ci/run", "requirements/test.txt"),
        ("README.md", "requirements/runtime.txt"),
    ],
)
def test_installs_go_through_the_lock_with_hashes(path: str, lock: str) -> None:
    installs = [
        line
        for line in re.sub(r"\\\n", " ", (ROOT / path).read_text()).splitlines()
        if re.search(r"pip install", line) and "uv" not in line.split()
    ]
    assert installs, f"{path} installs nothing"
    assert any(lock in line and "--require-hashes" in line for line in installs), installs
    for line in installs:  # the project itself comes without its dependencies
        if re.search(r"pip install[^#]*( -e)? \.(\[| |$)", line):
            assert "--no-deps" in line, line
