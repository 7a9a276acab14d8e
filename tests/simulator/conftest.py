"""Fixtures: simulators on real ports, driven over real HTTP, with a hand-moved clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import aiohttp
import pytest

from ingest.simulator import ManualClock, SimConfig, run_simulator
from tests.simulator.simclient import BUILD_SECONDS, Start, Vendor


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def start(clock: ManualClock) -> AsyncIterator[Start]:
    """Start a simulator with test defaults (manual clock, no call limit) and knob overrides."""
    async with AsyncExitStack() as stack:

        async def _start(**knobs: Any) -> Vendor:
            defaults: dict[str, Any] = {
                "clock": clock,
                "build_seconds": BUILD_SECONDS,
                "calls_per_minute": 100_000,
            }
            sim = await stack.enter_async_context(run_simulator(SimConfig(**defaults | knobs)))
            session = await stack.enter_async_context(aiohttp.ClientSession())
            return Vendor(sim, session, clock)

        yield _start


@pytest.fixture
async def vendor(start: Start) -> Vendor:
    return await start()
