import os
import subprocess
import sys
from datetime import date, timedelta

import pytest

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


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one line a failed command printed on stderr (and nothing on stdout)."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and result.stdout == "", result.stdout + result.stderr
    return lines[0]


def test_unknown_command_exits_2_with_one_line() -> None:
    result = ingest("frobnicate")
    assert result.returncode == 2
    assert one_line(result).startswith("ingest: argument COMMAND: invalid choice: 'frobnicate'")


def test_unknown_option_exits_2_with_one_line_naming_it() -> None:
    result = ingest("status", "--colour")
    assert result.returncode == 2
    line = one_line(result)
    assert line.startswith("ingest: unrecognized arguments: --colour"), line
    assert line.endswith("(see `ingest --help`)"), line


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["backfill", "--vendor", "vidicenter", "--from", "2024-13-01", "--to", "2024-01-01"],
         "argument --from: '2024-13-01' is not a day (YYYY-MM-DD)"),
        (["backfill", "--vendor", "vidicenter", "--from", "2024-01-01"],
         "the following arguments are required: --to"),
        (["backfill", "--vendor", "nope"], "argument --vendor: invalid choice: 'nope'"),
        (["backfill", "--vendor", "vidicenter", "--from", "2024-01-01", "--to", "2024-01-01",
          "--locations", "1,x"], "argument --locations: '1,x' is not a comma-separated list"),
        ([], "the following arguments are required: COMMAND"),
    ],
    ids=["bad-day", "missing-option", "bad-choice", "bad-ids", "no-command"],
)  # fmt: skip
def test_a_command_line_error_is_one_line_naming_the_argument(args: list[str], named: str) -> None:
    result = ingest(*args)
    assert result.returncode == 2
    assert one_line(result).startswith(f"ingest: {named}")


def test_a_day_after_today_is_refused_with_exit_2_before_any_io() -> None:
    future = (date.today() + timedelta(days=2)).isoformat()
    result = ingest(
        "backfill", "--vendor", "angus", "--from", future, "--to", future,
        INGEST_ANGUS_STREAMS='[{"username": "u", "client_id": "c", "access_token": "t"}]',
        INGEST_DATABASE_URL="postgresql://postgres@127.0.0.1:1/none",
    )  # fmt: skip
    assert result.returncode == 2
    assert one_line(result).startswith(f"ingest: --to: {future} is after today")


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
