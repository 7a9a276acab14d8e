"""The vendor call budget shared by every worker process: calls a minute and calls at once."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import asyncpg
import structlog

log = structlog.get_logger(__name__)


class CallBudget:
    """At most `per_minute` calls in any window and `at_once` calls in flight, per account.

    The calls are recorded in `ingest.vendor_calls`, under an advisory lock, so the
    budget holds across processes and replicas. The window is a little longer than a
    minute, so a call that reaches the vendor late still falls in the vendor's minute.
    A call holds its connection place until it ends. The place is a lease of `stale_s`,
    which a long call (an export's answer that takes minutes to download) renews as it
    goes (`CallPlace.keep`): a call whose worker died holds its place until the lease
    runs out, and one given up on (timed out, cancelled) for `stale_s` from then, since
    the vendor may still be serving it.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        account: str,
        *,
        per_minute: int,
        at_once: int,
        window_s: float = 62.0,
        stale_s: float = 300.0,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        on_wait: Callable[[str, float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = pool
        self._account = account
        self._per_minute = per_minute
        self._at_once = at_once
        self._window_s = window_s
        self._stale_s = stale_s
        self._sleep = sleep
        self._on_wait = on_wait
        self._clock = clock
        self._local = anyio.Semaphore(at_once)

    @asynccontextmanager
    async def call(self) -> AsyncIterator[CallPlace]:
        """Wait for room in the budget, hold one place for the call, give it back after.

        The block gets the call's place: a call that may outlast `stale_s` calls its
        `keep()` as it makes progress. Leaving the block with a timeout or a cancellation
        means the call was given up on while the vendor may still be answering it: its
        place is kept `stale_s` longer. Any other exception (the connection failed or was
        closed) ends the call.
        """
        async with self._local:
            call_id = await self._reserve()
            hold_s = 0.0
            try:
                yield CallPlace(self._pool, call_id, self._stale_s, self._clock)
            except (TimeoutError, anyio.get_cancelled_exc_class()):
                hold_s = self._stale_s
                log.debug("budget.call_abandoned", account=self._account, hold_s=hold_s)
                raise
            finally:
                with anyio.CancelScope(shield=True):
                    await self._pool.execute(
                        "UPDATE ingest.vendor_calls"
                        " SET finished_at = clock_timestamp() + make_interval(secs => $2)"
                        " WHERE id = $1",
                        call_id,
                        hold_s,
                    )

    async def _reserve(self) -> int:
        while True:
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtext('ingest.calls:' || $1))",
                    self._account,
                )
                row = await conn.fetchrow(
                    """
                    SELECT
                      count(*) FILTER (WHERE started_at > clock_timestamp()
                                       - make_interval(secs => $2)) AS in_window,
                      -- a call in flight holds its place until finished_at (a lease while it
                      -- runs); rows written before leases have none while they run
                      count(*) FILTER (WHERE finished_at > clock_timestamp()
                                       OR (finished_at IS NULL AND started_at > clock_timestamp()
                                           - make_interval(secs => $3))) AS in_flight,
                      extract(epoch FROM min(started_at) FILTER (
                          WHERE started_at > clock_timestamp() - make_interval(secs => $2))
                          + make_interval(secs => $2) - clock_timestamp()) AS frees_in
                    FROM ingest.vendor_calls WHERE account = $1
                      AND (started_at > clock_timestamp() - make_interval(secs => $2 + $3)
                           OR finished_at > clock_timestamp())
                    """,
                    self._account,
                    self._window_s,
                    self._stale_s,
                )
                assert row is not None
                if row["in_window"] < self._per_minute and row["in_flight"] < self._at_once:
                    # the place is a lease: a long call renews it as it goes (CallPlace)
                    call_id: int = await conn.fetchval(
                        "INSERT INTO ingest.vendor_calls (account, finished_at)"
                        " VALUES ($1, clock_timestamp() + make_interval(secs => $2))"
                        " RETURNING id",
                        self._account,
                        lease_s(self._stale_s),
                    )
                    await conn.execute(
                        "DELETE FROM ingest.vendor_calls WHERE account = $1"
                        " AND started_at < clock_timestamp() - interval '1 hour'",
                        self._account,
                    )
                    return call_id
                if row["in_window"] >= self._per_minute:
                    wait = max(0.05, float(row["frees_in"] or 0.0) + 0.05)
                else:
                    wait = 0.1  # both places are taken: a call ends, or one given up on lets go
            log.debug("budget.waiting", account=self._account, wait_s=round(wait, 2))
            if self._on_wait is not None:
                self._on_wait(self._account, wait)
            await self._sleep(wait)


def lease_s(stale_s: float) -> float:
    """How long a call's place is held from its start or its last renewal: `stale_s` and a
    third more. Renewals come at most a third of `stale_s` apart plus the time between two
    signs of progress, which a read timeout of less than `stale_s` bounds: so a call that
    is alive never loses its place, and a dead worker's call keeps it no longer than this.
    """
    return stale_s * 4 / 3


class CallPlace:
    """One call's place in the budget: a lease (`lease_s`) from its start or last renewal.

    `keep()` is cheap: it renews the lease in the database at most every third of
    `stale_s`.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        call_id: int,
        stale_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = pool
        self._id = call_id
        self._stale_s = stale_s
        self._every_s = stale_s / 3
        self._clock = clock
        self._renewed_at = clock()

    async def keep(self) -> None:
        """The call is making progress: keep its place (renewed when a third is gone)."""
        if self._clock() - self._renewed_at < self._every_s:
            return
        self._renewed_at = self._clock()
        try:
            await self._pool.execute(
                "UPDATE ingest.vendor_calls"
                " SET finished_at = clock_timestamp() + make_interval(secs => $2)"
                " WHERE id = $1",
                self._id,
                lease_s(self._stale_s),
            )
        except (OSError, asyncpg.PostgresError) as error:
            # the call goes on; its place may lapse early while the database is away
            log.warning("budget.lease_not_renewed", error=str(error))
