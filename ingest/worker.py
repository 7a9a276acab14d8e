"""Working the queue: a few loops per vendor that claim, work and repeat, within the caps."""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from functools import partial

import anyio
import anyio.abc
import asyncpg
import structlog

from ingest import ledger
from ingest.config import Settings
from ingest.domain import Job, Vendor
from ingest.errors import AuthError
from ingest.health import DatabaseWatch, Health
from ingest.ledger import presence
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
    """Shared by a vendor's loops: the credentials refused, and the jobs they hold."""

    auth_error: AuthError | None = None
    held: set[int] = field(default_factory=set)  # ids of the jobs claimed and being worked
    claiming: anyio.Lock = field(default_factory=anyio.Lock)  # one claim (or sweep) at a time
    # a claim whose answer was lost may have committed: leases this process does not know
    # it holds, to hand back once the database answers
    unsure: bool = False


async def run_batch(ctx: Context, jobs: Sequence[Job], health: Health | None = None) -> Outcome:
    """Work one batch; if cancelled (shutdown), hand its jobs back to the queue untried.

    When the work ends in a database error, the jobs are handed back (their export, if
    out, resumed by the next claim) as soon as the database answers again, rather than
    left running until their lease runs out.
    """
    try:
        return await work_batch(ctx, jobs)
    except anyio.get_cancelled_exc_class():
        with anyio.CancelScope(shield=True), anyio.move_on_after(10):
            await ledger.release_jobs(ctx.pool, jobs, owner=ctx.owner)
            log.info("job.handed_back", job_ids=[j.id for j in jobs])
        raise
    except DB_DOWN as error:
        watch = health.db if health is not None else DatabaseWatch()
        watch.lost(error)
        await _hand_back_when_db_answers(ctx, jobs, watch)
        return Outcome(released=len(jobs))


async def _hand_back_when_db_answers(
    ctx: Context, jobs: Sequence[Job], watch: DatabaseWatch
) -> None:
    """Hand the jobs back, trying until the database answers (a lease taken over in the
    meantime is left to its new owner)."""
    wait = 0.25
    while True:
        try:
            await ledger.release_jobs(ctx.pool, jobs, owner=ctx.owner)
        except DB_DOWN as error:
            watch.lost(error)
            await anyio.sleep(wait)
            wait = min(wait * 2, 2.0)
            continue
        watch.answered()
        log.info("job.handed_back", job_ids=[j.id for j in jobs], reason="database error")
        return


async def _next_wait(
    ctx: Context, vendor: Vendor, only_ids: Sequence[int] | None, accounts: Sequence[str] | None
) -> float | None:
    """Seconds until a job may be claimable; None when the given jobs are all finished."""
    open_jobs, wait = await ledger.next_claimable_in(ctx.pool, vendor, only_ids, accounts)
    if only_ids is not None and open_jobs == 0:
        return None
    if wait is None:
        return ctx.settings.worker_idle_poll_s
    return max(0.05, min(wait, ctx.settings.worker_idle_poll_s))


async def _loop(
    ctx: Context,
    vendor: Vendor,
    state: VendorState,
    health: Health,
    *,
    only_ids: Sequence[int] | None,
    stop: anyio.Event,
    accounts: Sequence[str] | None,
) -> None:
    db_wait = 1.0
    while not stop.is_set() and state.auth_error is None:
        try:
            jobs = await _claim(ctx, vendor, state, only_ids, accounts)
            health.db.answered()
            db_wait = 1.0
            if jobs:
                try:
                    released = await _work(ctx, vendor, jobs, health)
                finally:
                    state.held.difference_update(j.id for j in jobs)
                if released:  # no export place free: let the others go first
                    await anyio.sleep(1.0)
                continue
            wait = await _next_wait(ctx, vendor, only_ids, accounts)
            if wait is None:
                return
            if only_ids is None and wait <= 0.05:
                # due but taken by another worker's claim: no hot loop over the ledger
                wait = ctx.settings.worker_idle_poll_s
            with anyio.move_on_after(wait):
                await stop.wait()
        except AuthError as error:
            state.auth_error = error
            log.error(
                "vendor.credentials_refused",
                vendor=vendor.value,
                accounts=list(accounts or []),
                error=str(error),
            )
            return
        except DB_DOWN as error:
            health.db.lost(error)
            state.unsure = True
            with anyio.move_on_after(db_wait):
                await stop.wait()
            db_wait = min(db_wait * 2, 30.0)


