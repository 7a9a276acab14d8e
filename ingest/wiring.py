"""The composition root: the one place that builds concrete objects (the pool, HTTP
sessions, call budgets, vendor clients) and the frozen pipeline context from them."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import structlog

from ingest import db
from ingest.budget import CallBudget
from ingest.config import Settings, VidiCenterAccount
from ingest.datatypes import REGISTRY, Registry
from ingest.errors import ConfigError
from ingest.ledger import accounts
from ingest.ledger.builds import BuildSeen, recent_builds, record_build
from ingest.ledger.fleets import FleetStore
from ingest.metrics import Metrics
from ingest.pipeline import Context, Outcome
from ingest.policy import RetryPolicy
from ingest.topology import UploadWatch
from ingest.vendors.angus import AngusClient
from ingest.vendors.builds import KEPT, BuildTimes, Seen
from ingest.vendors.http import new_session
from ingest.vendors.vidicenter import VidiCenterClient

log = structlog.get_logger(__name__)
T = TypeVar("T")

# how old an account's list of last uploads may be when a job asks whether its day is
# final: one call in five minutes per account, and an older list only keeps days open
FLEET_MAX_AGE_S = 300.0


def worker_id() -> str:
    """This process's name as a lease owner: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


async def _connected(connect: Awaitable[T]) -> T:
    """The pool or connection; a database that cannot be reached is a configuration error."""
    try:
        return await connect
    except (OSError, asyncpg.PostgresError) as error:
        raise ConfigError(f"INGEST_DATABASE_URL: cannot connect ({error})") from None


@asynccontextmanager
async def open_pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    """The worker's pool, for the block's life."""
    pool = await _connected(
        db.create_pool(settings.database_url, max_size=settings.database_pool_size)
    )
    try:
        yield pool
    finally:
        await pool.close()


@asynccontextmanager
async def open_connection(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    """One connection of its own (for migrations), for the block's life."""
    conn = await _connected(asyncpg.connect(settings.database_url))
    try:
        yield conn
    finally:
        await conn.close()


async def require_migrated(pool: asyncpg.Pool) -> None:
    """ConfigError unless every migration is applied."""
    async with pool.acquire() as conn:
        pending = await db.pending_migrations(conn)
    if pending:
        raise ConfigError(
            f"the database lacks {len(pending)} migration(s) ({pending[0]}...): "
            "run `ingest migrate`"
        )


async def hand_over_unassigned(
    conn: db.Connection, settings: Settings, registry: Registry = REGISTRY
) -> str | None:
    """Give the VidiCenter jobs and rows from before accounts to the one configured
    VidiCenter account; returns what was done (None: nothing to do).

    With no VidiCenter account they wait; with several, which one owns them cannot be
    told: ConfigError, one line.
    """
    names = [a.name for a in settings.vidicenter_account_list]
    if len(names) == 1:
        done = await accounts.assign_unassigned(conn, names[0], registry)
        if done.any:
            log.info("accounts.handed_over", account=names[0], jobs=done.jobs, rows=done.rows)
            return f"{done.describe()} from before accounts handed to {names[0]}"
        return None
    found = await accounts.unassigned(conn, registry)
    if not found.any:
        return None
    if not names:
        return f"{found.describe()} from before accounts wait for a VidiCenter account"
    raise ConfigError(
        f"INGEST_VIDICENTER_ACCOUNTS: the database holds {found.describe()} from before "
        f"accounts, and {len(names)} VidiCenter accounts are configured: run `ingest migrate` "
        "once with only the account that owns them"
    )


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=settings.job_max_attempts,
        base_s=settings.job_retry_base_s,
        max_s=settings.job_retry_max_s,
        rebuilds_after_failure=settings.vidicenter_rebuilds_after_failure,
    )


@dataclass(frozen=True)
class Wired:
    """The pipeline context, and each VidiCenter account's concrete client and fleet (by
    account name) for topology calls."""

    ctx: Context
    vidicenter: dict[str, VidiCenterClient]
    fleets: dict[str, UploadWatch]


@asynccontextmanager
async def open_context(
    settings: Settings,
    pool: asyncpg.Pool,
    *,
    metrics: Metrics | None = None,
    on_outcome: Callable[[str, Outcome], None] | None = None,
    on_budget_wait: Callable[[str, float], None] | None = None,
    on_poll_wait: Callable[[float], None] | None = None,
    registry: Registry = REGISTRY,
) -> AsyncIterator[Wired]:
    """A pipeline context with a client for every configured vendor account, for the
    block's life.

    `on_budget_wait(account, seconds)` and `on_poll_wait(seconds)` hear of every wait for
    the call budget and between export polls, as the metrics do (a backfill's progress).
    """
    traces = [metrics.trace_config()] if metrics is not None else None
    async with AsyncExitStack() as stack:
        waits = _Waits(metrics, on_budget_wait, on_poll_wait)
        vidicenter = await _vidicenter_clients(settings, pool, stack, traces, waits)
        fleets = {
            name: UploadWatch(
                client,
                account=name,
                max_age_s=FLEET_MAX_AGE_S,
                silence_s=settings.upload_silence_s,
                store=FleetStore(pool),
            )
            for name, client in vidicenter.items()
        }
        angus = await _angus_client(settings, stack, traces) if settings.angus_configured else None
        ctx = Context(
            pool=pool,
            settings=settings,
            owner=worker_id(),
            policy=retry_policy(settings),
            registry=registry,
            vidicenter=dict(vidicenter),
            fleets=fleets,
            angus=angus,
            streams={s.client_id: s for s in settings.angus_streams},
            on_outcome=on_outcome,
        )
        yield Wired(ctx, vidicenter, fleets)


