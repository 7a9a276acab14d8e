"""The VidiCenter client's edge cases, against scripted VidiCenter answers (aioresponses)."""

from __future__ import annotations

import base64
import random
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import date, timedelta
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import anyio
import msgspec
import pytest
from pydantic import SecretStr

from ingest.errors import (
    AuthError,
    BadPayload,
    ConfigError,
    ExportFailed,
    ExportPending,
    RateLimited,
    VendorRejected,
    VendorUnavailable,
)
from ingest.vendors.builds import BuildTimes
from ingest.vendors.http import parse_retry_after
from ingest.vendors.vidicenter import VidiCenterClient, export_kind, export_query
from tests.integration.conftest import Mocked

BASE = "https://vidicenter.test"
USERNAME = "ops.person"
TOKEN = "f00dbabe-very-secret-api-token"
AUTHORIZATION = "Basic " + base64.b64encode(f"{USERNAME}:{TOKEN}".encode()).decode()
WHOAMI = f"{BASE}/api/v1/whoami/"
LOCATIONS = f"{BASE}/api/v1/locations/"
DATA = re.compile(r"^https://vidicenter\.test/api/v1/data/\?")
DAY = date(2018, 1, 29)
NEXT = DAY + timedelta(days=1)
QUERY = export_query(
    "ots", "1h", DAY, NEXT, {"locations": ["11", "12", "13"]}, [("group_by_demographics", "1")]
)
EXPORT_URL = f"{BASE}/api/v1/data/?{QUERY}"
ROWS = [
    {"location_id": 11, "period_start": "2018-01-29 02:00:00", "ots": 12, "status": "active"},
    {"location_id": 12, "period_start": "2018-01-29 02:00:00", "ots": 0, "status": "inactive"},
]
T0 = 1_000.0
POLL_INITIAL_S = 3.0
POLL_MAX_S = 30.0


class Clock:
    """A monotonic clock that only moves when the fake sleep says so."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class Budget:
    """An in-memory call budget: counts the calls and those in flight."""

    def __init__(self) -> None:
        self.calls = 0
        self.in_flight = 0

    @asynccontextmanager
    async def call(self) -> AsyncIterator[None]:
        self.calls += 1
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1


class Sleeps:
    """A sleep that records each wait and advances the clock instead of waiting."""

    def __init__(self, clock: Clock, budget: Budget) -> None:
        self.clock = clock
        self.budget = budget
        self.waits: list[float] = []
        self.calls_in_flight: list[int] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.calls_in_flight.append(self.budget.in_flight)
        self.clock.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def budget() -> Budget:
    return Budget()


@pytest.fixture
def sleeps(clock: Clock, budget: Budget) -> Sleeps:
    return Sleeps(clock, budget)


@pytest.fixture
def make_client(
    session: aiohttp.ClientSession, clock: Clock, sleeps: Sleeps, budget: Budget
) -> Callable[..., VidiCenterClient]:
    def make(**overrides: Any) -> VidiCenterClient:
        settings: dict[str, Any] = {
            "base_url": BASE,
            "username": USERNAME,
            "token": SecretStr(TOKEN),
            "budget": budget,
            "retries": 2,
            "poll_initial_s": POLL_INITIAL_S,
            "poll_max_s": POLL_MAX_S,
            "deadline_s": 3600.0,
            "sleep": sleeps,
            "clock": clock,
            "rng": random.Random(0),
        }
        return VidiCenterClient(session, **(settings | overrides))

    return make


@pytest.fixture
def client(make_client: Callable[..., VidiCenterClient]) -> VidiCenterClient:
    return make_client()


def script(mocked: Mocked, *answers: dict[str, Any]) -> None:
    """The export endpoint's next answers, one per request, in order."""
    for answer in answers:
        mocked.get(DATA, payload=answer)


def finished(rows: list[dict[str, Any]] = ROWS, **rest: Any) -> dict[str, Any]:
    return {"state": "finished", "data": rows, **rest}


