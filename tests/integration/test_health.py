"""A database blip stalls nothing, and what is stuck shows: against real PostgreSQL.

- a batch whose work ends in a database error hands its jobs back once the database
  answers, its export kept for the next claim;
- export places held by workers that are gone are counted, logged and listed;
- /readyz says why the worker is not ready.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import date
from typing import Any

import aiohttp
import anyio
import asyncpg
import pytest
from structlog.testing import capture_logs

from ingest import ledger
from ingest.commands.status import collect_status, format_status
from ingest.config import load_settings
from ingest.domain import Job, JobSpec, Scope, Vendor
from ingest.health import Health
from ingest.ledger import exports, presence
from ingest.metrics import Metrics
from ingest.pipeline import Context
from ingest.server import Liveness, create_app, serving
from ingest.wiring import retry_policy
from ingest.worker import run_batch, work_vendor

from .fake_exports import FinishedAtOnce
from .ledger_support import packing

DAY = date(2024, 3, 5)
ACCOUNT = "vidicenter.quividi.com/u"  # the tests' settings' one account
STALE_AFTER_S = exports.stale_after_s(3600.0)


def specs(*locations: str) -> list[JobSpec]:
    return [
        JobSpec(
            Vendor.vidicenter, "viewers", "1h", Scope.parse(f"location:{loc}"), DAY, {}, ACCOUNT
        )
        for loc in locations
    ]


async def claim(pool: asyncpg.Pool, owner: str, *locations: str) -> list[Job]:
    async with pool.acquire() as conn:
        await ledger.enqueue_jobs(conn, specs(*locations), force=False)
        return await ledger.claim_batch(
            conn, Vendor.vidicenter, owner=owner, lease_s=300, packing=packing(20)
        )


async def reserve(pool: asyncpg.Pool, jobs: list[Job], owner: str, query: str) -> None:
    async with pool.acquire() as conn:
        assert await ledger.reserve_export(
            conn, jobs, query, owner=owner, max_exports=3, stale_after_s=STALE_AFTER_S
        )


# --- a batch whose work ends in a database error -----------------------------------------


class FlakyPool:
    """The test's pool, whose `execute` fails `down` more times as if PostgreSQL were away."""

    def __init__(self, pool: asyncpg.Pool, down: int) -> None:
        self._pool = pool
        self.down = down

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)

    async def execute(self, *args: Any, **kwargs: Any) -> str:
        if self.down:
            self.down -= 1
            raise ConnectionRefusedError(111, "Connect call failed")
        return await self._pool.execute(*args, **kwargs)


class DatabaseGoneMidExport:
    """An export source whose call dies with the database (the budget's statement)."""

    async def run_export(
        self,
        query: str,
        *,
        force: bool = False,
        on_started: Callable[[], Awaitable[None]] | None = None,
    ) -> dict[str, Any]:
        raise ConnectionResetError(104, "Connection reset by peer")


async def test_a_batch_whose_work_ends_in_a_database_error_hands_its_jobs_back_when_it_answers(
    pool: asyncpg.Pool,
) -> None:
    settings = load_settings(vidicenter_username="u", vidicenter_token="t")
    flaky = FlakyPool(pool, down=4)  # the failure's record, then three hand-back tries
    ctx = Context(
        pool=flaky,  # type: ignore[arg-type]
        settings=settings,
        owner="w1",
        policy=retry_policy(settings),
        vidicenter={ACCOUNT: DatabaseGoneMidExport()},
    )
    jobs = await claim(pool, "w1", "1001", "1002")
    health = Health(stall_s=0)
    with capture_logs() as logs:
        outcome = await run_batch(ctx, jobs, health)

    assert outcome.released == 2
    assert flaky.down == 0
    rows = await pool.fetch(
        "SELECT status, attempts, lease_owner, export_query IS NOT NULL AS out"
        " FROM ingest.jobs ORDER BY id"
    )
    # back in the queue untried, the export place kept for the next claim to resume
    assert [tuple(r) for r in rows] == [("pending", 0, None, True)] * 2
    assert [e["event"] for e in logs if e["log_level"] != "debug"][-3:] == [
        "db.lost",
        "db.back",
        "job.handed_back",
    ]
    assert not health.db.down


# --- export places held by workers that are gone ----------------------------------------


async def test_export_places_of_a_worker_that_is_gone_are_counted_logged_and_listed(
    pool: asyncpg.Pool,
) -> None:
    gone = await claim(pool, "host:1:gone", "1001", "1002")
    await reserve(pool, gone, "host:1:gone", "q-gone")
    await presence.beat(pool, "host:2:alive")
    alive = await claim(pool, "host:2:alive", "1003")
    await reserve(pool, alive, "host:2:alive", "q-alive")
    # the one that is gone beat long ago
    await pool.execute(
        "INSERT INTO ingest.workers (owner, seen_at)"
        " VALUES ('host:1:gone', now() - interval '1 minute')"
    )

    assert await exports.orphaned_exports(pool, stale_after_s=STALE_AFTER_S) == {"host:1:gone": 1}

    metrics = Metrics()
    await metrics.refresh(pool)
    assert metrics.registry.get_sample_value("ingest_export_places_orphaned") == 1
    assert metrics.registry.get_sample_value("ingest_exports_in_flight") == 2

    status = await collect_status(pool)
    assert status["orphaned_exports"] == {"host:1:gone": 1}
    assert "export places held by workers that are gone: 1 (host:1:gone: 1)" in format_status(
        status
    )

    # the worker itself warns, once it has said it is alive
    settings = load_settings(vidicenter_username="u", vidicenter_token="t")
    ctx = Context(pool=pool, settings=settings, owner="host:3:me", policy=retry_policy(settings))
    with capture_logs() as logs:
        await work_vendor(ctx, Vendor.vidicenter, loops=1, only_ids=[])
    (warning,) = [e for e in logs if e["event"] == "export.places_orphaned"]
    assert (warning["places"], warning["owners"]) == (1, ["host:1:gone"])
    assert "host:3:me" in await presence.live_workers(pool)

    # once the leases ran out, nothing holds a place for the worker that is gone
    await pool.execute(
        "UPDATE ingest.jobs SET status = 'pending', lease_owner = NULL WHERE lease_owner = $1",
        "host:1:gone",
    )
    assert await exports.orphaned_exports(pool, stale_after_s=STALE_AFTER_S) == {}


