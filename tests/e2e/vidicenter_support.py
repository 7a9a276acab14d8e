"""Helpers of the VidiCenter end-to-end tests: `ingest` as a subprocess, the simulator on a
real port, real PostgreSQL.

The simulator runs in the test's event loop while `ingest` runs in a child process, so the
two meet only over HTTP and the database, as in production. The simulator's own row
generator tells what VidiCenter serves for a request, which costs no vendor calls.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web

from ingest.simulator import STATE, RunningSimulator, SimConfig, SimState, create_app
from ingest.simulator.exports import generate_rows
from ingest.simulator.topology import SCOPE_KEYS
from ingest.simulator.vidicenter import parse_export

LOCATIONS = ("1001", "1002", "1003", "1004", "1005", "1006")
SITES = ("501", "502")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# --- the simulator, with a record of the export requests it answered -------------------


@dataclass(frozen=True)
class ExportCall:
    """One request to /api/v1/data/ as the vendor saw it, and the state it answered."""

    params: tuple[tuple[str, str], ...]
    status: int
    state: str | None  # started, in_progress, finished, failed; None for an error answer

    @property
    def query(self) -> dict[str, str]:
        return dict(self.params)

    @property
    def forced(self) -> bool:
        return "force_rebuild" in self.query

    @property
    def identity(self) -> tuple[tuple[str, str], ...]:
        """The export this request is about: its parameters minus the flags."""
        flags = {"force_rebuild", "status_only"}
        return tuple(sorted((k, v) for k, v in self.params if k not in flags))


@dataclass
class Simulator:
    """A running simulator and the export requests it has answered."""

    running: RunningSimulator
    calls: list[ExportCall] = field(default_factory=list)
    # called with each export request's query before the simulator answers it
    before_export: Callable[[Mapping[str, str]], None] | None = None

    @property
    def url(self) -> str:
        return self.running.url

    @property
    def state(self) -> SimState:
        return self.running.state

    def stats(self) -> dict[str, Any]:
        return dict(self.state.stats())

    def starts(self) -> list[ExportCall]:
        """The requests that started a build (first builds and rebuilds)."""
        return [c for c in self.calls if c.state == "started"]

    def exported_days(self) -> Counter[tuple[str, str, str, str]]:
        """(data type, resolution, location, day) of every build started, with repeats: an
        export counts once for each active location and day it spans (a site named stands
        for its locations as the simulator holds them now)."""
        seen: Counter[tuple[str, str, str, str]] = Counter()
        for call in self.starts():
            q = call.query
            first = date.fromisoformat(q["start"][:10])
            end = date.fromisoformat(q["end"][:10])
            days = [first + timedelta(days=i) for i in range((end - first).days)]
            for location in self.asked_locations(q):
                for day in days:
                    seen[(q["data_type"], q["time_resolution"], location, day.isoformat())] += 1
        return seen

    def asked_locations(self, query: Mapping[str, str]) -> list[str]:
        """The active locations an export's query stands for, listed or through their site."""
        sources = {k: query[k] for k in SCOPE_KEYS if k in query}
        return [str(loc.id) for loc in self.state.topology.resolve_scope(sources) if loc.active]


def _recorder(sim: Simulator) -> Any:
    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        exporting = request.path.rstrip("/") == "/api/v1/data"
        if exporting and sim.before_export is not None:
            sim.before_export(request.query)
        response = await handler(request)
        if exporting:
            state = None
            if isinstance(response, web.Response) and response.status == 200:
                body = response.body if isinstance(response.body, bytes) else b""
                # a finished answer can be large: only its head says the state
                head = body[:64].decode("utf-8", "replace")
                for name in ("started", "in_progress", "finished", "failed"):
                    if f'"state": "{name}"' in head:
                        state = name
            sim.calls.append(ExportCall(tuple(request.query.items()), response.status, state))
        return response

    return record


@asynccontextmanager
async def simulator(**knobs: Any) -> AsyncIterator[Simulator]:
    """The simulator on a free loopback port, recording what it is asked for."""
    app = create_app(SimConfig(**knobs))
    running = RunningSimulator("", app[STATE], app)
    sim = Simulator(running)
    app.middlewares.insert(0, _recorder(sim))  # outermost: sees refused calls too
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        sim.running = RunningSimulator(f"http://127.0.0.1:{port}", app[STATE], app)
        yield sim
    finally:
        await runner.cleanup()


def assert_no_violations(sim: Simulator) -> None:
    stats = sim.stats()
    assert stats["violations"] == {"exports": 0, "calls": 0, "connections": 0}, stats
    assert stats["max_concurrent_exports"] <= 3, stats
    assert stats["max_connections_seen"] <= 2, stats


# --- what the vendor serves -----------------------------------------------------------


def day_query(data_type: str, resolution: str, day: date, **params: str) -> dict[str, str]:
    """A VidiCenter export request for one whole day, as ingest sends it."""
    return {
        "data_type": data_type,
        "time_resolution": resolution,
        "start": f"{day.isoformat()}T00:00:00",
        "end": f"{(day + timedelta(days=1)).isoformat()}T00:00:00",
        **params,
    }


def vendor_rows(sim: Simulator, query: Mapping[str, str]) -> list[dict[str, Any]]:
    """The rows the simulator serves for `query` now (pure: no call, no build)."""
    spec = parse_export(query, sim.state)
    return generate_rows(spec, sim.state.gen_options())


