"""The simulator's web application: both vendors on one port, the limits, the faults and /_sim/.

VidiCenter lives under `/api/v1/`, Angus at `/api-token-authstream/` and `/api/1/entities`,
so one base URL stands for the three hosts. Every VidiCenter call goes through, in order:
the connection count of its IP (the request is counted in flight whatever happens to it),
Basic auth, the user's sliding 60 s call window (every authenticated call is recorded,
also one refused by a limit), then the faults, then the handler (where the export cap
applies). A refused call is not handled: it starts and polls nothing. Angus calls get
the faults but no limits (none are published). `/_sim/` needs no auth and is not a
vendor call: no counting, no limits, no faults.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import web

from ingest.simulator import angus, vidicenter
from ingest.simulator.config import DEFAULT_HOST, DEFAULT_PORT, SimConfig, knob_fields
from ingest.simulator.faults import FinishedAnswer, drop_connection, error_response, malform
from ingest.simulator.state import STATE, SimState
from ingest.simulator.vidicenter import too_many_requests, vendor_error

log = structlog.get_logger()

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ANGUS_PREFIXES = ("/api-token-authstream", "/api/1/")
UNAUTHORIZED_HEADERS = {"WWW-Authenticate": 'Basic realm="api"'}
SHUTDOWN_TIMEOUT_S = 2.0


def _basic_auth_user(request: web.Request, config: SimConfig) -> str | None:
    """The user if the request carries the configured Basic credentials."""
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, token = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (ValueError, binascii.Error):
        return None
    user_ok = hmac.compare_digest(user.encode(), config.vidicenter_username.encode())
    token_ok = hmac.compare_digest(token.encode(), config.vidicenter_token.encode())
    return user if sep and user_ok and token_ok else None


async def _with_faults(
    request: web.Request, handler: Handler, state: SimState
) -> web.StreamResponse:
    """Handle the call, meeting the faults drawn for it."""
    draw = state.faults.draw(state.config)
    counts = state.counters.faults
    if draw.error_status is not None:
        counts.errors += 1
        return error_response(draw.error_status)
    if draw.slow:
        counts.slow += 1
        await asyncio.sleep(state.config.slow_seconds)
    response = await handler(request)
    if draw.malformed and isinstance(response, FinishedAnswer):
        counts.malformed += 1
        body = response.body
        response.body = malform(bytes(body) if isinstance(body, bytes | bytearray) else b"")
    if draw.drop:
        # after the handler: the call took effect (an export may have started), the answer is lost
        counts.dropped += 1
        drop_connection(request)
    return response


async def _vidicenter_call(
    request: web.Request, handler: Handler, state: SimState
) -> web.StreamResponse:
    config, counters = state.config, state.counters
    with state.connections.hold(request.remote or "unknown") as in_flight:
        counters.calls += 1
        counters.vidicenter_calls += 1
        counters.max_connections_seen = max(counters.max_connections_seen, in_flight)
        user = _basic_auth_user(request, config)
        wait = None
        if user is not None:
            wait = state.calls.record(user, state.rate_now(), config.calls_per_minute)
        if in_flight > config.max_connections:
            counters.violations.connections += 1
            log.warning("simulator.connection_refused", in_flight=in_flight)
            message = f"Too many simultaneous connections: at most {config.max_connections} per IP"
            return too_many_requests(message, 1.0)
        if user is None:
            counters.vidicenter_unauthorized += 1
            return vendor_error(401, "Invalid API Token", UNAUTHORIZED_HEADERS)
        line = len(f"{request.method} {request.raw_path} HTTP/1.1")
        if line > config.max_request_line:
            # what a front server does with a line it does not take; the call still counts
            counters.requests_too_long += 1
            return vendor_error(414, f"Request-URI Too Long ({line} bytes)")
        if wait is not None:
            counters.violations.calls += 1
            log.warning("simulator.call_refused", retry_after_s=wait)
            message = f"Too many API calls: at most {config.calls_per_minute} per minute"
            return too_many_requests(message, wait)
        return await _with_faults(request, handler, state)


@web.middleware
async def vendor_gate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count, limit and fault the vendor calls; let /_sim/ through untouched."""
    state = request.app[STATE]
    if request.path.startswith("/api/v1/") or request.path == "/api/v1":
        return await _vidicenter_call(request, handler, state)
    if request.path.startswith(ANGUS_PREFIXES):
        state.counters.calls += 1
        state.counters.angus_calls += 1
        return await _with_faults(request, handler, state)
    return await handler(request)