def data_urls(mocked: Mocked) -> list[str]:
    return [sent.url for sent in mocked.sent if "/api/v1/data/" in sent.url]


def nominal_poll_wait(n: int, *, initial: float = POLL_INITIAL_S, cap: float = POLL_MAX_S) -> float:
    return min(cap, initial * 2.0**n)


# --- credentials and transport ----------------------------------------------------------


async def test_basic_auth_header_is_sent_on_every_call_and_the_token_is_in_no_url(
    client: VidiCenterClient, mocked: Mocked, budget: Budget
) -> None:
    mocked.get(WHOAMI, status=503)
    mocked.get(WHOAMI, payload={"username": USERNAME})
    mocked.get(LOCATIONS, payload=[{"id": 11}])
    script(mocked, {"state": "started"}, finished())

    assert await client.whoami() == USERNAME
    await client.list_locations()
    await client.run_export(QUERY, force=True)

    assert len(mocked.sent) == 5
    assert [sent.headers.get("Authorization") for sent in mocked.sent] == [AUTHORIZATION] * 5
    for sent in mocked.sent:
        assert TOKEN not in sent.url
        assert USERNAME not in sent.url
    assert budget.calls == 5  # every request went through the shared budget


@pytest.mark.parametrize(
    "base_url",
    [
        "http://vidicenter.test",
        "http://10.1.2.3:8000",
        "http://127.0.0.1.evil.test",
        "http://localhost.evil.test",
        "ftp://vidicenter.test",
    ],
)
async def test_plain_http_to_a_remote_host_is_refused_at_construction_naming_the_setting(
    make_client: Callable[..., VidiCenterClient], mocked: Mocked, base_url: str
) -> None:
    with pytest.raises(ConfigError, match="INGEST_VIDICENTER_URL") as caught:
        make_client(base_url=base_url)

    assert TOKEN not in str(caught.value)
    assert mocked.sent == []


@pytest.mark.parametrize(
    "base_url", ["http://127.0.0.1:8080", "http://localhost:8080/", "http://[::1]:8080"]
)
async def test_plain_http_to_a_loopback_host_is_accepted(
    make_client: Callable[..., VidiCenterClient], mocked: Mocked, base_url: str
) -> None:
    client = make_client(base_url=base_url)
    mocked.get(f"{base_url.rstrip('/')}/api/v1/whoami/", payload={"username": USERNAME})

    assert await client.whoami() == USERNAME


# --- the export lifecycle -----------------------------------------------------------------


async def test_started_in_progress_finished_returns_the_answer_with_data_left_raw(
    client: VidiCenterClient, mocked: Mocked
) -> None:
    script(
        mocked,
        {"state": "started"},
        {"state": "in_progress"},
        finished(total_rows=2, new_key_nobody_announced=True),
    )

    answer = await client.run_export(QUERY)

    assert answer["state"] == "finished"
    assert answer["total_rows"] == 2
    assert answer["new_key_nobody_announced"] is True
    assert isinstance(answer["data"], msgspec.Raw)
    assert msgspec.json.decode(answer["data"]) == ROWS
    assert data_urls(mocked) == [EXPORT_URL] * 3


async def test_polls_are_spaced_by_growing_jittered_waits_capped_at_poll_max(
    make_client: Callable[..., VidiCenterClient], mocked: Mocked, sleeps: Sleeps
) -> None:
    observed: list[float] = []
    client = make_client(on_poll_wait=observed.append)
    script(mocked, {"state": "started"}, *[{"state": "in_progress"}] * 8, finished())

    await client.run_export(QUERY)

    nominal = [nominal_poll_wait(n) for n in range(9)]
    assert nominal[-1] == POLL_MAX_S  # the series reached the cap
    assert len(sleeps.waits) == 9
    ratios = [wait / expected for wait, expected in zip(sleeps.waits, nominal, strict=True)]
    assert all(0.8 <= ratio <= 1.2 for ratio in ratios)
    assert max(ratios) - min(ratios) > 0.05  # jittered, not the bare series
    assert max(sleeps.waits[:3]) < min(sleeps.waits[-3:])  # growing
    assert observed == sleeps.waits  # the poll-wait metric sees what was slept
    assert sleeps.calls_in_flight == [0] * 9  # no budget place held while waiting


