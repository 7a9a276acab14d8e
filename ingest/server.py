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


def create_app(pool: asyncpg.Pool, metrics: Metrics, liveness: Liveness) -> web.Application:
    async def healthz(_request: web.Request) -> web.Response:
        if liveness.alive:
            return web.json_response({"status": "ok"})
        return web.json_response({"status": "stuck"}, status=503)

    async def readyz(_request: web.Request) -> web.Response:
        try:
            async with pool.acquire(timeout=5) as conn:
                pending = await db.pending_migrations(conn)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            return web.json_response(
                {"status": "database unavailable", "error": str(error)}, status=503
            )
        if pending:
            return web.json_response(
                {"status": "migrations pending", "pending": pending}, status=503
            )
        return web.json_response({"status": "ready"})

    async def metrics_view(_request: web.Request) -> web.Response:
        # serve what we have when the database is away; /readyz tells it
        with suppress(OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
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
