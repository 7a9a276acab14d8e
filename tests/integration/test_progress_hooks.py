"""A backfill's progress hears the VidiCenter client's waits through the wiring, as the
metrics do: the call budget and the polls of an export building at the vendor (the
simulator over real HTTP, real PostgreSQL)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import Any

import anyio
import asyncpg

from ingest.config import Settings, load_settings
from ingest.metrics import Metrics
from ingest.progress import Progress
from ingest.simulator import SimConfig, run_simulator
from ingest.vendors.vidicenter import export_query
from ingest.wiring import open_context


def _settings(url: str, db_url: str, **more: Any) -> Settings:
    return load_settings(
        database_url=db_url,
        vidicenter_url=url,
        vidicenter_username="demo",
        vidicenter_token="demo-token",
        **more,
    )


async def _until_heard(heard: anyio.Event, work: Callable[[], Awaitable[object]]) -> None:
    """Run `work` until a wait has been heard of, then cancel it."""
    async with anyio.create_task_group() as tg:

        async def run() -> None:
            await work()

        tg.start_soon(run)
        with anyio.fail_after(30):
            await heard.wait()
        tg.cancel_scope.cancel()


async def test_a_wait_for_the_call_budget_reaches_the_progress_and_the_metrics(
    pool: asyncpg.Pool, db_url: str
) -> None:
    progress = Progress()
    metrics = Metrics()
    heard = anyio.Event()

    def budget_wait(account: str, seconds: float) -> None:
        progress.on_budget_wait(account, seconds)
        heard.set()

    async with run_simulator(SimConfig()) as sim:
        settings = _settings(sim.url, db_url, vidicenter_calls_per_minute=1)
        async with open_context(
            settings, pool, metrics=metrics, on_budget_wait=budget_wait
        ) as wired:
            client = wired.vidicenter["127.0.0.1/demo"]
            await client.list_locations()  # the minute's one call
            await _until_heard(heard, client.list_locations)

    snap = progress.snapshot()
    assert snap.budget_account == "vidicenter:127.0.0.1/demo"
    assert snap.budget_wait_s is not None and 50 < snap.budget_wait_s <= 63
    assert snap.waiting_for() == ["budget"]
    waited = metrics.registry.get_sample_value(
        "ingest_budget_wait_seconds_total", {"account": "vidicenter:127.0.0.1/demo"}
    )
    assert waited is not None and waited > 50


async def test_an_export_building_at_the_vendor_reaches_the_progress_and_the_metrics(
    pool: asyncpg.Pool, db_url: str
) -> None:
    progress = Progress()
    metrics = Metrics()
    heard = anyio.Event()

    def poll_wait(seconds: float) -> None:
        progress.on_poll_wait(seconds)
        heard.set()

    day = date(2024, 3, 5)
    query = export_query("viewers", "1h", day, day + timedelta(days=1), {"locations": ["1001"]})
    async with run_simulator(SimConfig(build_seconds=600)) as sim:
        settings = _settings(sim.url, db_url, vidicenter_poll_initial_s=20)
        async with open_context(settings, pool, metrics=metrics, on_poll_wait=poll_wait) as wired:
            client = wired.vidicenter["127.0.0.1/demo"]
            await _until_heard(heard, lambda: client.run_export(query))

    snap = progress.snapshot()
    assert snap.exports_building == 1
    assert snap.next_poll_s is not None and 10 < snap.next_poll_s <= 24
    assert metrics.registry.get_sample_value("ingest_export_poll_wait_seconds_count") == 1