async def test_with_no_build_seen_a_big_export_first_polls_later_than_a_small_one(
    client: VidiCenterClient, mocked: Mocked, sleeps: Sleeps
) -> None:
    script(mocked, {"state": "started"}, finished())
    await client.run_export(QUERY, expected_rows=360_000)

    # 3 s for up to 10,000 rows, times the square root of 36
    [wait] = sleeps.waits
    assert 18.0 <= wait <= 18.0 * 1.2


async def _learn_then_export_again(
    client: VidiCenterClient, mocked: Mocked, sleeps: Sleeps
) -> float:
    """A first export finds its build not ready twice, then ready; a second of its kind
    follows (its waits left in `sleeps`). The build time the first one taught."""
    script(mocked, {"state": "started"}, *[{"state": "in_progress"}] * 2, finished())
    await client.run_export(QUERY, expected_rows=1000)
    not_ready_at, ready_after = sum(sleeps.waits[:2]), sum(sleeps.waits)
    sleeps.waits.clear()
    script(mocked, {"state": "started"}, finished())
    await client.run_export(QUERY, expected_rows=1000)
    return not_ready_at + 0.75 * (ready_after - not_ready_at)


async def test_once_a_build_is_seen_an_export_of_its_kind_is_polled_once_when_ready(
    client: VidiCenterClient, mocked: Mocked, sleeps: Sleeps
) -> None:
    # the first export finds out: not ready after about 3 and 9 s, ready after about 21
    expected = await _learn_then_export_again(client, mocked, sleeps)

    # one wait, just past the build time seen: two calls for the whole export
    [wait] = sleeps.waits
    assert expected * 1.15 + 0.5 <= wait <= (expected * 1.15 + 0.5) * 1.05
    assert len(data_urls(mocked)) == 4 + 2


class WaitingBudget(Budget):
    """A call budget whose first call waits `wait_s` (the fake clock moves) for room."""

    def __init__(self, clock: Clock, wait_s: float) -> None:
        super().__init__()
        self.clock = clock
        self.wait_s = wait_s

    @asynccontextmanager
    async def call(self) -> AsyncIterator[None]:
        if self.calls == 0:
            self.clock.now += self.wait_s
        async with super().call():
            yield


async def test_a_build_is_timed_from_when_its_request_left_not_from_the_wait_for_the_budget(
    make_client: Callable[..., VidiCenterClient], mocked: Mocked, sleeps: Sleeps, clock: Clock
) -> None:
    client = make_client(budget=WaitingBudget(clock, wait_s=40.0))
    expected = await _learn_then_export_again(client, mocked, sleeps)

    # the 40 s the start waited for the budget are no part of the build
    [wait] = sleeps.waits
    assert expected * 1.15 + 0.5 <= wait <= (expected * 1.15 + 0.5) * 1.05


async def test_an_export_that_waited_for_the_probe_past_its_expected_end_polls_at_once(
    make_client: Callable[..., VidiCenterClient], mocked: Mocked, sleeps: Sleeps, clock: Clock
) -> None:
    builds = BuildTimes()
    client = make_client(builds=builds)
    script(mocked, {"state": "started"}, finished())

    async def export() -> None:
        with await client.run_export(QUERY, expected_rows=1000):
            pass

    builds.start_probe()  # another export is finding out how long builds take
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(export)
            await anyio.wait_all_tasks_blocked()
            clock.now += 100.0  # the probe's build was long
            await builds.observe(export_kind(QUERY), 1000, not_ready_at=15.0, ready_after=25.0)
            builds.end_probe()

    # a build like the probe's (22.5 s) ended long ago: no wait, two calls
    assert sleeps.waits == [0.0]
    assert len(data_urls(mocked)) == 2