# --- the ingest command ---------------------------------------------------------------


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str

    def explain(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr (tail)\n{self.err[-3000:]}"


def ingest_env(db_url: str, sim: Simulator | None, **settings: object) -> dict[str, str]:
    """This process's environment without any INGEST_ variable, plus fast test settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    env |= {
        "INGEST_DATABASE_URL": db_url,
        "INGEST_VIDICENTER_USERNAME": "demo",
        "INGEST_VIDICENTER_TOKEN": "demo-token",
        "INGEST_VIDICENTER_POLL_INITIAL_S": "0.2",
        "INGEST_VIDICENTER_POLL_MAX_S": "1",
        "INGEST_WORKER_IDLE_POLL_S": "0.2",
        "INGEST_JOB_RETRY_BASE_S": "0",
        "INGEST_JOB_RETRY_MAX_S": "0",
        "INGEST_LOG_FORMAT": "json",
    }
    if sim is not None:
        env["INGEST_VIDICENTER_URL"] = sim.url
    env |= {f"INGEST_{k.upper()}": str(v) for k, v in settings.items()}
    return {k: v for k, v in env.items() if v != "None"}


async def start_ingest(env: Mapping[str, str], *args: str, cwd: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ingest",
        *args,
        env=dict(env),
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def finish(proc: asyncio.subprocess.Process, limit_s: float = 60.0) -> Ran:
    """Wait for the process's end; kill it and fail after `limit_s`."""
    try:
        out, err = await asyncio.wait_for(proc.communicate(), limit_s)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        raise AssertionError(
            f"ingest did not finish within {limit_s} s\n{err.decode()[-3000:]}"
        ) from None
    assert proc.returncode is not None
    return Ran(proc.returncode, out.decode(), err.decode())


async def run_ingest(env: Mapping[str, str], *args: str, cwd: Path, limit_s: float = 60.0) -> Ran:
    """Run `python -m ingest ARGS` to its end."""
    return await finish(await start_ingest(env, *args, cwd=cwd), limit_s)


def backfill_args(
    data_type: str,
    first: date,
    last: date | None = None,
    *,
    resolution: str | None = None,
    locations: Iterable[str] | None = LOCATIONS,
    **options: str | bool,
) -> list[str]:
    args = ["backfill", "--vendor", "vidicenter", "--data-type", data_type]
    if resolution is not None:
        args += ["--resolution", resolution]
    args += ["--from", first.isoformat(), "--to", (last or first).isoformat()]
    if locations is not None:
        args += ["--locations", ",".join(locations)]
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            args.append(flag)
        elif value is not False:
            args += [flag, str(value)]
    return args


# --- comparing tables with what the vendor served -------------------------------------


def plain_value(value: object) -> object:
    """A delivered value as PostgreSQL gives it back: timestamps as naive datetimes."""
    if isinstance(value, str) and len(value) == 19 and value[4] == "-" and value[10] in "T ":
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


def _extra_text(extra: Mapping[str, object]) -> str:
    return json.dumps(extra, sort_keys=True)


async def table_columns(pool: asyncpg.Pool, table: str) -> set[str]:
    rows = await pool.fetch(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = 'vidicenter' AND table_name = $1",
        table,
    )
    return {r["column_name"] for r in rows}


async def differences(
    pool: asyncpg.Pool,
    table: str,
    expected: Iterable[Mapping[str, object]],
    *,
    ignore: Iterable[str] = (),
) -> tuple[int, int, list[tuple[object, ...]], list[tuple[object, ...]]]:
    """Compare every stored row of `table` with the vendor's rows, key by key.

    A vendor key that is a column must hold the delivered value (NULL for null,
    period_start as delivered); every other key must be in `extra`. Returns the row
    counts (expected, stored) and a few rows missing from and unexpected in the table.
    """
    columns = await table_columns(pool, table)
    skip = {"extra", *ignore}
    wanted = [dict(r) for r in expected]
    compared = sorted({k for r in wanted for k in r if k in columns} - skip)
    want: Counter[tuple[object, ...]] = Counter(
        (
            *(plain_value(r.get(c)) for c in compared),
            _extra_text({k: v for k, v in r.items() if k not in columns and k not in skip}),
        )
        for r in wanted
    )
    select = ", ".join(f'"{c}"' for c in compared)
    got: Counter[tuple[object, ...]] = Counter(
        (*(r[c] for c in compared), _extra_text(json.loads(r["extra"])))
        for r in await pool.fetch(f"SELECT {select}, extra FROM vidicenter.{table}")
    )
    missing = list((want - got).elements())[:3]
    unexpected = list((got - want).elements())[:3]
    return sum(want.values()), sum(got.values()), missing, unexpected


async def assert_table_holds(
    pool: asyncpg.Pool,
    table: str,
    expected: Iterable[Mapping[str, object]],
    *,
    ignore: Iterable[str] = (),
) -> None:
    n_want, n_got, missing, unexpected = await differences(pool, table, expected, ignore=ignore)
    assert (n_got, missing, unexpected) == (n_want, [], []), (
        f"vidicenter.{table}: {n_got} rows stored, {n_want} served; "
        f"missing {missing}; unexpected {unexpected}"
    )


async def job_counts(pool: asyncpg.Pool) -> dict[str, int]:
    rows = await pool.fetch("SELECT status, count(*) AS n FROM ingest.jobs GROUP BY status")
    counts = {s: 0 for s in ("pending", "running", "done", "dead")}
    counts.update({r["status"]: r["n"] for r in rows})
    return counts
