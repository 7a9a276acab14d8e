"""Working the queue: a few loops per vendor that claim, work and repeat, within the caps."""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from functools import partial

import anyio
import asyncpg
import structlog

from ingest import ledger
from ingest.config import Settings
from ingest.domain import Job, Vendor
from ingest.errors import AuthError
from ingest.pipeline import Context, Outcome, packing, work_batch

log = structlog.get_logger(__name__)

# the database went away (restart, failover, a terminated connection): wait and carry on
DB_DOWN = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.InternalClientError,  # a connection torn down in the middle of an operation
)


@dataclass
class VendorState:
    """Shared by a vendor's loops: set when the vendor refused our credentials."""

    auth_error: AuthError | None = None


async def run_batch(ctx: Context, jobs: Sequence[Job]) -> Outcome:
    """Work one batch; if cancelled (shutdown), hand its jobs back to the queue untried."""
    try:
        return await work_batch(ctx, jobs)
    except anyio.get_cancelled_exc_class():
        with anyio.CancelScope(shield=True), anyio.move_on_after(10):
            await ledger.release_jobs(ctx.pool, jobs, owner=ctx.owner)
            log.info("job.handed_back", job_ids=[j.id for j in jobs])
        raise
    except DB_DOWN:
        # the failure could not be recorded; hand the jobs back rather than leave them
        # running until their lease runs out (if the database is still away, the lease will)
        with anyio.move_on_after(5), suppress(*DB_DOWN, asyncpg.PostgresError):
            await ledger.release_jobs(ctx.pool, jobs, owner=ctx.owner)
        raise


async def _next_wait(ctx: Context, vendor: Vendor, only_ids: Sequence[int] | None) -> float | None:
    """Seconds until a job may be claimable; None when the given jobs are all finished."""
    open_jobs, wait = await ledger.next_claimable_in(ctx.pool, vendor, only_ids)
    if only_ids is not None and open_jobs == 0:
        return None
    if wait is None:
        return ctx.settings.worker_idle_poll_s
    return max(0.05, min(wait, ctx.settings.worker_idle_poll_s))


async def _loop(
    ctx: Context,
    vendor: Vendor,
    state: VendorState,
    *,
    only_ids: Sequence[int] | None,
    stop: anyio.Event,
) -> None:
    db_wait = 1.0
    while not stop.is_set() and state.auth_error is None:
        try:
            async with ctx.pool.acquire() as conn:
                jobs = await ledger.claim_batch(
                    conn,
                    vendor,
                    owner=ctx.owner,
                    lease_s=ctx.settings.job_lease_s,
                    packing=packing(ctx, vendor),
                    only_ids=only_ids,
                )
            if jobs:
                started = time.monotonic()
                outcome = await run_batch(ctx, jobs)
                outcome.seconds = time.monotonic() - started
                if ctx.on_outcome is not None:
                    ctx.on_outcome(vendor.value, outcome)
                if outcome.released:  # no export place free: let the others go first
                    await anyio.sleep(1.0)
                db_wait = 1.0
                continue
            wait = await _next_wait(ctx, vendor, only_ids)
            if wait is None:
                return
            if only_ids is None and wait <= 0.05:
                # due but taken by another worker's claim: no hot loop over the ledger
                wait = ctx.settings.worker_idle_poll_s
            with anyio.move_on_after(wait):
                await stop.wait()
            db_wait = 1.0
        except AuthError as error:
            state.auth_error = error
            log.error("vendor.credentials_refused", vendor=vendor.value, error=str(error))
            return
        except DB_DOWN as error:
            log.warning(
                "db.unavailable", error=f"{type(error).__name__}: {error}", retry_in_s=db_wait
            )
            with anyio.move_on_after(db_wait):
                await stop.wait()
            db_wait = min(db_wait * 2, 30.0)


async def work_vendor(
    ctx: Context,
    vendor: Vendor,
    *,
    loops: int,
    only_ids: Sequence[int] | None = None,
    stop: anyio.Event | None = None,
) -> VendorState:
    """Run `loops` claim-work loops for the vendor: over the given jobs until each is done
    or dead, or over the whole queue until `stop` is set."""
    state = VendorState()
    stop = stop or anyio.Event()
    async with anyio.create_task_group() as tg:
        for _ in range(loops):
            tg.start_soon(partial(_loop, ctx, vendor, state, only_ids=only_ids, stop=stop))
    return state


def loops_for(settings: Settings, vendor: Vendor) -> int:
    """Claim-work loops of a vendor: one per export place, or per Angus request at once."""
    if vendor is Vendor.vidicenter:
        return settings.vidicenter_max_exports
    return settings.angus_max_concurrency