async def test_an_export_slower_than_those_seen_is_polled_at_growing_intervals(
    client: VidiCenterClient, mocked: Mocked, sleeps: Sleeps
) -> None:
    script(mocked, {"state": "started"}, {"state": "in_progress"}, finished())
    await client.run_export(QUERY, expected_rows=1000)
    sleeps.waits.clear()
    script(mocked, {"state": "started"}, *[{"state": "in_progress"}] * 3, finished())

    await client.run_export(QUERY, expected_rows=1000)

    _first, *late = sleeps.waits
    assert len(late) == 3
    assert late[0] < late[1] < late[2] and max(late) <= POLL_MAX_S


async def test_no_poll_wait_is_longer_than_poll_max_s(
    make_client: Callable[..., VidiCenterClient], mocked: Mocked, sleeps: Sleeps
) -> None:
    client = make_client(poll_initial_s=10.0, poll_max_s=10.0)
    script(mocked, {"state": "started"}, *[{"state": "in_progress"}] * 5, finished())

    await client.run_export(QUERY)

    assert len(sleeps.waits) == 6
    assert max(sleeps.waits) <= 10.0


async def test_status_is_accepted_in_place_of_state(
    client: VidiCenterClient, mocked: Mocked
) -> None:
    script(
        mocked,
        {"status": "started"},
        {"status": "in_progress"},
        {"status": "finished", "data": ROWS},
    )

    answer = await client.run_export(QUERY)

    assert msgspec.json.decode(answer["data"]) == ROWS
    assert len(data_urls(mocked)) == 3


async def test_the_status_of_ots_rows_inside_data_is_not_taken_for_the_export_state(
    client: VidiCenterClient, mocked: Mocked
) -> None:
    rows = [{"location_id": 11, "status": "active", "ots": 3}]
    script(mocked, {"state": "in_progress"}, {"state": "finished", "data": rows})

    answer = await client.run_export(QUERY)

    assert answer["state"] == "finished"
    assert msgspec.json.decode(answer["data"]) == rows  # the row keeps its own status


async def test_force_adds_force_rebuild_to_the_first_request_only_and_polls_repeat_the_query(
    client: VidiCenterClient, mocked: Mocked
) -> None:
    script(mocked, {"state": "started"}, {"state": "in_progress"}, finished())

    await client.run_export(QUERY, force=True)

    assert data_urls(mocked) == [f"{EXPORT_URL}&force_rebuild=1", EXPORT_URL, EXPORT_URL]


async def test_without_force_no_request_carries_force_rebuild(
    client: VidiCenterClient, mocked: Mocked
) -> None:
    script(mocked, {"state": "started"}, finished())

    await client.run_export(QUERY)

    assert data_urls(mocked) == [EXPORT_URL, EXPORT_URL]


async def test_a_poll_retried_after_a_server_error_is_still_the_plain_query(
    client: VidiCenterClient, mocked: Mocked
) -> None:
    mocked.get(DATA, payload={"state": "started"})
    mocked.get(DATA, status=503)
    script(mocked, finished())

    await client.run_export(QUERY, force=True)

    assert data_urls(mocked) == [f"{EXPORT_URL}&force_rebuild=1", EXPORT_URL, EXPORT_URL]


@pytest.mark.parametrize(
    "answers",
    [
        [{"state": "started"}, {"state": "in_progress"}, finished()],
        [finished()],
    ],
    ids=["after-polls", "finished-at-once"],
)
async def test_on_started_is_awaited_once_after_the_first_answer(
    client: VidiCenterClient, mocked: Mocked, answers: list[dict[str, Any]]
) -> None:
    requests_when_called: list[int] = []

    async def on_started() -> None:
        requests_when_called.append(len(mocked.sent))

    script(mocked, *answers)

    await client.run_export(QUERY, on_started=on_started)

    assert requests_when_called == [1]


