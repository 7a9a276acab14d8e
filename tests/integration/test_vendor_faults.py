"""Network faults against a vendor on a real port: every request that leaves is one the call
budget counted, and a rebuild is asked for once even when its answer is lost."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta

import aiohttp
import anyio
import anyio.lowlevel
import asyncpg
import msgspec
import pytest
from pydantic import SecretStr

from ingest import ledger
from ingest.budget import CallBudget
from ingest.config import AngusStream, load_settings
from ingest.domain import JobSpec, Scope, Vendor
from ingest.errors import VendorRejected, VendorUnavailable
from ingest.pipeline import Context, work_batch
from ingest.vendors.angus import AngusClient
from ingest.vendors.http import new_session, sent_once
from ingest.vendors.vidicenter import VidiCenterClient
from ingest.wiring import retry_policy
from tests.integration.scripted_vendor import (
    ScriptedVendor,
    drop,
    redirect,
    reply,
    scripted_vendor,
    slow,
    trickle,
)

from .ledger_support import packing

DAY = date(2024, 3, 5)
ACCOUNT = "vidicenter.quividi.com/u"
QUERY = "data_type=viewers&time_resolution=1h&locations=1001"
STARTED = reply({"state": "started"})
IN_PROGRESS = reply({"state": "in_progress", "creation_date": "2024-03-06 10:00:00"})
FINISHED = reply({"state": "finished", "data": [], "creation_date": "2024-03-06 10:00:00"})
UNAVAILABLE = reply({"message": "Service unavailable", "error": 503}, status=503)


class CountingBudget:
    """Counts the calls that passed the budget."""

    def __init__(self) -> None:
        self.calls = 0

    @asynccontextmanager
    async def call(self) -> AsyncIterator[None]:
        self.calls += 1
        yield


async def no_wait(_seconds: float) -> None:
    await anyio.lowlevel.checkpoint()


@asynccontextmanager
async def vidicenter(
    vendor: ScriptedVendor, budget: object, *, retries: int, timeout_s: float = 5.0
) -> AsyncIterator[VidiCenterClient]:
    async with new_session(max_connections=2, timeout_s=timeout_s) as session:
        yield VidiCenterClient(
            session,
            base_url=vendor.url,
            username="u",
            token=SecretStr("t0ken-t0ken"),
            budget=budget,  # type: ignore[arg-type]
            retries=retries,
            poll_initial_s=0.01,
            sleep=no_wait,
        )


# --- one request per call ---------------------------------------------------------------


async def test_a_dropped_connection_is_sent_again_only_through_the_budget() -> None:
    async with scripted_vendor(drop()) as vendor:
        budget = CountingBudget()
        async with vidicenter(vendor, budget, retries=2) as client:
            with pytest.raises(VendorUnavailable, match="ServerDisconnectedError"):
                await client.get_json("/api/v1/whoami/")
    # three tries, each counted once; aiohttp's own re-send of a dropped request is refused
    assert (vendor.requests, budget.calls) == (3, 3)


async def test_a_request_with_sent_once_reaches_a_dropping_vendor_once() -> None:
    async with scripted_vendor(drop()) as vendor, aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ServerDisconnectedError):
            async with session.get(vendor.url, middlewares=sent_once()):
                pass
    assert vendor.requests == 1


async def test_a_redirect_is_refused_not_followed_behind_the_budget() -> None:
    async with scripted_vendor(redirect("/api/v1/elsewhere/"), FINISHED) as vendor:
        budget = CountingBudget()
        async with vidicenter(vendor, budget, retries=2) as client:
            with pytest.raises(VendorRejected, match="302"):
                await client.get_json("/api/v1/whoami/")
    assert (vendor.requests, budget.calls) == (1, 1)


async def test_an_angus_page_whose_connection_dropped_is_fetched_again_by_the_client_alone() -> (
    None
):
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    token = "aaa.eyJleHAiOiA0MTAyNDQ0ODAwfQ.sig"  # exp in 2100
    page = {"entities": {}, "nb_of_pages": 1, "page": 1, "next_page": ""}
    async with (
        scripted_vendor(reply({"token": token}), drop(), reply(page)) as vendor,
        new_session(max_connections=2, timeout_s=5) as session,
    ):
        client = AngusClient(
            session,
            console_url=vendor.url,
            data_url=vendor.url,
            timeout_s=5,
            retries=2,
            max_concurrency=1,
            token_margin_s=60,
            max_pages=5,
            sleep=sleep,
        )
        stream = AngusStream(username="u", client_id="c", access_token=SecretStr("secret"))
        start = datetime(2024, 3, 5, tzinfo=UTC)
        pages = await client.fetch_entities(
            stream,
            metrics=["passing_by"],
            from_date=start,
            to_date=start + timedelta(days=1),
            time_bucket="by_hour",
        )
    assert pages == [page]
    # the token, the dropped page, and the page again after the client's own (logged) wait
    assert (vendor.requests, len(waits)) == (3, 1)


# --- a rebuild is asked for once --------------------------------------------------------


class Started:
    """Counts how often the client said the export is out."""

    def __init__(self) -> None:
        self.times = 0

    async def __call__(self) -> None:
        self.times += 1


async def test_a_rebuild_whose_answer_was_dropped_is_not_asked_for_again() -> None:
    # the vendor took the forced request (the build started), but the answer was lost
    async with scripted_vendor(drop(), IN_PROGRESS, FINISHED) as vendor:
        started = Started()
        async with vidicenter(vendor, CountingBudget(), retries=2) as client:
            answer = await client.run_export(QUERY, force=True, on_started=started)
    assert answer["state"] == "finished"
    assert vendor.forced() == [0]
    assert vendor.requests == 3
    assert started.times == 1


async def test_a_rebuild_that_timed_out_is_not_asked_for_again() -> None:
    async with (
        scripted_vendor(slow(1.0, STARTED), IN_PROGRESS, FINISHED) as vendor,
        vidicenter(vendor, CountingBudget(), retries=2, timeout_s=0.3) as client,
    ):
        answer = await client.run_export(QUERY, force=True)
    assert answer["state"] == "finished"
    assert vendor.forced() == [0]


async def test_the_old_failure_seen_before_a_lost_rebuild_request_is_taken_is_not_believed() -> (
    None
):
    # the forced request is slow: the vendor takes it after the client gave up, and a poll
    # in between still sees the build that failed before (the rebuild's reason)
    old_failure = reply({"state": "failed", "fail_reason": "the build that was rebuilt"})
    async with (
        scripted_vendor(slow(1.0, STARTED), old_failure, IN_PROGRESS, FINISHED) as vendor,
        vidicenter(vendor, CountingBudget(), retries=2, timeout_s=0.3) as client,
    ):
        answer = await client.run_export(QUERY, force=True)
    assert answer["state"] == "finished"
    assert vendor.forced() == [0]


ROWS = [{"location_id": 1001, "period_start": f"2024-03-05 {h:02}:00:00"} for h in range(24)]


async def test_an_export_answer_that_keeps_coming_is_read_past_the_http_timeout() -> None:
    # a large answer on a slow link: each piece comes well within the timeout, the whole
    # takes several timeouts; throwing the finished export away would only start it again
    finished = {"state": "finished", "data": ROWS}
    async with (
        scripted_vendor(trickle(finished, pieces=8, gap_s=0.15)) as vendor,
        vidicenter(vendor, CountingBudget(), retries=0, timeout_s=0.4) as client,
    ):
        answer = await client.run_export(QUERY)
        try:
            assert answer["state"] == "finished"
            assert msgspec.json.decode(answer["data"]) == ROWS
        finally:
            answer.close()
    assert vendor.requests == 1


async def test_an_export_answer_that_stops_coming_for_the_http_timeout_is_given_up() -> None:
    finished = {"state": "finished", "data": ROWS}
    async with (
        scripted_vendor(trickle(finished, pieces=4, gap_s=0.05, stall_s=1.5)) as vendor,
        vidicenter(vendor, CountingBudget(), retries=0, timeout_s=0.4) as client,
    ):
        with pytest.raises(VendorUnavailable):
            await client.run_export(QUERY)
    assert vendor.requests == 1


async def test_a_rebuild_the_vendor_answered_with_an_error_is_asked_for_again() -> None:
    # a 503 (or a 429) is an answer: the vendor did not start the build
    async with (
        scripted_vendor(UNAVAILABLE, STARTED, IN_PROGRESS, FINISHED) as vendor,
        vidicenter(vendor, CountingBudget(), retries=2) as client,
    ):
        answer = await client.run_export(QUERY, force=True)
    assert answer["state"] == "finished"
    assert vendor.forced() == [0, 1]
    assert vendor.requests == 4


async def test_a_rebuild_whose_call_failed_for_good_tells_the_caller_the_export_is_out() -> None:
    async with scripted_vendor(drop(), UNAVAILABLE) as vendor:
        started = Started()
        async with vidicenter(vendor, CountingBudget(), retries=1) as client:
            with pytest.raises(VendorUnavailable):
                await client.run_export(QUERY, force=True, on_started=started)
    assert vendor.forced() == [0]
    assert started.times == 1  # recorded, so that the job's next try does not force again


async def test_a_forced_job_whose_rebuild_answer_was_lost_is_resumed_without_a_second_rebuild(
    pool: asyncpg.Pool,
) -> None:
    # first try: the forced request reaches the vendor, its answer is lost, then the vendor
    # is unavailable until the try gives up; second try: the export is there, finished
    async with scripted_vendor(drop(), UNAVAILABLE, UNAVAILABLE, FINISHED) as vendor:
        settings = load_settings(
            vidicenter_username="u",
            vidicenter_token="t0ken-t0ken",
            vidicenter_url=vendor.url,
            job_retry_base_s=0,
            job_retry_max_s=0,
        )
        budget = CallBudget(pool, "vidicenter:u", per_minute=50, at_once=2, stale_s=6)
        async with vidicenter(vendor, budget, retries=2) as client:
            ctx = Context(
                pool=pool,
                settings=settings,
                owner="w1",
                policy=retry_policy(settings),
                vidicenter={ACCOUNT: client},
            )
            spec = JobSpec(
                Vendor.vidicenter, "viewers", "1h", Scope.parse("location:1001"), DAY, {}, ACCOUNT
            )
            async with pool.acquire() as conn:
                await ledger.enqueue_jobs(conn, [spec], force=True)
            outcomes = []
            for _ in range(2):
                async with pool.acquire() as conn:
                    jobs = await ledger.claim_batch(
                        conn, Vendor.vidicenter, owner="w1", lease_s=60, packing=packing(20)
                    )
                assert jobs, "the job is claimable at once after its failed try"
                outcomes.append(await work_batch(ctx, jobs))
    assert [(o.failed, o.done) for o in outcomes] == [(1, 0), (0, 1)]
    assert vendor.forced() == [0]
    assert vendor.requests == 4
    # every request was one counted call of the budget
    assert await pool.fetchval("SELECT count(*) FROM ingest.vendor_calls") == 4
