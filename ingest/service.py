"""`ingest run`: schedule recent days, work the queue, serve health and metrics, stop cleanly."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import anyio
import asyncpg
import structlog

from ingest import ledger
from ingest.cli import EXIT_DEAD, EXIT_OK, open_pool, require_migrated
from ingest.commands import build_context
from ingest.config import Settings
from ingest.datatypes import ScopeKind, get_data_type
from ingest.errors import IngestError, UsageError
from ingest.ledger import Vendor
from ingest.metrics import Metrics
from ingest.pipeline import Context, Outcome
from ingest.schedule import due_jobs, parse_schedule
from ingest.server import Liveness, create_app, serving
from ingest.vendors.vidicenter import VidiCenterClient
from ingest.worker import DB_DOWN, work_vendor

log = structlog.get_logger(__name__)


class LocationSource(Protocol):
    async def list_locations(self) -> list[dict[str, Any]]: ...


class Topology:
    """The locations and sites to schedule; discovered from VidiCenter when LOCATIONS=all,
    and again every INGEST_VIDICENTER_LOCATIONS_REFRESH_S."""

    def __init__(
        self,
        settings: Settings,
        needs_sites: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._needs_sites = needs_sites
        self._clock = clock
        self._refreshed_at: float | None = None
        self.locations: list[str] = (
            [] if settings.vidicenter_all_locations else list(settings.vidicenter_locations)
        )
        self.sites: list[str] = []

    async def refresh(self, client: LocationSource | None) -> None:
        """Ask VidiCenter again when the refresh interval has passed (no call otherwise)."""
        s = self._settings
        discover = s.vidicenter_all_locations or self._needs_sites
        due = self._refreshed_at is None or (
            self._clock() - self._refreshed_at >= s.vidicenter_locations_refresh_s
        )
        if client is None or not discover or not due:
            return
        found = await client.list_locations()
        active = [x for x in found if x.get("active", True)]
        if s.vidicenter_all_locations:
            new = sorted({str(x["id"]) for x in active} - set(self.locations), key=int)
            if new:
                log.info("topology.locations_found", new=len(new), total=len(active))
            self.locations = sorted({str(x["id"]) for x in active}, key=int)
        wanted = set(self.locations)
        self.sites = sorted(
            {str(x["site_id"]) for x in active if str(x["id"]) in wanted and x.get("site_id")},
            key=int,
        )
        self._refreshed_at = self._clock()


async def schedule_tick(ctx: Context, topology: Topology, types: list[tuple[str, str]]) -> int:
    """Enqueue what is due now; returns how many jobs became pending."""
    s = ctx.settings
    client = ctx.vidicenter if isinstance(ctx.vidicenter, VidiCenterClient) else None
    await topology.refresh(client)
    jobs = due_jobs(
        datetime.now(UTC),
        tz=s.day_timezone,
        lookback_days=s.schedule_lookback_days,
        reingest_days=s.schedule_reingest_days,
        interval_s=s.schedule_interval_s,
        vidicenter_types=types if ctx.vidicenter is not None else [],
        locations=topology.locations,
        sites=topology.sites,
        streams=list(ctx.streams) if ctx.angus is not None else [],
        angus_resolution=s.angus_resolution,
    )
    async with ctx.pool.acquire() as conn:
        n = await ledger.schedule_jobs(conn, [(j.spec, j.refresh_before) for j in jobs])
    log.info("schedule.ticked", jobs=len(jobs), reopened_or_new=n)
    return n


async def _due_ids(pool: asyncpg.Pool, vendor: Vendor) -> list[int]:
    rows = await pool.fetch(
        "SELECT id FROM ingest.jobs WHERE vendor = $1 AND status = 'pending'"
        " AND run_after <= now()",
        vendor.value,
    )
    return [r["id"] for r in rows]


async def _drain(ctx: Context, vendor: Vendor, ids: list[int]) -> None:
    await work_vendor(ctx, vendor, loops=_loops(ctx.settings, vendor), only_ids=ids)


def _loops(settings: Settings, vendor: Vendor) -> int:
    if vendor is Vendor.vidicenter:
        return settings.vidicenter_max_exports
    return settings.angus_max_concurrency


async def run_service(settings: Settings, *, once: bool) -> int:
    """The worker; with `once`, drain what is due and return 0, or 1 if a job died."""
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
    needs_sites = any(get_data_type(t).scope_kind is ScopeKind.site for t, _ in types)
    metrics = Metrics()
    dead = 0

    def on_outcome(vendor: str, outcome: Outcome) -> None:
        nonlocal dead
        dead += outcome.dead
        metrics.record(vendor, outcome)

    async with open_pool(settings) as pool:
        await require_migrated(pool)
        async with build_context(settings, pool, metrics) as ctx:
            ctx.on_outcome = on_outcome
            vendors = [
                v
                for v, ok in (
                    (Vendor.vidicenter, ctx.vidicenter is not None),
                    (Vendor.angus, ctx.angus is not None),
                )
                if ok
            ]
            topology = Topology(settings, needs_sites)
            if ctx.vidicenter is not None and not settings.vidicenter_locations:
                log.warning(
                    "schedule.no_locations",
                    hint="set INGEST_VIDICENTER_LOCATIONS to location ids or to `all`",
                )
            if once:
                await schedule_tick(ctx, topology, types)
                async with anyio.create_task_group() as tg:
                    for vendor in vendors:
                        tg.start_soon(_drain, ctx, vendor, await _due_ids(pool, vendor))
                log.info("run.drained", dead=dead)
                return EXIT_DEAD if dead else EXIT_OK
            await _serve_forever(ctx, topology, types, vendors, metrics)
    log.info("run.stopped")
    return EXIT_OK


async def _serve_forever(
    ctx: Context,
    topology: Topology,
    types: list[tuple[str, str]],
    vendors: list[Vendor],
    metrics: Metrics,
) -> None:
    s = ctx.settings
    stop = anyio.Event()
    liveness = Liveness(max_silence_s=30.0)

    async def ticker() -> None:
        while True:
            liveness.beat()
            await anyio.sleep(5)

    async def scheduler() -> None:
        while not stop.is_set():
            try:
                await schedule_tick(ctx, topology, types)
            except DB_DOWN as error:
                log.warning("db.unavailable", error=f"{type(error).__name__}: {error}")
            except IngestError as error:  # discovery failed: try again next tick
                log.warning("schedule.failed", error=str(error))
            with anyio.move_on_after(s.schedule_interval_s):
                await stop.wait()

    async def vendor_loop(vendor: Vendor) -> None:
        while not stop.is_set():
            state = await work_vendor(ctx, vendor, loops=_loops(s, vendor), stop=stop)
            if state.auth_error is not None:
                log.error(
                    "vendor.paused",
                    vendor=vendor.value,
                    retry_in_s=s.schedule_interval_s,
                    error=str(state.auth_error),
                )
                with anyio.move_on_after(s.schedule_interval_s):
                    await stop.wait()

    async with anyio.create_task_group() as tg:
        work_scope = anyio.CancelScope()

        async def on_signals() -> None:
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for signum in signals:
                    log.info(
                        "run.stopping",
                        signal=signal.Signals(signum).name,
                        grace_s=s.shutdown_grace_s,
                    )
                    stop.set()
                    # running jobs get the grace period, then they are handed back
                    work_scope.deadline = anyio.current_time() + s.shutdown_grace_s
                    tg.cancel_scope.deadline = anyio.current_time() + s.shutdown_grace_s + 15
                    return

        async def work() -> None:
            with work_scope:
                async with anyio.create_task_group() as wg:
                    wg.start_soon(scheduler)
                    for vendor in vendors:
                        wg.start_soon(vendor_loop, vendor)
            tg.cancel_scope.cancel()  # the work is over: stop the server and the ticker

        tg.start_soon(on_signals)
        tg.start_soon(ticker)
        tg.start_soon(work)
        if s.http_port:
            app = create_app(ctx.pool, metrics, liveness)
            async with serving(app, s.http_host, s.http_port) as port:
                log.info("run.started", vendors=[v.value for v in vendors], http_port=port)
                await anyio.sleep_forever()
        else:
            log.info("run.started", vendors=[v.value for v in vendors])
