"""The command line: argument parsing, and the one place that builds concrete objects."""

from __future__ import annotations

import argparse
import os
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import date

import anyio
import asyncpg
import structlog

from ingest import __version__, db
from ingest.config import Settings, load_settings
from ingest.errors import ConfigError, MigrationError, UsageError

log = structlog.get_logger(__name__)

EXIT_OK, EXIT_DEAD, EXIT_USAGE = 0, 1, 2


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a day (YYYY-MM-DD)") from None


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ingest",
        description="Keeps PostgreSQL in step with Quividi VidiCenter and Angus.ai audience data.",
    )
    parser.add_argument("--version", action="version", version=f"ingest {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("migrate", help="apply pending SQL migrations (idempotent)")

    bf = sub.add_parser("backfill", help="enqueue and work a range of days for one vendor")
    bf.add_argument("--vendor", required=True, choices=["vidicenter", "angus"])
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
    bf.add_argument(
        "--group-by-demographics", action="store_true", help="aggregated viewers by gender and age"
    )
    bf.add_argument("--content-ids", help="content ids for viewers_apc and proof of play")
    bf.add_argument(
        "--extrapolation-amount", help="locations to extrapolate to (extrapolated types)"
    )
    bf.add_argument(
        "--streams", type=_names, help="Angus stream client_ids (default: all configured)"
    )
    bf.add_argument("--force", action="store_true", help="re-ingest days already done")
    bf.add_argument(
        "--enqueue-only",
        action="store_true",
        help="only enqueue; a running `ingest run` does the work",
    )

    run = sub.add_parser("run", help="the long-running worker")
    run.add_argument("--once", action="store_true", help="drain what is due and exit")

    st = sub.add_parser("status", help="job counts, oldest pending job, recent failures")
    st.add_argument("--json", action="store_true", help="one JSON object")

    sub.add_parser("demo", help="the whole job end to end on the built-in simulator")

    sim = sub.add_parser("simulate", help="serve the vendor simulator alone")
    from ingest.simulator.config import add_arguments

    add_arguments(sim)
    return parser


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@asynccontextmanager
async def open_pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    try:
        pool = await db.create_pool(settings.database_url, max_size=settings.database_pool_size)
    except (OSError, asyncpg.PostgresError) as error:
        raise ConfigError(f"INGEST_DATABASE_URL: cannot connect ({error})") from None
    try:
        yield pool
    finally:
        await pool.close()


async def require_migrated(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        pending = await db.pending_migrations(conn)
    if pending:
        raise ConfigError(
            f"the database lacks {len(pending)} migration(s) ({pending[0]}...): "
            "run `ingest migrate`"
        )


async def cmd_migrate(settings: Settings) -> int:
    try:
        conn = await asyncpg.connect(settings.database_url)
    except (OSError, asyncpg.PostgresError) as error:
        raise ConfigError(f"INGEST_DATABASE_URL: cannot connect ({error})") from None
    try:
        applied = await db.migrate(conn)
    finally:
        await conn.close()
    print(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else ""))
    return EXIT_OK


async def cmd_status(settings: Settings, as_json: bool) -> int:
    from ingest.status import collect_status, format_status, to_json

    async with open_pool(settings) as pool:
        await require_migrated(pool)
        async with pool.acquire() as conn:
            status = await collect_status(conn)
    print(to_json(status) if as_json else format_status(status))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as error:
        for line in str(error).splitlines():
            print(f"ingest: {line}", file=sys.stderr)
        return EXIT_USAGE
    from ingest.logs import configure_logging

    level = settings.log_level
    quiet = args.command == "demo" or (args.command == "backfill" and sys.stderr.isatty())
    if quiet and "log_level" not in settings.model_fields_set:
        # the report (or the progress bar) is the output; INGEST_LOG_LEVEL overrides
        level = "warning"
    configure_logging(level=level, fmt=settings.log_format, secrets=settings.secrets())
    try:
        return anyio.run(_dispatch, args, settings)
    except (ConfigError, UsageError, MigrationError) as error:
        for line in str(error).splitlines():
            print(f"ingest: {line}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


async def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    from ingest import commands

    command: str = args.command
    if command == "migrate":
        return await cmd_migrate(settings)
    if command == "status":
        return await cmd_status(settings, args.json)
    if command == "backfill":
        return await commands.backfill(args, settings)
    if command == "run":
        return await commands.run(settings, once=args.once)
    if command == "demo":
        return await commands.demo(settings)
    if command == "simulate":
        return await commands.simulate(args)
    raise UsageError(f"unknown command {command!r}")
