"""Health and metrics over HTTP: /healthz, /readyz, /metrics."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field

import asyncpg
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from ingest import db
from ingest.health import Health
from ingest.ledger import presence
from ingest.metrics import Metrics


@dataclass
class Liveness:
    """Beats from the worker's loops; stale beats mean the loop is stuck."""

    max_silence_s: float
    last_beat: float = field(default_factory=time.monotonic)

    def beat(self) -> None:
        self.last_beat = time.monotonic()

    @property
    def alive(self) -> bool:
        return time.monotonic() - self.last_beat < self.max_silence_s


_DB_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


def create_app(
    pool: asyncpg.Pool, metrics: Metrics, liveness: Liveness, health: Health | None = None
) -> web.Application:
    """/healthz: the event loop runs. /readyz: JSON `{"ready", "reasons", "paused"}`, 503
    with the reasons when the database is away or not migrated, a vendor is paused or the
    worker is stalled (see Health). /metrics: Prometheus text."""
    health = health or Health(stall_s=0)

    async def healthz(_request: web.Request) -> web.Response:
        if liveness.alive:
            return web.json_response({"status": "ok"})
        return web.json_response({"status": "stuck"}, status=503)

    async def readyz(_request: web.Request) -> web.Response:
        reasons = []
        due = 0
        try:
            async with pool.acquire(timeout=5) as conn:
                if pending := await db.pending_migrations(conn):
                    reasons.append(f"migrations pending: {', '.join(pending)}")
                else:
                    due = await presence.jobs_due(conn, health.working_vendors())
        except _DB_ERRORS as error:
            reasons.append(f"database unavailable: {type(error).__name__}: {error}")
        reasons += health.reasons(due)
        body = {"ready": not reasons, "reasons": reasons, "paused": health.paused}
        return web.json_response(body, status=503 if reasons else 200)

    async def metrics_view(_request: web.Request) -> web.Response:
        # serve what we have when the database is away; /readyz tells it
        with suppress(*_DB_ERRORS):
            await metrics.refresh(pool)
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_view)
    return app


@asynccontextmanager
async def serving(app: web.Application, host: str, port: int) -> AsyncIterator[int]:
    """Serve the app; yields the bound port (useful with port 0)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()
