"""Injected faults as a client sees them: deterministic from the seed, switchable at run time."""

from __future__ import annotations

import json
import time

import aiohttp
import pytest

from tests.simulator.simclient import THREE_DAYS_ANGUS, Start, Vendor

OTS = {
    "locations": "1001",
    "data_type": "ots",
    "start": "2024-03-04T10:00:00",
    "end": "2024-03-04T12:00:00",
    "time_resolution": "1h",
}


async def test_error_share_answers_server_errors_and_handles_nothing(start: Start) -> None:
    vendor = await start(error_share=1.0)
    statuses = {(await vendor.get("/api/v1/data/", OTS)).status for _ in range(12)}
    assert statuses <= {500, 502, 503} and len(statuses) > 1
    stats = await vendor.stats()
    assert stats["exports_started"] == 0
    assert stats["faults"]["errors"] == 12


async def test_slow_share_delays_answers(start: Start) -> None:
    vendor = await start(slow_share=1.0, slow_seconds=0.3)
    began = time.monotonic()
    assert (await vendor.get("/api/v1/whoami/")).status == 200
    assert time.monotonic() - began >= 0.3
    assert (await vendor.stats())["faults"]["slow"] == 1


async def test_malformed_share_cuts_finished_answers_only(start: Start) -> None:
    vendor = await start(malformed_share=1.0)
    assert (await vendor.export(OTS))["state"] == "started"  # not a finished answer: intact
    vendor.clock.advance(vendor.sim.state.config.build_seconds)
    answer = await vendor.get("/api/v1/data/", OTS)
    assert answer.status == 200
    with pytest.raises(ValueError):
        json.loads(answer.text)
    assert (await vendor.stats())["faults"]["malformed"] == 1


async def test_drop_share_closes_the_connection_without_answer(start: Start) -> None:
    vendor = await start(drop_share=1.0)
    with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
        await vendor.get("/api/v1/data/", OTS)
    stats = await vendor.stats()
    assert stats["faults"]["dropped"] >= 1
    assert stats["exports_started"] == 1  # the call took effect; only its answer was lost


async def test_faults_are_deterministic_from_the_seed(start: Start) -> None:
    async def statuses(vendor: Vendor) -> list[int]:
        return [(await vendor.get("/api/v1/whoami/")).status for _ in range(16)]

    first = await statuses(await start(error_share=0.5, seed=3))
    assert first == await statuses(await start(error_share=0.5, seed=3))
    assert 200 in first and set(first) - {200}


async def test_faults_switch_on_and_off_at_run_time(vendor: Vendor) -> None:
    assert (await vendor.post("/_sim/config", {"error_share": 1.0})).status == 200
    assert (await vendor.get("/api/v1/whoami/")).status in (500, 502, 503)
    assert (await vendor.stats())["faults"]["errors"] == 1  # /_sim/ never meets faults
    vendor.sim.state.configure(error_share=0.0)
    assert (await vendor.get("/api/v1/whoami/")).status == 200


async def test_faults_apply_to_angus_endpoints(start: Start) -> None:
    vendor = await start(error_share=1.0)
    answer = await vendor.post("/api-token-authstream/", {})
    assert answer.status in (500, 502, 503)
    vendor.sim.state.configure(error_share=0.0, malformed_share=1.0)
    token = await vendor.token()  # a token is not a finished answer: intact
    page = await vendor.get(
        "/api/1/entities", THREE_DAYS_ANGUS, {"Authorization": f"Bearer {token}"}
    )
    with pytest.raises(ValueError):
        json.loads(page.text)