async def _claim(
    ctx: Context,
    vendor: Vendor,
    state: VendorState,
    only_ids: Sequence[int] | None,
    accounts: Sequence[str] | None,
) -> list[Job]:
    """Claim a batch of the accounts' jobs and note it as held; first, after a claim whose
    answer was lost, hand back the leases of these accounts this process holds without
    knowing it."""
    async with state.claiming:
        if state.unsure:
            ids = await presence.hand_back_unheld(
                ctx.pool, vendor, ctx.owner, state.held, accounts=accounts
            )
            if ids:
                log.info("job.handed_back", job_ids=ids, reason="the claim's answer was lost")
            state.unsure = False
        # the accounts' sites first: the listing may be asked of the vendor
        packed = await packing(ctx, vendor, accounts)
        async with ctx.pool.acquire() as conn:
            jobs = await ledger.claim_batch(
                conn,
                vendor,
                owner=ctx.owner,
                lease_s=ctx.settings.job_lease_s,
                packing=packed,
                only_ids=only_ids,
                accounts=accounts,
            )
        state.held.update(j.id for j in jobs)
        return jobs


async def _work(ctx: Context, vendor: Vendor, jobs: Sequence[Job], health: Health) -> bool:
    """Work a claimed batch, and tell health and metrics; True when it was handed back."""
    started = time.monotonic()
    with health.working():
        outcome = await run_batch(ctx, jobs, health)
    outcome.seconds = time.monotonic() - started
    if outcome.done or outcome.failed or outcome.dead:
        health.progressed()
    if ctx.on_outcome is not None:
        ctx.on_outcome(vendor.value, outcome)
    return bool(outcome.released)


async def _presence(
    ctx: Context,
    vendor: Vendor,
    health: Health,
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Say this worker is alive while its loops run (the first beat before they claim);
    for VidiCenter, warn of export places held by workers that are not."""
    orphans: dict[str, int] = {}
    while True:
        try:
            await presence.beat(ctx.pool, ctx.owner)
            if vendor is Vendor.vidicenter:
                found = await ledger.exports.orphaned_exports(
                    ctx.pool, stale_after_s=ctx.export_stale_after_s
                )
                if found and found != orphans:
                    log.warning(
                        "export.places_orphaned",
                        places=sum(found.values()),
                        owners=sorted(found),
                        hint="held by workers that are gone, until their leases run out",
                    )
                orphans = found
            health.db.answered()
        except DB_DOWN as error:
            health.db.lost(error)
        except asyncpg.PostgresError as error:  # not worth stopping the work for
            log.warning("presence.failed", error=f"{type(error).__name__}: {error}")
        task_status.started()
        task_status = anyio.TASK_STATUS_IGNORED
        await anyio.sleep(presence.BEAT_S)


async def work_vendor(
    ctx: Context,
    vendor: Vendor,
    *,
    loops: int,
    only_ids: Sequence[int] | None = None,
    stop: anyio.Event | None = None,
    health: Health | None = None,
    accounts: Sequence[str] | None = None,
) -> VendorState:
    """Run `loops` claim-work loops for the vendor's jobs of the given accounts (None:
    any): over the given jobs until each is done or dead, or over the whole queue until
    `stop` is set. The worker's presence is beaten meanwhile; `health` hears of its
    progress and of the database's outages."""
    state = VendorState()
    stop = stop or anyio.Event()
    health = health or Health(stall_s=ctx.settings.stall_s, vendors=[vendor.value])
    loop = partial(
        _loop, ctx, vendor, state, health, only_ids=only_ids, stop=stop, accounts=accounts
    )
    async with anyio.create_task_group() as tg:
        await tg.start(partial(_presence, ctx, vendor, health))
        async with anyio.create_task_group() as work:
            for _ in range(loops):
                work.start_soon(loop)
        if state.unsure:  # stopping: leave no lease behind that a lost answer hid
            with anyio.move_on_after(5), suppress(*DB_DOWN):
                await presence.hand_back_unheld(
                    ctx.pool, vendor, ctx.owner, state.held, accounts=accounts
                )
        tg.cancel_scope.cancel()
    return state


def loops_for(settings: Settings, vendor: Vendor) -> int:
    """Claim-work loops of a vendor: one per export place, or per Angus request at once."""
    if vendor is Vendor.vidicenter:
        return settings.vidicenter_max_exports
    return settings.angus_max_concurrency
