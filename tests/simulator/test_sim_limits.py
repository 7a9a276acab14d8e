"""The published limits: each refusal is a 429 with Retry-After, and each is counted."""

from __future__ import annotations

import asyncio
import base64

from ingest.simulator import ManualClock
from tests.simulator.simclient import BUILD_SECONDS, Start, Vendor


def day_export(day: int) -> dict[str, str]:
    return {
        "locations": "1001",
        "data_type": "ots",
        "start": f"2024-03-{day:02d}T00:00:00",
        "end": f"2024-03-{day:02d}T02:00:00",
        "time_resolution": "1h",
    }


async def test_fourth_running_export_gets_429_with_retry_after(vendor: Vendor) -> None:
    for day in (1, 2, 3):
        assert (await vendor.export(**day_export(day)))["state"] == "started"
    refused = await vendor.get("/api/v1/data/", day_export(4))
    assert refused.status == 429
    assert refused.headers["Retry-After"] == str(int(BUILD_SECONDS))
    assert set(refused.json()) == {"message", "error"}
    assert refused.json()["error"] == 429
    stats = await vendor.stats()
    assert stats["violations"] == {"exports": 1, "calls": 0, "connections": 0}
    assert (stats["exports_started"], stats["exports_running"]) == (3, 3)
    assert stats["max_concurrent_exports"] == 3


async def test_exports_count_as_running_until_built_even_unpolled(vendor: Vendor) -> None:
    for day in (1, 2, 3):
        await vendor.export(**day_export(day))
    vendor.clock.advance(BUILD_SECONDS - 1)
    assert (await vendor.get("/api/v1/data/", day_export(4))).status == 429
    vendor.clock.advance(1)  # nobody polled the first three: their builds ended all the same
    assert await vendor.export(**day_export(4)) == {"state": "started"}
    assert (await vendor.stats())["exports_running"] == 1


async def test_polling_a_running_export_is_not_a_new_export(vendor: Vendor) -> None:
    for day in (1, 2, 3):
        await vendor.export(**day_export(day))
    assert (await vendor.export(**day_export(1)))["state"] == "in_progress"
    assert (await vendor.stats())["violations"]["exports"] == 0


async def test_call_over_the_minute_budget_gets_429_and_counts(start: Start) -> None:
    rate_clock = ManualClock()
    vendor = await start(calls_per_minute=5, rate_clock=rate_clock)
    await vendor.export(**day_export(1))  # exports, polls and topology calls all count
    await vendor.export(**day_export(1))
    for path in ("/api/v1/whoami/", "/api/v1/locations/", "/api/v1/sites/"):
        assert (await vendor.get(path)).status == 200
    refused = await vendor.get("/api/v1/whoami/")
    assert refused.status == 429
    assert refused.headers["Retry-After"] == "60"
    assert refused.json()["error"] == 429
    stats = await vendor.stats()
    assert stats["violations"] == {"exports": 0, "calls": 1, "connections": 0}
    assert stats["vidicenter_calls"] == 6
    rate_clock.advance(60)
    assert (await vendor.get("/api/v1/whoami/")).status == 200


async def test_refused_calls_still_count_in_the_window(start: Start) -> None:
    rate_clock = ManualClock()
    vendor = await start(calls_per_minute=5, rate_clock=rate_clock)
    for _ in range(5):
        assert (await vendor.get("/api/v1/whoami/")).status == 200
    rate_clock.advance(30)
    assert (await vendor.get("/api/v1/whoami/")).status == 429  # recorded at t=30
    rate_clock.advance(31)  # the first five left the window, the refused one did not
    for _ in range(4):
        assert (await vendor.get("/api/v1/whoami/")).status == 200
    refused = await vendor.get("/api/v1/whoami/")  # the fifth: t=30 still counts
    assert refused.status == 429
    # the refused call is recorded too: all six must age out, the last ones in 60 s
    assert refused.headers["Retry-After"] == "60"
    rate_clock.advance(60)
    assert (await vendor.get("/api/v1/whoami/")).status == 200


async def test_third_simultaneous_request_gets_429(start: Start) -> None:
    vendor = await start(slow_share=1.0, slow_seconds=0.5)
    answers = await asyncio.gather(*(vendor.get("/api/v1/whoami/") for _ in range(3)))
    statuses = sorted(a.status for a in answers)
    assert statuses == [200, 200, 429]
    refused = next(a for a in answers if a.status == 429)
    assert refused.headers["Retry-After"] == "1"
    stats = await vendor.stats()
    assert stats["violations"] == {"exports": 0, "calls": 0, "connections": 1}
    assert stats["max_connections_seen"] == 3


async def test_two_simultaneous_requests_are_fine(start: Start) -> None:
    vendor = await start(slow_share=1.0, slow_seconds=0.2)
    answers = await asyncio.gather(*(vendor.get("/api/v1/whoami/") for _ in range(2)))
    assert [a.status for a in answers] == [200, 200]
    stats = await vendor.stats()
    assert stats["violations"]["connections"] == 0
    assert stats["max_connections_seen"] == 2


async def test_bad_credentials_get_the_documented_401(vendor: Vendor) -> None:
    wrong = {"Authorization": "Basic " + base64.b64encode(b"demo:wrong").decode()}
    for headers in (wrong, None):
        answer = await vendor.get("/api/v1/whoami/", headers=headers)
        assert answer.status == 401
        assert answer.json() == {"message": "Invalid API Token", "error": 401}
    assert (await vendor.stats())["vidicenter_unauthorized"] == 2


async def test_whoami_answers_the_username(vendor: Vendor) -> None:
    assert (await vendor.get("/api/v1/whoami/")).json() == {"username": "demo"}


async def test_sim_endpoints_are_not_vendor_calls(vendor: Vendor) -> None:
    await vendor.get("/api/v1/whoami/")
    for _ in range(3):
        await vendor.stats()
    await vendor.post("/_sim/late-uploads")
    assert (await vendor.stats())["calls"] == 1
