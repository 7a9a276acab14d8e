"""`ingest run`: schedule recent days, work the queue, serve health and metrics, stop
cleanly on SIGTERM/SIGINT. With `--once`: drain what is due and exit."""

from __future__ import annotations

import argparse
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import anyio
import structlog

from ingest import ledger
from ingest.commands import EXIT_DEAD, EXIT_OK
from ingest.config import Settings, VidiCenterAccount
from ingest.domain import ScopeKind, Vendor
from ingest.errors import AuthError, IngestError, UsageError
from ingest.health import Health
from ingest.ledger import exports
from ingest.metrics import Metrics
from ingest.pipeline import Outcome
from ingest.schedule import Scheduled, due_jobs, parse_schedule, refresh_rule
from ingest.server import Liveness, create_app, serving
from ingest.topology import LocationSource, ScheduledTopology, UploadWatch
from ingest.wiring import (
    Wired,
    hand_over_unassigned,
    open_context,
    open_pool,
    require_migrated,
)
from ingest.worker import DB_DOWN, loops_for, work_vendor

log = structlog.get_logger(__name__)


async def main(args: argparse.Namespace, settings: Settings) -> int:
    """The worker; with `--once`, drain what is due and return 0, or 1 if a job died.

    Credentials refused end `--once` with the account's AuthError (exit 2, one line), once
    the other accounts and vendors are drained.
    """
    if not (settings.vidicenter_configured or settings.angus_configured):
        # not an error: a vendor without credentials is simply not scheduled
        log.warning(
            "run.no_vendor",
            hint="set INGEST_VIDICENTER_USERNAME and INGEST_VIDICENTER_TOKEN, "
            "INGEST_VIDICENTER_ACCOUNTS or INGEST_ANGUS_STREAMS",
        )
    try:
        types = parse_schedule(settings.vidicenter_schedule)
    except ValueError as error:
        raise UsageError(f"INGEST_VIDICENTER_SCHEDULE: {error}") from None
    metrics = Metrics(
        export_stale_after_s=exports.stale_after_s(settings.vidicenter_export_deadline_s),
        accounts={Vendor.vidicenter.value: [a.name for a in settings.vidicenter_account_list]},
    )
    dead = 0

    def on_outcome(vendor: str, outcome: Outcome) -> None:
        nonlocal dead
        dead += outcome.dead
        metrics.record(vendor, outcome)

    async with open_pool(settings) as pool:
        await require_migrated(pool)
        async with pool.acquire() as conn:
            if note := await hand_over_unassigned(conn, settings):
                log.warning("accounts.unassigned", note=note)
        async with open_context(settings, pool, metrics=metrics, on_outcome=on_outcome) as wired:
            service = _Service(wired, types, metrics)
            if args.once:
                await service.drain_due()
                log.info("run.drained", dead=dead, paused=service.pauses.reasons())
                if service.pauses.refused:
                    raise service.pauses.refused[0]
                return EXIT_DEAD if dead else EXIT_OK
            await service.serve_forever()
    log.info("run.stopped")
    return EXIT_OK


class Pauses:
    """Which vendor accounts are paused (credentials refused), why, and until when.

    A paused account is neither scheduled nor worked: no call goes out with a token the
    vendor refused, until the pause is over. The other accounts and vendors go on.
    """

    def __init__(
        self,
        metrics: Metrics,
        *,
        on_pause: Callable[[str, str], None] | None = None,
        on_resume: Callable[[str], None] | None = None,
    ) -> None:
        """`on_pause(who, reason)` and `on_resume(who)` hear of each pause and its end,
        `who` being `vendor:account` (the health report)."""
        self._metrics = metrics
        self._on_pause = on_pause
        self._on_resume = on_resume
        self._until: dict[tuple[str, str], float] = {}
        self._why: dict[tuple[str, str], str] = {}
        self.refused: list[AuthError] = []  # every refusal seen, for `--once`

    def pause(self, vendor: Vendor, account: str, error: AuthError, seconds: float) -> None:
        key = (vendor.value, account)
        self._until[key] = anyio.current_time() + seconds
        self._why[key] = str(error)
        self.refused.append(error)
        self._metrics.vendor_paused(vendor.value, True, account)
        if self._on_pause is not None:
            self._on_pause(f"{vendor.value}:{account}", str(error))
        log.error(
            "vendor.paused",
            vendor=vendor.value,
            account=account,
            retry_in_s=seconds,
            error=str(error),
        )

    def remaining(self, vendor: Vendor, account: str) -> float:
        """Seconds the account stays paused (0: it is not); an ended pause is lifted."""
        key = (vendor.value, account)
        until = self._until.get(key)
        if until is None:
            return 0.0
        left = until - anyio.current_time()
        if left > 0:
            return left
        del self._until[key], self._why[key]
        self._metrics.vendor_paused(vendor.value, False, account)
        if self._on_resume is not None:
            self._on_resume(f"{vendor.value}:{account}")
        log.info("vendor.resumed", vendor=vendor.value, account=account)
        return 0.0

    def reasons(self) -> dict[str, str]:
        """`vendor:account` -> why it is paused, for the health report."""
        return {f"{v}:{a}": why for (v, a), why in self._why.items()}