async def test_a_failed_export_is_export_failed_with_the_vendor_reason(
    client: VidiCenterClient, mocked: Mocked
) -> None:
    reason = "Too many rows: 3000001 > 3000000"
    script(mocked, {"state": "started"}, {"state": "failed", "fail_reason": reason})

    with pytest.raises(ExportFailed) as caught:
        await client.run_export(QUERY)

    assert reason in str(caught.value)
    assert len(data_urls(mocked)) == 2  # no poll after the failure


async def test_a_failed_export_without_a_reason_says_so(
    client: VidiCenterClient, mocked: Mocked
) -> None:
    script(mocked, {"state": "failed"})

    with pytest.raises(ExportFailed, match="no reason given"):
        await client.run_export(QUERY)


async def test_an_export_in_progress_past_the_deadline_is_export_pending_without_sleeping_past_it(
    make_client: Callable[..., VidiCenterClient], mocked: Mocked, sleeps: Sleeps, clock: Clock
) -> None:
    deadline_s = 60.0
    client = make_client(deadline_s=deadline_s)
    mocked.get(DATA, payload={"state": "in_progress"}, repeat=True)

    with pytest.raises(ExportPending):
        await client.run_export(QUERY)

    assert clock.now - T0 <= deadline_s
    assert sum(sleeps.waits) <= deadline_s
    assert len(sleeps.waits) >= 4  # it did poll for a while first
    assert len(data_urls(mocked)) == len(sleeps.waits) + 1  # a poll after every wait
    # it gave up only because the next wait could overshoot
    left = deadline_s - sum(sleeps.waits)
    assert left < 1.2 * nominal_poll_wait(len(sleeps.waits))


async def test_a_retry_after_beyond_the_deadline_is_not_slept_through(
    make_client: Callable[..., VidiCenterClient], mocked: Mocked, clock: Clock
) -> None:
    deadline_s = 60.0
    client = make_client(deadline_s=deadline_s)
    mocked.get(DATA, payload={"state": "started"})
    mocked.get(DATA, status=429, headers={"Retry-After": "3600"})
    script(mocked, finished())

    with pytest.raises((RateLimited, ExportPending)):
        await client.run_export(QUERY)

    assert clock.now - T0 <= deadline_s


# --- answers without the documented shape -------------------------------------------------


async def test_an_unknown_export_state_is_bad_payload(
    client: VidiCenterClient, mocked: Mocked
) -> None:
    script(mocked, {"state": "queued"})

    with pytest.raises(BadPayload, match="unknown export state 'queued'"):
        await client.run_export(QUERY)


@pytest.mark.parametrize(
    "answer",
    [{"data": []}, {"state": None}, {"state": 3}],
    ids=["no-state", "null-state", "number-state"],
)
async def test_an_answer_without_a_state_is_bad_payload(
    client: VidiCenterClient, mocked: Mocked, answer: dict[str, Any]
) -> None:
    script(mocked, answer)

    with pytest.raises(BadPayload, match="no 'state'"):
        await client.run_export(QUERY)


async def test_a_finished_export_without_data_is_bad_payload(
    client: VidiCenterClient, mocked: Mocked
) -> None:
    script(mocked, {"state": "finished"})

    with pytest.raises(BadPayload, match="no 'data'"):
        await client.run_export(QUERY)


@pytest.mark.parametrize(
    "body",
    ["<html>502 Bad Gateway</html>", '{"state": "finished", "data": NaN}', ""],
    ids=["html", "nan", "empty"],
)
async def test_a_body_that_is_not_json_is_bad_payload_and_is_not_retried(
    client: VidiCenterClient, mocked: Mocked, sleeps: Sleeps, body: str
) -> None:
    mocked.get(DATA, body=body, content_type="text/html", repeat=True)

    with pytest.raises(BadPayload, match="not JSON"):
        await client.run_export(QUERY)

    assert len(mocked.sent) == 1
    assert sleeps.waits == []


