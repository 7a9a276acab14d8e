"""The command line: parses the arguments and hands them to the command's module."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import date
from typing import NoReturn

import anyio
import asyncpg

from ingest import __version__
from ingest.commands import (
    EXIT_DEAD,
    EXIT_USAGE,
    backfill,
    demo,
    jobs,
    migrate,
    run,
    simulate,
    status,
)
from ingest.config import Settings, load_settings
from ingest.datatypes import REGISTRY, OptionKind, Registry
from ingest.domain import JobStatus, Vendor
from ingest.errors import (
    AuthError,
    ConfigError,
    IngestError,
    MigrationError,
    UsageError,
    VendorRejected,
)
from ingest.logs import configure_logging
from ingest.progress import PROGRESS_EVERY_S
from ingest.simulator.config import add_arguments as add_simulator_arguments

Command = Callable[[argparse.Namespace, Settings], Awaitable[int]]
COMMANDS: dict[str, Command] = {
    "migrate": migrate.main,
    "backfill": backfill.main,
    "run": run.main,
    "status": status.main,
    "jobs": jobs.main,
    "demo": demo.main,
    "simulate": simulate.main,
}


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a day (YYYY-MM-DD)") from None


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds above 0")
    return seconds


def _count(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number >= 0")
    return int(value)


def _ids(value: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items or not all(i.isdigit() for i in items):
        raise argparse.ArgumentTypeError(f"{value!r} is not a comma-separated list of ids")
    return [str(int(i)) for i in items]


def _names(value: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise argparse.ArgumentTypeError("expects a comma-separated list")
    return items


# What the user can set right: bad usage, configuration, credentials, a scope the vendor
# does not know. Exit 2, one line. Any other failure of the command: exit 1, one line.
USER_ERRORS = (ConfigError, UsageError, MigrationError, AuthError, VendorRejected)


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error in one line (the usage block is in `--help`)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"ingest: {message} (see `{self.prog} --help`)\n")


def build_parser(registry: Registry = REGISTRY) -> argparse.ArgumentParser:
    parser = Parser(
        prog="ingest",
        description="Keeps PostgreSQL in step with Quividi VidiCenter and Angus.ai audience data.",
    )
    parser.add_argument("--version", action="version", version=f"ingest {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("migrate", help="apply pending SQL migrations (idempotent)")
    _add_backfill(sub, registry)
    run_parser = sub.add_parser("run", help="the long-running worker")
    run_parser.add_argument("--once", action="store_true", help="drain what is due and exit")
    st = sub.add_parser(
        "status",
        help="job counts, days by data type, oldest pending job, recent failures; "
        "exit 1 when a job is dead",
    )
    st.add_argument("--json", action="store_true", help="one JSON object")
    _add_jobs(sub)
    sub.add_parser("demo", help="the whole job end to end on the built-in simulator")
    add_simulator_arguments(sub.add_parser("simulate", help="serve the vendor simulator alone"))
    return parser


def _add_backfill(sub: argparse._SubParsersAction[Parser], registry: Registry) -> None:
    bf = sub.add_parser("backfill", help="enqueue and work a range of days for one vendor")
    bf.add_argument("--vendor", required=True, choices=["vidicenter", "angus"])
    bf.add_argument(
        "--account",
        metavar="HOST/USER",
        help="the VidiCenter account, when several are configured (e.g. vidicenter.quividi.com/me)",
    )
    bf.add_argument("--data-type", help="VidiCenter data type (viewers, ots, gate, ...)")
    bf.add_argument(
        "--resolution",
        help="time resolution (VidiCenter: 1h, finest, ...; Angus: by_hour, by_day, global)",
    )
    bf.add_argument("--from", dest="first", required=True, type=_day, metavar="DAY")
    bf.add_argument("--to", dest="last", required=True, type=_day, metavar="DAY")
    bf.add_argument("--locations", type=_ids, help="location ids, e.g. 1,2,3")
    bf.add_argument("--sites", type=_ids, help="site ids")
    bf.add_argument("--location-tags", type=_ids, help="location tag ids")
    bf.add_argument("--site-tags", type=_ids, help="site tag ids")
    for option in registry.options():  # each data type's options, declared in the registry
        if option.kind is OptionKind.flag:
            bf.add_argument(option.flag, dest=option.name, action="store_true", help=option.help)
        else:
            bf.add_argument(option.flag, dest=option.name, help=option.help)
    bf.add_argument(
        "--streams", type=_names, help="Angus stream client_ids (default: all configured)"
    )
    bf.add_argument("--force", action="store_true", help="re-ingest days already done")
    bf.add_argument(
        "--enqueue-only",
        action="store_true",
        help="only enqueue; a running `ingest run` does the work",
    )
    bf.add_argument(
        "--plan",
        action="store_true",
        help="print the jobs, the exports they would go out in and their cost, then exit;"
        " calls no vendor",
    )
    bf.add_argument(
        "--progress-every",
        type=_seconds,
        default=PROGRESS_EVERY_S,
        metavar="SECONDS",
        help=f"off a terminal, log the progress this often (default {PROGRESS_EVERY_S:g})",
    )


def _add_jobs(sub: argparse._SubParsersAction[Parser]) -> None:
    jobs_parser = sub.add_parser("jobs", help="list, retry or cancel jobs of the ledger")
    actions = jobs_parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    helps = {
        "list": "the matching jobs, by day",
        "retry": "matching dead jobs back to pending, tries counted from zero",
        "cancel": "remove matching pending and dead jobs from the ledger (a filter is required)",
    }
    for action, text in helps.items():
        p = actions.add_parser(action, help=text, description=text)
        p.add_argument("--status", choices=[s.value for s in JobStatus])
        p.add_argument("--vendor", choices=[v.value for v in Vendor])
        p.add_argument("--data-type", help="e.g. viewers, ots, entities (Angus)")
        p.add_argument("--from", dest="first", type=_day, metavar="DAY", help="first day")
        p.add_argument("--to", dest="last", type=_day, metavar="DAY", help="last day")
        if action == "list":
            p.add_argument("--json", action="store_true", help="one JSON object")
            p.add_argument(
                "--limit", type=_count, default=100, help="most jobs shown (default 100; 0: all)"
            )


def _fail(error: object, code: int = EXIT_USAGE) -> int:
    for line in str(error).splitlines() or [type(error).__name__]:
        print(f"ingest: {line}", file=sys.stderr)
    return code


def _failed(error: Exception) -> int:
    """The exit status and one line for a command's failure; a bug goes on up."""
    leaf: BaseException = error
    while isinstance(leaf, BaseExceptionGroup) and len(leaf.exceptions) == 1:
        leaf = leaf.exceptions[0]
    if isinstance(leaf, USER_ERRORS):
        return _fail(leaf)
    if isinstance(leaf, IngestError):  # the vendor failed the command (its jobs keep their own)
        return _fail(leaf, EXIT_DEAD)
    if isinstance(leaf, OSError | asyncpg.PostgresError):
        return _fail(f"{type(leaf).__name__}: {leaf}", EXIT_DEAD)
    raise error


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as error:
        return _fail(error)
    level = settings.log_level
    quiet = args.command == "demo" or (args.command == "backfill" and sys.stderr.isatty())
    if quiet and "log_level" not in settings.model_fields_set:
        # the report (or the progress bar) is the output; INGEST_LOG_LEVEL overrides
        level = "warning"
    configure_logging(level=level, fmt=settings.log_format, secrets=settings.secrets())
    try:
        return anyio.run(COMMANDS[args.command], args, settings)
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        return _failed(error)