async def _vidicenter_clients(
    settings: Settings,
    pool: asyncpg.Pool,
    stack: AsyncExitStack,
    traces: list[aiohttp.TraceConfig] | None,
    waits: _Waits,
) -> dict[str, VidiCenterClient]:
    """A client per configured VidiCenter account, by account name."""
    clients: dict[str, VidiCenterClient] = {}
    # the vendor counts connections per IP: accounts on one host share a session
    sessions: dict[str, aiohttp.ClientSession] = {}
    for account in settings.vidicenter_account_list:
        host = urlsplit(account.url).netloc
        if host not in sessions:
            sessions[host] = await stack.enter_async_context(
                new_session(
                    max_connections=settings.vidicenter_max_connections,
                    timeout_s=settings.http_timeout_s,
                    trace_configs=traces,
                )
            )
        builds = await _build_times(pool, account.name)
        clients[account.name] = _vidicenter_client(
            settings, account, pool, sessions[host], waits, builds
        )
    return clients


async def _build_times(pool: asyncpg.Pool, account: str) -> BuildTimes:
    """The account's build times: those the database keeps, and each new one kept there,
    so that a new process or another replica polls its first exports when they are due
    instead of probing."""

    async def keep(seen: Seen) -> None:
        await record_build(pool, account, BuildSeen(seen.kind, seen.rows, seen.seconds), kept=KEPT)

    seed = [Seen(b.kind, b.rows, b.seconds) for b in await recent_builds(pool, account, kept=KEPT)]
    return BuildTimes(seed, on_observe=keep)


async def _angus_client(
    settings: Settings, stack: AsyncExitStack, traces: list[aiohttp.TraceConfig] | None
) -> AngusClient:
    session = await stack.enter_async_context(
        new_session(
            max_connections=settings.angus_max_concurrency,
            timeout_s=settings.http_timeout_s,
            trace_configs=traces,
        )
    )
    return AngusClient(
        session,
        console_url=settings.angus_console_url,
        data_url=settings.angus_data_url,
        timeout_s=settings.http_timeout_s,
        retries=settings.http_retries,
        max_concurrency=settings.angus_max_concurrency,
        token_margin_s=settings.angus_token_margin_s,
        max_pages=settings.angus_max_pages,
    )


@dataclass(frozen=True)
class _Waits:
    """Who hears of the VidiCenter client's waits: the metrics and one more listener."""

    metrics: Metrics | None
    on_budget_wait: Callable[[str, float], None] | None
    on_poll_wait: Callable[[float], None] | None

    def budget_waited(self, account: str, seconds: float) -> None:
        if self.metrics is not None:
            self.metrics.budget_waited(account, seconds)
        if self.on_budget_wait is not None:
            self.on_budget_wait(account, seconds)

    def poll_waited(self, seconds: float) -> None:
        if self.metrics is not None:
            self.metrics.poll_wait.observe(seconds)
        if self.on_poll_wait is not None:
            self.on_poll_wait(seconds)


def _vidicenter_client(
    settings: Settings,
    account: VidiCenterAccount,
    pool: asyncpg.Pool,
    session: aiohttp.ClientSession,
    waits: _Waits,
    builds: BuildTimes,
) -> VidiCenterClient:
    budget = CallBudget(
        pool,
        f"vidicenter:{account.name}",
        per_minute=settings.vidicenter_calls_per_minute,
        at_once=settings.vidicenter_max_connections,
        # a call cannot wait for the vendor longer than its timeout: a place is leased for
        # a little longer (an export's answer renews it as it arrives), so a killed worker's
        # calls stop holding connection places then, and not sooner, since the vendor may
        # still be answering them (releasing them when the worker dies let a third
        # connection through in a test)
        stale_s=settings.http_timeout_s + 1,
        on_wait=waits.budget_waited,
    )
    return VidiCenterClient(
        session,
        base_url=account.url,
        username=account.username,
        token=account.token,
        account=account.name,
        budget=budget,
        retries=settings.http_retries,
        poll_initial_s=settings.vidicenter_poll_initial_s,
        poll_max_s=settings.vidicenter_poll_max_s,
        deadline_s=settings.vidicenter_export_deadline_s,
        on_poll_wait=waits.poll_waited,
        builds=builds,
    )