@pytest.mark.parametrize(
    "body", ['[{"state": "finished", "data": []}]', "null", '"finished"'], ids=str
)
async def test_json_that_is_not_an_object_is_bad_payload(
    client: VidiCenterClient, mocked: Mocked, body: str
) -> None:
    mocked.get(DATA, body=body)

    with pytest.raises(BadPayload, match="not an object"):
        await client.run_export(QUERY)

    assert len(mocked.sent) == 1


# --- retries ------------------------------------------------------------------------------


async def test_429_with_retry_after_waits_that_long_then_retries_and_succeeds(
    client: VidiCenterClient, mocked: Mocked, sleeps: Sleeps
) -> None:
    mocked.get(WHOAMI, status=429, headers={"Retry-After": "7"})
    mocked.get(WHOAMI, payload={"username": USERNAME})

    assert await client.whoami() == USERNAME
    assert sleeps.waits == [7.0]
    assert len(mocked.sent) == 2


async def test_503_with_retry_after_waits_that_long_then_retries_and_succeeds(
    client: VidiCenterClient, mocked: Mocked, sleeps: Sleeps
) -> None:
    mocked.get(WHOAMI, status=503, headers={"Retry-After": "5"})
    mocked.get(WHOAMI, payload={"username": USERNAME})

    assert await client.whoami() == USERNAME
    assert sleeps.waits == [5.0]


async def test_500_and_502_are_retried_with_growing_backoff(
    client: VidiCenterClient, mocked: Mocked, sleeps: Sleeps
) -> None:
    mocked.get(WHOAMI, status=500, body="Internal Server Error")
    mocked.get(WHOAMI, status=502, body="<html>Bad Gateway</html>", content_type="text/html")
    mocked.get(WHOAMI, payload={"username": USERNAME})

    assert await client.whoami() == USERNAME
    assert len(mocked.sent) == 3
    first, second = sleeps.waits
    assert 0.5 <= first <= 1.0
    assert 1.0 <= second <= 2.0
    assert sleeps.calls_in_flight == [0, 0]  # the budget is not held while waiting


@pytest.mark.parametrize(
    "error",
    [aiohttp.ClientConnectionError("connection reset"), TimeoutError()],
    ids=["connection-error", "timeout"],
)
async def test_network_errors_are_retried(
    client: VidiCenterClient, mocked: Mocked, sleeps: Sleeps, error: Exception
) -> None:
    mocked.get(DATA, exception=error)
    script(mocked, finished())

    answer = await client.run_export(QUERY)

    assert msgspec.json.decode(answer["data"]) == ROWS
    assert data_urls(mocked) == [EXPORT_URL, EXPORT_URL]
    assert len(sleeps.waits) == 1


@pytest.mark.parametrize(
    ("answer", "complaint"),
    [
        ({"status": 502}, "502"),
        ({"status": 500}, "500"),
        ({"exception": aiohttp.ClientConnectionError("connection reset")}, "connection reset"),
    ],
    ids=["502", "500", "connection-error"],
)
async def test_retries_exhausted_is_vendor_unavailable_after_retries_plus_one_requests(
    client: VidiCenterClient,
    mocked: Mocked,
    sleeps: Sleeps,
    answer: dict[str, Any],
    complaint: str,
) -> None:
    mocked.get(WHOAMI, repeat=True, **answer)

    with pytest.raises(VendorUnavailable, match=complaint) as caught:
        await client.whoami()

    assert len(mocked.sent) == 3  # the first try and retries=2
    assert len(sleeps.waits) == 2
    assert TOKEN not in str(caught.value)