@dataclass
class _Account:
    """One VidiCenter account as `ingest run` keeps it: its client and scheduled scopes."""

    name: str
    client: LocationSource
    topology: ScheduledTopology
    fleet: UploadWatch  # its locations as listed (shared, a few minutes old at most)


class _Service:
    """The scheduler, claim-work loops per vendor account, the health server and the signals."""

    def __init__(self, wired: Wired, types: list[tuple[str, str]], metrics: Metrics) -> None:
        ctx = wired.ctx
        s = ctx.settings
        self.ctx = ctx
        self.types = types
        self.metrics = metrics
        needs_sites = any(ctx.registry.get(t).scope_kind is ScopeKind.site for t, _ in types)
        self.accounts = [
            _Account(
                a.name, wired.vidicenter[a.name], _topology(a, s, needs_sites), wired.fleets[a.name]
            )
            for a in s.vidicenter_account_list
            if a.name in wired.vidicenter
        ]
        for account in s.vidicenter_account_list:
            if not account.locations:
                log.warning(
                    "schedule.no_locations",
                    account=account.name,
                    hint=f"set {s.locations_variable(account)} to location ids or to `all`",
                )
        self.streams = list(ctx.streams) if ctx.angus is not None else []
        self.stop = anyio.Event()
        self.liveness = Liveness(max_silence_s=30.0)
        self.health = Health(
            stall_s=s.stall_s, vendors=sorted({v.value for v, _, _ in self._workers()})
        )
        # a pause is heard by the health report (`/readyz`) as `vendor:account`
        self.pauses = Pauses(metrics, on_pause=self.health.pause, on_resume=self.health.resume)

    def _workers(self) -> list[tuple[Vendor, str, list[str]]]:
        """(vendor, who, accounts) of each claim-work group: one per VidiCenter account (each
        has its own export cap), one for every Angus stream together."""
        out = [(Vendor.vidicenter, a.name, [a.name]) for a in self.accounts]
        if self.streams:
            out.append((Vendor.angus, "", self.streams))
        return out

    async def schedule_tick(self) -> int:
        """Enqueue what is due now and re-open the open days; returns how many jobs became
        pending. One account's or vendor's failure leaves the others scheduled."""
        s = self.ctx.settings
        now = datetime.now(UTC)
        due: list[Scheduled] = []
        for account in self.accounts:
            if self.pauses.remaining(Vendor.vidicenter, account.name):
                continue
            try:
                due += await self._account_jobs(account, now)
            except AuthError as error:
                self.pauses.pause(Vendor.vidicenter, account.name, error, s.schedule_interval_s)
            except IngestError as error:  # discovery failed: try again next tick
                log.warning("schedule.failed", account=account.name, error=str(error))
        due += due_jobs(
            now,
            tz=s.day_timezone,
            lookback_days=s.schedule_lookback_days,
            streams=self.streams,
            angus_resolution=s.angus_resolution,
            registry=self.ctx.registry,
        )
        stale = refresh_rule(now)
        async with self.ctx.pool.acquire() as conn:
            n = await ledger.schedule_jobs(conn, [(j.spec, j.refresh_before) for j in due])
            for vendor, _who, accounts in self._workers():
                n += await ledger.reopen_open_jobs(conn, vendor, accounts, stale_before=stale)
        log.info("schedule.ticked", jobs=len(due), reopened_or_new=n)
        return n

    async def _account_jobs(self, account: _Account, now: datetime) -> list[Scheduled]:
        s = self.ctx.settings
        await account.topology.refresh(account.client)
        locations = account.topology.locations
        if locations:
            # a configured location the account does not have would only fail its jobs
            known = (await account.fleet.fleet()).uploads
            if unknown := [loc for loc in locations if loc not in known]:
                log.warning("schedule.unknown_locations", account=account.name, locations=unknown)
                locations = [loc for loc in locations if loc in known]
        return due_jobs(
            now,
            tz=s.day_timezone,
            lookback_days=s.schedule_lookback_days,
            account=account.name,
            vidicenter_types=self.types,
            locations=locations,
            sites=account.topology.sites,
            registry=self.ctx.registry,
        )

    async def drain_due(self) -> None:
        await self.schedule_tick()
        async with anyio.create_task_group() as tg:
            for vendor, who, accounts in self._workers():
                if self.pauses.remaining(vendor, who):
                    continue
                ids = await ledger.due_job_ids(self.ctx.pool, vendor, accounts)
                tg.start_soon(self._drain, vendor, who, accounts, ids)

    async def _drain(
        self, vendor: Vendor, who: str, accounts: list[str], ids: Sequence[int]
    ) -> None:
        loops = loops_for(self.ctx.settings, vendor)
        state = await work_vendor(
            self.ctx, vendor, loops=loops, only_ids=ids, health=self.health, accounts=accounts
        )
        if state.auth_error is not None:
            self.pauses.pause(vendor, who, state.auth_error, self.ctx.settings.schedule_interval_s)

    async def scheduler(self) -> None:
        while not self.stop.is_set():
            try:
                await self.schedule_tick()
                self.health.db.answered()
            except DB_DOWN as error:
                self.health.db.lost(error)
            except IngestError as error:  # one account's failure is handled in the tick
                log.warning("schedule.failed", error=str(error))
            await self._pause(self.ctx.settings.schedule_interval_s)

    async def worker_loop(self, vendor: Vendor, who: str, accounts: list[str]) -> None:
        """Work the accounts' queue; when the vendor refuses the credentials, pause them."""
        s = self.ctx.settings
        while not self.stop.is_set():
            if wait := self.pauses.remaining(vendor, who):
                await self._pause(wait)
                continue
            state = await work_vendor(
                self.ctx,
                vendor,
                loops=loops_for(s, vendor),
                stop=self.stop,
                health=self.health,
                accounts=accounts,
            )
            if state.auth_error is not None:
                self.pauses.pause(vendor, who, state.auth_error, s.schedule_interval_s)

    async def _pause(self, seconds: float) -> None:
        """Sleep, or less if the service is stopping."""
        with anyio.move_on_after(seconds):
            await self.stop.wait()

    async def ticker(self) -> None:
        while True:
            self.liveness.beat()
            await anyio.sleep(5)

    async def serve_forever(self) -> None:
        s = self.ctx.settings
        work_scope = anyio.CancelScope()
        async with anyio.create_task_group() as tg:

            async def work() -> None:
                with work_scope:
                    async with anyio.create_task_group() as wg:
                        wg.start_soon(self.scheduler)
                        for vendor, who, accounts in self._workers():
                            wg.start_soon(self.worker_loop, vendor, who, accounts)
                tg.cancel_scope.cancel()  # the work is over: stop the server and the ticker

            tg.start_soon(self.on_signals, tg.cancel_scope, work_scope)
            tg.start_soon(self.ticker)
            tg.start_soon(work)
            started = {
                "vendors": sorted({v.value for v, _, _ in self._workers()}),
                "accounts": [a.name for a in self.accounts],
            }
            if s.http_port:
                app = create_app(self.ctx.pool, self.metrics, self.liveness, self.health)
                async with serving(app, s.http_host, s.http_port) as port:
                    log.info("run.started", **started, http_port=port)
                    await anyio.sleep_forever()
            else:
                log.info("run.started", **started)

    async def on_signals(self, everything: anyio.CancelScope, work: anyio.CancelScope) -> None:
        """On SIGTERM or SIGINT: stop claiming; running jobs get the grace period, then
        they are handed back."""
        grace = self.ctx.settings.shutdown_grace_s
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                log.info("run.stopping", signal=signal.Signals(signum).name, grace_s=grace)
                self.stop.set()
                work.deadline = anyio.current_time() + grace
                everything.deadline = anyio.current_time() + grace + 15
                return


def _topology(account: VidiCenterAccount, s: Settings, needs_sites: bool) -> ScheduledTopology:
    """The locations and sites `ingest run` schedules for the account."""
    return ScheduledTopology(
        None if account.all_locations else account.locations,
        needs_sites=needs_sites,
        refresh_s=s.vidicenter_locations_refresh_s,
    )
