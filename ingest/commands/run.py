"""`ingest run`: schedule recent days, work the queue, serve health and metrics, stop
cleanly on SIGTERM/SIGINT. With `--once`: drain what is due and exit."""

from __future__ import annotations

import argparse
import signal
from collections.abc import Sequence
from datetime import UTC, datetime

import anyio
import structlog

from ingest import ledger
from ingest.commands import EXIT_DEAD, EXIT_OK
from ingest.config import Settings
from ingest.domain import ScopeKind, Vendor
from ingest.errors import IngestError, UsageError
from ingest.ledger import exports
from ingest.metrics import Metrics
from ingest.pipeline import Context, Outcome
from ingest.schedule import due_jobs, parse_schedule
from ingest.server import Liveness, create_app, serving
from ingest.topology import LocationSource, ScheduledTopology
from ingest.wiring import Wired, open_context, open_pool, require_migrated
from ingest.worker import DB_DOWN, loops_for, work_vendor

log = structlog.get_logger(__name__)


async def main(args: argparse.Namespace, settings: Settings) -> int:
    """The worker; with `--once`, drain what is due and return 0, or 1 if a job died."""
    if not (settings.vidicenter_configured or settings.angus_configured):
        # not an error: a vendor without credentials is simply not scheduled
        log.warning(
            "run.no_vendor",
            hint="set INGEST_VIDICENTER_USERNAME and INGEST_VIDICENTER_TOKEN, "
            "or INGEST_ANGUS_STREAMS",
        )
    try:
        types = parse_schedule(settings.vidicenter_schedule)
    except ValueError as error:
        raise UsageError(f"INGEST_VIDICENTER_SCHEDULE: {error}") from None
    metrics = Metrics(
        export_stale_after_s=exports.stale_after_s(settings.vidicenter_export_deadline_s)
    )
    dead = 0

    def on_outcome(vendor: str, outcome: Outcome) -> None:
        nonlocal dead
        dead += outcome.dead
        metrics.record(vendor, outcome)

    async with open_pool(settings) as pool:
        await require_migrated(pool)
        async with open_context(settings, pool, metrics=metrics, on_outcome=on_outcome) as wired:
            service = _Service(wired, types, metrics)
            if args.once:
                await service.drain_due()
                log.info("run.drained", dead=dead)
                return EXIT_DEAD if dead else EXIT_OK
            await service.serve_forever()
    log.info("run.stopped")
    return EXIT_OK


class _Service:
    """The scheduler, a claim-work loop per vendor, the health server and the signals."""

    def __init__(self, wired: Wired, types: list[tuple[str, str]], metrics: Metrics) -> None:
        ctx = wired.ctx
        s = ctx.settings
        self.ctx = ctx
        self.client = wired.vidicenter
        self.types = types
        self.metrics = metrics
        self.vendors = [
            v
            for v, ok in ((Vendor.vidicenter, ctx.vidicenter), (Vendor.angus, ctx.angus))
            if ok is not None
        ]
        needs_sites = any(ctx.registry.get(t).scope_kind is ScopeKind.site for t, _ in types)
        self.topology = ScheduledTopology(
            None if s.vidicenter_all_locations else s.vidicenter_locations,
            needs_sites=needs_sites,
            refresh_s=s.vidicenter_locations_refresh_s,
        )
        if ctx.vidicenter is not None and not s.vidicenter_locations:
            log.warning(
                "schedule.no_locations",
                hint="set INGEST_VIDICENTER_LOCATIONS to location ids or to `all`",
            )
        self.stop = anyio.Event()
        self.liveness = Liveness(max_silence_s=30.0)

    async def schedule_tick(self) -> int:
        """Enqueue what is due now; returns how many jobs became pending."""
        return await schedule_tick(self.ctx, self.topology, self.types, self.client)

    async def drain_due(self) -> None:
        await self.schedule_tick()
        async with anyio.create_task_group() as tg:
            for vendor in self.vendors:
                ids = await ledger.due_job_ids(self.ctx.pool, vendor)
                tg.start_soon(self._drain, vendor, ids)

    async def _drain(self, vendor: Vendor, ids: Sequence[int]) -> None:
        loops = loops_for(self.ctx.settings, vendor)
        await work_vendor(self.ctx, vendor, loops=loops, only_ids=ids)

    async def scheduler(self) -> None:
        while not self.stop.is_set():
            try:
                await self.schedule_tick()
            except DB_DOWN as error:
                log.warning("db.unavailable", error=f"{type(error).__name__}: {error}")
            except IngestError as error:  # discovery failed: try again next tick
                log.warning("schedule.failed", error=str(error))
            await self._pause(self.ctx.settings.schedule_interval_s)

    async def vendor_loop(self, vendor: Vendor) -> None:
        s = self.ctx.settings
        while not self.stop.is_set():
            state = await work_vendor(self.ctx, vendor, loops=loops_for(s, vendor), stop=self.stop)
            if state.auth_error is not None:
                log.error(
                    "vendor.paused",
                    vendor=vendor.value,
                    retry_in_s=s.schedule_interval_s,
                    error=str(state.auth_error),
                )
                self.metrics.vendor_paused(vendor.value, True)
                await self._pause(s.schedule_interval_s)
                self.metrics.vendor_paused(vendor.value, False)

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
                        for vendor in self.vendors:
                            wg.start_soon(self.vendor_loop, vendor)
                tg.cancel_scope.cancel()  # the work is over: stop the server and the ticker

            tg.start_soon(self.on_signals, tg.cancel_scope, work_scope)
            tg.start_soon(self.ticker)
            tg.start_soon(work)
            started = {"vendors": [v.value for v in self.vendors]}
            if s.http_port:
                app = create_app(self.ctx.pool, self.metrics, self.liveness)
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


async def schedule_tick(
    ctx: Context,
    topology: ScheduledTopology,
    types: list[tuple[str, str]],
    client: LocationSource | None,
) -> int:
    """Enqueue what is due now; returns how many jobs became pending."""
    s = ctx.settings
    await topology.refresh(client)
    jobs = due_jobs(
        datetime.now(UTC),
        tz=s.day_timezone,
        lookback_days=s.schedule_lookback_days,
        reingest_days=s.schedule_reingest_days,
        vidicenter_types=types if ctx.vidicenter is not None else [],
        locations=topology.locations,
        sites=topology.sites,
        streams=list(ctx.streams) if ctx.angus is not None else [],
        angus_resolution=s.angus_resolution,
        registry=ctx.registry,
    )
    async with ctx.pool.acquire() as conn:
        n = await ledger.schedule_jobs(conn, [(j.spec, j.refresh_before) for j in jobs])
    log.info("schedule.ticked", jobs=len(jobs), reopened_or_new=n)
    return n
