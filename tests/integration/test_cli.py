import os
import subprocess
import sys

COMMANDS = ["migrate", "backfill", "run", "status", "jobs", "demo", "simulate"]


def ingest(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    base.update(env)
    return subprocess.run(
        [sys.executable, "-m", "ingest", *args],
        env=base,
        text=True,
        capture_output=True,
        timeout=60,
    )


def test_help_lists_every_command() -> None:
    result = ingest("--help")
    assert result.returncode == 0
    for command in COMMANDS:
        assert command in result.stdout


def test_unknown_command_exits_2_with_usage() -> None:
    result = ingest("frobnicate")
    assert result.returncode == 2
    assert "usage: ingest" in result.stderr


def test_unknown_option_exits_2_with_usage() -> None:
    result = ingest("status", "--colour")
    assert result.returncode == 2
    assert "usage: ingest" in result.stderr and "--colour" in result.stderr


def test_bad_configuration_exits_2_with_one_line_naming_the_variable() -> None:
    result = ingest("status", INGEST_HTTP_PORT="eighty")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ingest: INGEST_HTTP_PORT:"), lines
    assert "Traceback" not in result.stderr


def test_unreachable_database_exits_2_naming_the_variable() -> None:
    result = ingest("status", INGEST_DATABASE_URL="postgresql://postgres@127.0.0.1:1/none")
    assert result.returncode == 2
    assert result.stderr.strip().startswith("ingest: INGEST_DATABASE_URL: cannot connect")


def test_migrate_creates_the_schemas(empty_db_url: str) -> None:
    result = ingest("migrate", INGEST_DATABASE_URL=empty_db_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("applied ")
    again = ingest("migrate", INGEST_DATABASE_URL=empty_db_url)
    assert again.stdout.strip() == "applied 0 migration(s)"