async def test_429_exhausted_is_rate_limited_carrying_the_delay(
    client: VidiCenterClient, mocked: Mocked, sleeps: Sleeps
) -> None:
    mocked.get(WHOAMI, status=429, headers={"Retry-After": "5"}, repeat=True)

    with pytest.raises(RateLimited) as caught:
        await client.whoami()

    assert caught.value.delay == 5.0
    assert len(mocked.sent) == 3
    assert sleeps.waits == [5.0, 5.0]


# --- refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
async def test_401_and_403_are_auth_error_at_once_with_the_vendor_message_and_no_token(
    client: VidiCenterClient, mocked: Mocked, sleeps: Sleeps, status: int
) -> None:
    mocked.get(DATA, status=status, payload={"message": "Invalid API Token", "error": status})

    with pytest.raises(AuthError) as caught:
        await client.run_export(QUERY)

    message = str(caught.value)
    assert "Invalid API Token" in message
    assert str(status) in message
    for secret in (TOKEN, AUTHORIZATION):
        assert secret not in message
        assert secret not in repr(vars(caught.value))
    assert len(mocked.sent) == 1
    assert sleeps.waits == []


async def test_a_vendor_message_echoing_the_token_does_not_carry_it_into_the_error(
    client: VidiCenterClient, mocked: Mocked
) -> None:
    mocked.get(WHOAMI, status=403, payload={"message": f"API token {TOKEN} is revoked"})

    with pytest.raises(AuthError) as caught:
        await client.whoami()

    assert "is revoked" in str(caught.value)
    assert TOKEN not in str(caught.value)


async def test_400_with_a_message_is_vendor_rejected_and_not_retried(
    client: VidiCenterClient, mocked: Mocked, sleeps: Sleeps
) -> None:
    mocked.get(DATA, status=400, payload={"message": "Unknown data_type 'otz'", "error": 400})

    with pytest.raises(VendorRejected, match="Unknown data_type 'otz'") as caught:
        await client.run_export(QUERY)

    assert caught.value.status == 400
    assert len(mocked.sent) == 1
    assert sleeps.waits == []


async def test_a_4xx_mentioning_a_limit_is_rate_limited_and_retried(
    client: VidiCenterClient, mocked: Mocked, sleeps: Sleeps
) -> None:
    too_many = {"message": "Too many exports running, limit is 3", "error": 400}
    mocked.get(DATA, status=400, payload=too_many)
    script(mocked, finished())

    answer = await client.run_export(QUERY)

    assert msgspec.json.decode(answer["data"]) == ROWS
    assert data_urls(mocked) == [EXPORT_URL, EXPORT_URL]
    [wait] = sleeps.waits
    assert 0.5 <= wait <= 1.0


async def test_a_4xx_mentioning_a_limit_exhausted_is_rate_limited(
    client: VidiCenterClient, mocked: Mocked
) -> None:
    too_many = {"message": "Too many exports running, limit is 3", "error": 400}
    mocked.get(DATA, status=400, payload=too_many, repeat=True)

    with pytest.raises(RateLimited, match="limit is 3"):
        await client.run_export(QUERY)

    assert len(mocked.sent) == 3


# --- the export's query string ------------------------------------------------------------


def test_export_query_puts_keys_in_a_fixed_order_whatever_the_order_given() -> None:
    sources: dict[str, list[str]] = {
        "site_tags": ["7"],
        "location_tags": ["5", "6"],
        "sites": ["3"],
        "locations": ["1", "2"],
    }
    options = [("group_by_demographics", "1"), ("content_ids", "9,10")]

    query = export_query("ots", "1h", DAY, NEXT, sources, options)

    assert query == (
        "data_type=ots&time_resolution=1h&start=2018-01-29T00:00:00&end=2018-01-30T00:00:00"
        "&locations=1,2&sites=3&location_tags=5,6&site_tags=7"
        "&group_by_demographics=1&content_ids=9,10"
    )
    reordered = export_query("ots", "1h", DAY, NEXT, dict(reversed(sources.items())), options)
    assert reordered == query