# --- /readyz ----------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def readyz_of(
    pool: asyncpg.Pool, health: Health
) -> AsyncIterator[Callable[[], Awaitable[tuple[int, dict[str, Any]]]]]:
    app = create_app(pool, Metrics(), Liveness(max_silence_s=30), health)
    async with serving(app, "127.0.0.1", 0) as port, aiohttp.ClientSession() as http:

        async def readyz() -> tuple[int, dict[str, Any]]:
            async with http.get(f"http://127.0.0.1:{port}/readyz") as response:
                return response.status, await response.json()

        yield readyz


async def test_readyz_reports_a_worker_stalled_with_jobs_due_until_a_job_moves(
    pool: asyncpg.Pool,
) -> None:
    clock = Clock()
    health = Health(stall_s=600, vendors=["vidicenter"], clock=clock)
    async with readyz_of(pool, health) as readyz:
        assert await readyz() == (200, {"ready": True, "reasons": [], "paused": {}})
        clock.now += 601
        assert (await readyz())[0] == 200  # nothing is due
        async with pool.acquire() as conn:
            await ledger.enqueue_jobs(conn, specs("1001", "1002"), force=False)
        status, body = await readyz()
        assert status == 503 and body["ready"] is False
        assert body["reasons"] == [
            "stalled: 2 job(s) due and none moved for 601 s (INGEST_STALL_S=600)"
        ]
        health.progressed()
        assert (await readyz())[0] == 200


async def test_readyz_names_a_paused_vendor_and_why(pool: asyncpg.Pool) -> None:
    health = Health(stall_s=600, vendors=["vidicenter"])
    health.pause("vidicenter", "credentials refused: vidicenter answered 401: Invalid API Token")
    async with readyz_of(pool, health) as readyz:
        status, body = await readyz()
    assert status == 503
    assert body == {
        "ready": False,
        "reasons": [
            "vidicenter paused: credentials refused: vidicenter answered 401: Invalid API Token"
        ],
        "paused": {"vidicenter": "credentials refused: vidicenter answered 401: Invalid API Token"},
    }


async def test_readyz_says_the_database_is_unavailable(db_url: str) -> None:
    dead = await asyncpg.create_pool(db_url, min_size=0, max_size=1)
    assert dead is not None
    await dead.close()
    health = Health(stall_s=600)
    async with readyz_of(dead, health) as readyz:
        status, body = await readyz()
    assert status == 503
    (reason,) = body["reasons"]
    assert reason.startswith("database unavailable: ")


@pytest.mark.parametrize("vendors", [[], ["angus"]])
async def test_readyz_counts_only_the_due_jobs_of_the_vendors_it_works(
    pool: asyncpg.Pool, vendors: list[str]
) -> None:
    clock = Clock()
    health = Health(stall_s=1, vendors=vendors, clock=clock)
    async with pool.acquire() as conn:
        await ledger.enqueue_jobs(conn, specs("1001"), force=False)  # VidiCenter jobs
    clock.now += 10
    async with readyz_of(pool, health) as readyz:
        assert (await readyz())[0] == 200


# --- a claim whose answer was lost ------------------------------------------------------


class LostClaimAnswer:
    """The test's pool; the first transaction (the first claim) commits, then its connection
    closes before the answer reaches the worker, as when the database goes away then."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self.lost = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)

    @asynccontextmanager
    async def acquire(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        async with self._pool.acquire(*args, **kwargs) as conn:
            yield conn if self.lost else _LosesCommitAnswer(conn, self)


class _LosesCommitAnswer:
    def __init__(self, conn: Any, pool: LostClaimAnswer) -> None:
        self._conn = conn
        self._pool = pool

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        async with self._conn.transaction():
            yield
        self._pool.lost = True
        raise asyncpg.InterfaceError(
            "cannot call Transaction.__aexit__(): the connection is closed"
        )


async def test_jobs_a_claim_took_while_its_answer_was_lost_are_handed_back_not_left_leased(
    pool: asyncpg.Pool,
) -> None:
    settings = load_settings(
        vidicenter_username="u", vidicenter_token="t", worker_idle_poll_s=0.1, job_lease_s=300
    )
    flaky = LostClaimAnswer(pool)
    ctx = Context(
        pool=flaky,  # type: ignore[arg-type]
        settings=settings,
        owner="w1",
        policy=retry_policy(settings),
        vidicenter={ACCOUNT: FinishedAtOnce()},
    )
    async with pool.acquire() as conn:
        ids = await ledger.enqueue_jobs(conn, specs("1001", "1002"), force=False)
    with capture_logs() as logs, anyio.fail_after(20):  # not the 300 s of the lease
        await work_vendor(ctx, Vendor.vidicenter, loops=1, only_ids=ids)

    assert flaky.lost
    rows = await pool.fetch("SELECT status, attempts FROM ingest.jobs ORDER BY id")
    assert [tuple(r) for r in rows] == [("done", 1), ("done", 1)]  # the lost try not counted
    (handed_back,) = [e for e in logs if e["event"] == "job.handed_back"]
    assert handed_back["job_ids"] == ids