def knob_values(config: SimConfig) -> dict[str, Any]:
    """The knobs' current values, as `/_sim/config` shows them."""
    return {f.name: getattr(config, f.name) for f in knob_fields()}


async def sim_stats(request: web.Request) -> web.Response:
    """The counters; tests assert that a client caused no violation."""
    return web.json_response(request.app[STATE].stats())


async def sim_reset(request: web.Request) -> web.Response:
    """Forget exports and counters."""
    request.app[STATE].reset()
    return web.json_response({"reset": True})


async def sim_late_uploads(request: web.Request) -> web.Response:
    """Bump the data version: rebuilt exports see new values."""
    return web.json_response({"data_version": request.app[STATE].late_uploads()})


async def sim_config(request: web.Request) -> web.Response:
    """GET the knobs; POST a JSON object of knob overrides (400 for a bad one)."""
    state = request.app[STATE]
    if request.method == "POST":
        try:
            overrides = await request.json()
            if not isinstance(overrides, dict):
                raise ValueError("expected a JSON object of knob overrides")
            state.configure(**overrides)
        except ValueError as exc:
            return web.json_response({"message": str(exc), "error": 400}, status=400)
    return web.json_response(knob_values(state.config))


def create_app(config: SimConfig | None = None) -> web.Application:
    """The simulator as an aiohttp application (state at `app[STATE]`)."""
    # the parser takes long lines, so that `max_request_line` decides (with a 414)
    app = web.Application(middlewares=[vendor_gate], handler_args={"max_line_size": 1 << 20})
    app[STATE] = SimState(config or SimConfig())
    vidicenter.add_routes(app)
    angus.add_routes(app)
    app.router.add_get("/_sim/stats", sim_stats)
    app.router.add_post("/_sim/reset", sim_reset)
    app.router.add_post("/_sim/late-uploads", sim_late_uploads)
    app.router.add_get("/_sim/config", sim_config)
    app.router.add_post("/_sim/config", sim_config)
    return app


@dataclass(frozen=True)
class RunningSimulator:
    """A simulator serving on a real port."""

    url: str  # base URL of all three vendor hosts, e.g. http://127.0.0.1:8089
    state: SimState
    app: web.Application


def _url_host(host: str) -> str:
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


@asynccontextmanager
async def run_simulator(
    config: SimConfig | None = None, host: str = DEFAULT_HOST, port: int = 0
) -> AsyncIterator[RunningSimulator]:
    """Serve the simulator on `host:port` (0: a free port) while the block runs."""
    app = create_app(config)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_port = runner.addresses[0][1]
        yield RunningSimulator(f"http://{_url_host(host)}:{bound_port}", app[STATE], app)
    finally:
        await runner.cleanup()


async def serve(config: SimConfig, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Serve until cancelled, after logging the URL and the credentials it accepts."""
    async with run_simulator(config, host, port) as sim:
        log.info(
            "simulator.serving",
            url=sim.url,
            stats=f"{sim.url}/_sim/stats",
            vidicenter_username=config.vidicenter_username,
            vidicenter_token=config.vidicenter_token,
            angus_streams=config.angus_streams,
            env={
                "INGEST_VIDICENTER_URL": sim.url,
                "INGEST_ANGUS_CONSOLE_URL": sim.url,
                "INGEST_ANGUS_DATA_URL": sim.url,
            },
        )
        await asyncio.Event().wait()