def test_export_query_keeps_commas_unescaped_in_id_lists() -> None:
    query = export_query("ots", "1h", DAY, NEXT, {"locations": ["1", "2", "3"]})

    assert "&locations=1,2,3" in query
    assert "%2C" not in query


@pytest.mark.parametrize("day", [date(2018, 1, 29), date(2020, 2, 29), date(2018, 12, 31)])
def test_export_query_runs_from_the_first_midnight_to_the_end_midnight(day: date) -> None:
    end = day + timedelta(days=30)
    params = dict(parse_qsl(export_query("ots", "1h", day, end, {"locations": ["1"]})))

    assert params["start"] == f"{day.isoformat()}T00:00:00"
    assert params["end"] == f"{end.isoformat()}T00:00:00"


def test_export_query_sends_an_empty_extrapolation_amount_as_given() -> None:
    query = export_query(
        "extrapolated_ots", "1h", DAY, NEXT, {"locations": ["1"]}, [("extrapolation_amount", "")]
    )

    assert query.endswith("&extrapolation_amount=")


# --- topology -----------------------------------------------------------------------------


LOCATION_LIST = [
    {"id": 11, "site_id": 3, "label": "Entrance", "active": True, "last_timezone": 3600},
    {"id": 12, "site_id": 3, "label": "Checkout", "active": False, "last_timezone": 3600},
]


async def test_list_locations_accepts_a_json_list(client: VidiCenterClient, mocked: Mocked) -> None:
    mocked.get(LOCATIONS, payload=LOCATION_LIST)

    assert await client.list_locations() == LOCATION_LIST


async def test_list_locations_accepts_a_paginated_envelope(
    client: VidiCenterClient, mocked: Mocked
) -> None:
    mocked.get(LOCATIONS, payload={"count": 2, "next": None, "results": LOCATION_LIST})

    assert await client.list_locations() == LOCATION_LIST


async def test_a_paginated_envelope_with_more_pages_is_bad_payload_not_a_silent_first_page(
    client: VidiCenterClient, mocked: Mocked
) -> None:
    mocked.get(
        LOCATIONS,
        payload={"count": 3, "next": f"{LOCATIONS}?page=2", "results": LOCATION_LIST},
    )

    with pytest.raises(BadPayload, match="page"):
        await client.list_locations()


@pytest.mark.parametrize(
    "body",
    [
        '{"detail": "Not found."}',
        '{"results": "none"}',
        "[1, 2]",
        '"locations"',
        "null",
        '{"results": [{"id": 11}, 12]}',
    ],
    ids=["object", "results-string", "list-of-numbers", "string", "null", "mixed-results"],
)
async def test_list_locations_refuses_any_other_shape_as_bad_payload(
    client: VidiCenterClient, mocked: Mocked, body: str
) -> None:
    mocked.get(LOCATIONS, body=body)

    with pytest.raises(BadPayload, match="locations answer is not a list of objects"):
        await client.list_locations()


# --- Retry-After --------------------------------------------------------------------------

HTTP_DATE = "Wed, 21 Oct 2015 07:28:00 GMT"
HTTP_DATE_TS = 1_445_412_480.0


@pytest.mark.parametrize(("value", "seconds"), [("7", 7.0), ("0", 0.0), ("120", 120.0)])
def test_parse_retry_after_reads_seconds(value: str, seconds: float) -> None:
    assert parse_retry_after(value) == seconds


def test_parse_retry_after_reads_an_http_date_relative_to_now() -> None:
    assert parse_retry_after(HTTP_DATE, now=HTTP_DATE_TS - 30) == 30.0
    assert parse_retry_after(HTTP_DATE, now=HTTP_DATE_TS + 30) == 0.0  # already past


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "soon",
        "7 seconds",
        "Wed, 99 Foo 2015",
        "infinity",
        "nan",
        "1e9",
    ],
)
def test_parse_retry_after_gives_none_for_garbage(value: str | None) -> None:
    assert parse_retry_after(value) is None
