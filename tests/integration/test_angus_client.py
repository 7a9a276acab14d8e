"""The Angus client's edge cases, against a small fake of both Angus hosts (aioresponses)."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import anyio
import pytest
from aioresponses import CallbackResult, aioresponses
from pydantic import SecretStr
from structlog.testing import capture_logs
from yarl import URL

from ingest.config import AngusStream
from ingest.errors import AuthError, BadPayload, RateLimited, VendorRejected, VendorUnavailable
from ingest.vendors.angus import DEFAULT_TOKEN_LIFETIME_S, AngusClient

CONSOLE = "https://console.angus.test"
DATA = "https://data.angus.test"
TOKEN_URL = f"{CONSOLE}/api-token-authstream/"
ENTITIES = re.compile(r"^https://data\.angus\.test/api/1/entities(\?.*)?$")
ACCESS_TOKEN = "7f3e-very-secret-access-token"
USERNAME = "ops.person@example.com"
STREAM = AngusStream(username=USERNAME, client_id="cid-123", access_token=SecretStr(ACCESS_TOKEN))
FROM = datetime(2017, 9, 3, tzinfo=UTC)
TO = FROM + timedelta(days=1)
METRICS = ["passing_by", "interested", "stop_time", "attention_time"]
KNOWN_METRICS = {*METRICS, "gender", "category", "satisfaction"}
T0 = 1_500_000_000.0


def jwt(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        raw = json.dumps(data).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Sleeps:
    """A no-op sleep that remembers what it was asked to wait."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class FakeAngus:
    """Both Angus hosts: issues JWTs, checks them, validates parameters, pages buckets."""

    def __init__(self, clock: Clock, *, pages: int = 1, next_page: str = "full") -> None:
        self.clock = clock
        self.pages = pages
        self.next_page = next_page  # "full" URL or "path" on the data host
        self.lifetime = DEFAULT_TOKEN_LIFETIME_S
        self.with_exp = True
        self.issued: list[str] = []
        self.valid: set[str] = set()
        self.in_flight = 0
        self.peak_in_flight = 0
        self.delay_s = 0.0

    def serve_tokens(self, mocked: aioresponses) -> None:
        mocked.post(TOKEN_URL, callback=self.token, repeat=True)

    def serve_entities(self, mocked: aioresponses) -> None:
        """Answers entities requests from now on (after any answer scripted before)."""
        mocked.get(ENTITIES, callback=self.entities, repeat=True)

    async def token(self, url: URL, **kwargs: Any) -> CallbackResult:
        body = kwargs.get("json") or {}
        if body != {"username": USERNAME, "client_id": "cid-123", "access_token": ACCESS_TOKEN}:
            return CallbackResult(
                status=400,
                payload={"non_field_errors": ["Unable to log in with provided credentials."]},
            )
        claims: dict[str, Any] = {"client_id": "cid-123", "n": len(self.issued)}
        if self.with_exp:
            claims |= {"orig_iat": int(self.clock()), "exp": int(self.clock() + self.lifetime)}
        token = jwt(claims)
        self.issued.append(token)
        self.valid.add(token)
        return CallbackResult(payload={"token": token})

    async def entities(self, url: URL, **kwargs: Any) -> CallbackResult:
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            if self.delay_s:
                await anyio.sleep(self.delay_s)
            return self._entities(url, kwargs.get("headers") or {})
        finally:
            self.in_flight -= 1

    def _entities(self, url: URL, headers: dict[str, str]) -> CallbackResult:
        if headers.get("Authorization", "").removeprefix("Bearer ") not in self.valid:
            return CallbackResult(status=401, payload={"detail": "Invalid token."})
        query = url.query
        if "from_date" not in query:
            return rejected("missing_mandatory_param", "from_date is mandatory")
        try:
            from_date = datetime.fromisoformat(query["from_date"])
        except ValueError:
            return rejected("invalid_param", f"from_date {query['from_date']!r} is not a date")
        if from_date.utcoffset() is None:
            return rejected("invalid_param", "from_date has no offset")
        metrics = query.get("metrics", "").split(",")
        if unknown := [m for m in metrics if m not in KNOWN_METRICS]:
            return rejected("unexisting_metric", f"{unknown[0]} does not exist")
        if query.get("time", "global") not in ("by_hour", "by_day", "global"):
            return rejected("unexisting_time", "time must be by_hour, by_day or global")
        page = int(query.get("page", "1"))
        if not 1 <= page <= self.pages:
            return rejected("page_not_existing", f"page {page} does not exist")
        start = from_date + timedelta(hours=page - 1)
        next_page = ""
        if page < self.pages:
            target = url.update_query(page=str(page + 1))
            next_page = str(target) if self.next_page == "full" else target.path_qs
        return CallbackResult(
            payload={
                "entities": {
                    start.isoformat(): {m: {"value": page} for m in metrics},
                },
                "time": query.get("time"),
                "from_date": query["from_date"],
                "to_date": query.get("to_date"),
                "total_results": self.pages,
                "nb_of_pages": self.pages,
                "page": page,
                "next_page": next_page,
            }
        )


def rejected(code: str, message: str) -> CallbackResult:
    return CallbackResult(status=400, payload={"code": code, "message": message})


def entities_page(page: int, next_page: Any, **rest: Any) -> dict[str, Any]:
    start = FROM + timedelta(hours=page - 1)
    return {
        "entities": {start.isoformat(): {"passing_by": {"value": page}}},
        "page": page,
        "next_page": next_page,
        **rest,
    }


def token_fetches(mocked: aioresponses) -> int:
    return len(mocked.requests.get(("POST", URL(TOKEN_URL)), []))


def entity_requests(mocked: aioresponses) -> int:
    return sum(len(calls) for (method, url), calls in mocked.requests.items() if method == "GET")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def fake(mocked: aioresponses, clock: Clock) -> FakeAngus:
    """The fake console only: the test scripts the data host's answers."""
    angus = FakeAngus(clock)
    angus.serve_tokens(mocked)
    return angus


@pytest.fixture
def served(fake: FakeAngus, mocked: aioresponses) -> FakeAngus:
    """The fake console and data host."""
    fake.serve_entities(mocked)
    return fake


def make_client(
    session: aiohttp.ClientSession,
    clock: Clock,
    sleeps: Sleeps,
    *,
    retries: int = 2,
    max_pages: int = 50,
    max_concurrency: int = 3,
) -> AngusClient:
    return AngusClient(
        session,
        console_url=CONSOLE,
        data_url=DATA,
        timeout_s=5.0,
        retries=retries,
        max_concurrency=max_concurrency,
        token_margin_s=300.0,
        max_pages=max_pages,
        clock=clock,
        sleep=sleeps,
    )


@pytest.fixture
def client(session: aiohttp.ClientSession, clock: Clock, sleeps: Sleeps) -> AngusClient:
    return make_client(session, clock, sleeps)


async def fetch(client: AngusClient, *, time_bucket: str = "by_hour") -> list[dict[str, Any]]:
    return await client.fetch_entities(
        STREAM, metrics=METRICS, from_date=FROM, to_date=TO, time_bucket=time_bucket
    )


def passing_by(pages: list[dict[str, Any]]) -> list[int]:
    return [v["passing_by"]["value"] for p in pages for v in p["entities"].values()]


# --- pagination ---------------------------------------------------------------------------


async def test_single_page_is_returned_with_the_requested_window(
    client: AngusClient, served: FakeAngus
) -> None:
    [page] = await fetch(client)

    assert page["from_date"] == "2017-09-03T00:00:00+00:00"  # the offset's "+" survived
    assert page["to_date"] == "2017-09-04T00:00:00+00:00"
    assert page["time"] == "by_hour"
    assert passing_by([page]) == [1]


@pytest.mark.parametrize("style", ["full", "path"])
async def test_every_page_is_followed_in_order_whether_next_page_is_url_or_path(
    client: AngusClient, served: FakeAngus, style: str
) -> None:
    served.pages, served.next_page = 3, style

    pages = await fetch(client)

    assert [p["page"] for p in pages] == [1, 2, 3]
    assert passing_by(pages) == [1, 2, 3]


@pytest.mark.parametrize("last", ["", None, "missing"])
async def test_stops_when_next_page_is_empty_null_or_missing(
    client: AngusClient, fake: FakeAngus, mocked: aioresponses, last: Any
) -> None:
    final = entities_page(2, last)
    if last == "missing":
        del final["next_page"]
    mocked.get(ENTITIES, payload=entities_page(1, f"{DATA}/api/1/entities?page=2"))
    mocked.get(ENTITIES, payload=final)

    pages = await fetch(client)

    assert passing_by(pages) == [1, 2]


async def test_own_parameters_win_over_a_next_page_echo_with_a_literal_plus(
    client: AngusClient, fake: FakeAngus, mocked: aioresponses
) -> None:
    # unencoded, the "+" of the offset would reach the vendor as a space
    echo = "/api/1/entities?from_date=2017-09-03T00:00:00+00:00&time=by_hour&page=2"
    mocked.get(ENTITIES, payload=entities_page(1, echo))
    fake.pages = 2
    fake.serve_entities(mocked)

    pages = await fetch(client)

    assert passing_by(pages) == [1, 2]
    assert pages[1]["from_date"] == FROM.isoformat()


async def test_stops_at_the_last_page_even_if_next_page_is_set(
    client: AngusClient, fake: FakeAngus, mocked: aioresponses
) -> None:
    mocked.get(ENTITIES, payload=entities_page(1, f"{DATA}/api/1/entities?page=2", nb_of_pages=1))

    pages = await fetch(client)

    assert passing_by(pages) == [1]


@pytest.mark.parametrize(
    "back", [f"{DATA}/api/1/entities?page=1", "/api/1/entities?page=2", "/api/1/entities"]
)
async def test_next_page_pointing_back_to_a_fetched_page_is_a_pagination_loop(
    client: AngusClient, fake: FakeAngus, mocked: aioresponses, back: str
) -> None:
    mocked.get(ENTITIES, payload=entities_page(1, "/api/1/entities?page=2"))
    mocked.get(ENTITIES, payload=entities_page(2, back))

    with pytest.raises(BadPayload, match="pagination loop"):
        await fetch(client)


async def test_more_pages_than_max_pages_is_a_pagination_loop(
    session: aiohttp.ClientSession, clock: Clock, sleeps: Sleeps, served: FakeAngus
) -> None:
    served.pages = 5
    client = make_client(session, clock, sleeps, max_pages=3)

    with pytest.raises(BadPayload, match=r"pagination loop.*more than 3 pages"):
        await fetch(client)


async def test_exactly_max_pages_pages_is_fine(
    session: aiohttp.ClientSession, clock: Clock, sleeps: Sleeps, served: FakeAngus
) -> None:
    served.pages = 3
    client = make_client(session, clock, sleeps, max_pages=3)

    assert passing_by(await fetch(client)) == [1, 2, 3]


async def test_next_page_on_another_host_is_refused_so_the_token_stays_home(
    client: AngusClient, fake: FakeAngus, mocked: aioresponses
) -> None:
    mocked.get(ENTITIES, payload=entities_page(1, "https://evil.test/api/1/entities?page=2"))

    with pytest.raises(BadPayload, match="another host"):
        await fetch(client)


async def test_naive_dates_are_refused_before_any_request(client: AngusClient) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await client.fetch_entities(
            STREAM,
            metrics=METRICS,
            from_date=datetime(2017, 9, 3),
            to_date=TO,
            time_bucket="by_hour",
        )


# --- tokens -------------------------------------------------------------------------------


async def test_token_is_fetched_once_and_reused_across_calls(
    client: AngusClient, served: FakeAngus, mocked: aioresponses
) -> None:
    served.pages = 2
    for _ in range(3):
        assert passing_by(await fetch(client)) == [1, 2]

    assert token_fetches(mocked) == 1


async def test_concurrent_fetches_of_one_stream_share_one_token_fetch(
    client: AngusClient, served: FakeAngus, mocked: aioresponses
) -> None:
    results: list[list[dict[str, Any]]] = []

    async def one() -> None:
        results.append(await fetch(client))

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(one)

    assert len(results) == 5
    assert token_fetches(mocked) == 1


async def test_token_is_refreshed_once_within_the_margin_before_exp(
    client: AngusClient, served: FakeAngus, mocked: aioresponses, clock: Clock
) -> None:
    await fetch(client)
    clock.now = T0 + DEFAULT_TOKEN_LIFETIME_S - 301  # just outside the 300 s margin
    await fetch(client)
    assert token_fetches(mocked) == 1

    clock.now = T0 + DEFAULT_TOKEN_LIFETIME_S - 299  # inside the margin
    await fetch(client)
    assert token_fetches(mocked) == 2


async def test_token_without_readable_exp_is_assumed_to_live_five_hours(
    client: AngusClient, served: FakeAngus, mocked: aioresponses, clock: Clock
) -> None:
    served.with_exp = False
    await fetch(client)
    clock.now = T0 + DEFAULT_TOKEN_LIFETIME_S - 301
    await fetch(client)
    assert token_fetches(mocked) == 1

    clock.now = T0 + DEFAULT_TOKEN_LIFETIME_S
    await fetch(client)
    assert token_fetches(mocked) == 2


async def test_401_on_entities_fetches_one_new_token_then_succeeds(
    client: AngusClient, served: FakeAngus, mocked: aioresponses
) -> None:
    await fetch(client)
    served.valid.clear()  # the vendor revoked the token before its exp

    pages = await fetch(client)

    assert passing_by(pages) == [1]
    assert token_fetches(mocked) == 2


async def test_second_401_after_a_new_token_is_auth_error(
    client: AngusClient, mocked: aioresponses, fake: FakeAngus
) -> None:
    mocked.get(ENTITIES, status=401, payload={"detail": "Invalid token."}, repeat=True)

    with pytest.raises(AuthError, match="cid-123") as caught:
        await fetch(client)

    assert "Invalid token." in str(caught.value)
    assert token_fetches(mocked) == 2


@pytest.mark.parametrize(
    ("status", "body", "vendor_says"),
    [
        (
            400,
            {"non_field_errors": ["Unable to log in with provided credentials."]},
            "Unable to log in",
        ),
        (401, {"detail": "Authentication credentials were not provided."}, "not provided"),
        (403, {"detail": f"{USERNAME} may not use {ACCESS_TOKEN}"}, "may not use"),
    ],
    ids=["400-drf", "401", "403-echoing-secrets"],
)
async def test_bad_credentials_are_auth_error_naming_the_stream_but_no_secret(
    client: AngusClient, mocked: aioresponses, status: int, body: dict[str, Any], vendor_says: str
) -> None:
    mocked.post(TOKEN_URL, status=status, payload=body)

    with capture_logs() as logs, pytest.raises(AuthError) as caught:
        await fetch(client)

    message = str(caught.value)
    assert "cid-123" in message
    assert vendor_says in message
    for secret in (ACCESS_TOKEN, USERNAME):
        assert secret not in message
        assert secret not in repr(vars(caught.value))
        assert secret not in repr(logs)


async def test_token_answer_without_token_is_bad_payload(
    client: AngusClient, mocked: aioresponses
) -> None:
    mocked.post(TOKEN_URL, payload={"jwt": "something"})

    with pytest.raises(BadPayload, match=r"cid-123.*'token'"):
        await fetch(client)


async def test_tokens_never_appear_in_logs(
    client: AngusClient, fake: FakeAngus, mocked: aioresponses
) -> None:
    fake.pages = 2
    mocked.get(ENTITIES, status=503)
    fake.serve_entities(mocked)
    with capture_logs() as logs:
        await fetch(client)
        fake.valid.clear()
        await fetch(client)

    assert {entry["event"] for entry in logs} >= {
        "angus.token_fetched",
        "angus.page_fetched",
        "angus.token_rejected",
        "http.retry_scheduled",  # the retry loop shared with the VidiCenter client
    }
    text = repr(logs)
    assert len(fake.issued) == 2
    for secret in [*fake.issued, ACCESS_TOKEN]:
        assert secret not in text


# --- vendor errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("unexisting_metric", "smiles is not an existing metric"),
        ("unexisting_time", "by_minute is not an existing time"),
        ("page_not_existing", "page 3 does not exist"),
        ("missing_mandatory_param", "from_date is mandatory"),
    ],
)
async def test_each_400_code_is_vendor_rejected_with_its_code_and_message_untried_again(
    client: AngusClient, fake: FakeAngus, mocked: aioresponses, code: str, message: str
) -> None:
    mocked.get(ENTITIES, status=400, payload={"code": code, "message": message})
    fake.serve_entities(mocked)

    with pytest.raises(VendorRejected) as caught:
        await fetch(client)

    assert caught.value.status == 400
    assert caught.value.code == code
    assert str(caught.value) == f"angus (stream cid-123) answered 400: {code}: {message}"
    assert entity_requests(mocked) == 1


async def test_the_fake_vendor_rejects_what_the_real_one_would(
    client: AngusClient, served: FakeAngus
) -> None:
    # the fake's own checks give the green tests above their meaning
    with pytest.raises(VendorRejected) as caught:
        await client.fetch_entities(
            STREAM, metrics=["smiles"], from_date=FROM, to_date=TO, time_bucket="by_hour"
        )
    assert caught.value.code == "unexisting_metric"


async def test_other_4xx_is_vendor_rejected_with_its_status(
    client: AngusClient, fake: FakeAngus, mocked: aioresponses
) -> None:
    mocked.get(ENTITIES, status=404, body="<h1>Not Found</h1>", content_type="text/html")

    with pytest.raises(VendorRejected, match="404") as caught:
        await fetch(client)

    assert caught.value.status == 404
    assert caught.value.code is None


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ("<html>502 Bad Gateway</html>", "not JSON"),
        ('{"entities": NaN}', "not JSON"),
        ("[1, 2]", "not an object"),
        ("null", "not an object"),
        ('{"next_page": ""}', "'entities'"),
        ('{"entities": [], "next_page": ""}', "'entities'"),
        ('{"entities": {}, "next_page": 2}', "'next_page'"),
    ],
    ids=["html", "nan", "list", "null", "no-entities", "entities-list", "next-page-number"],
)
async def test_body_without_the_documented_shape_is_bad_payload(
    client: AngusClient, fake: FakeAngus, mocked: aioresponses, body: str, complaint: str
) -> None:
    mocked.get(ENTITIES, body=body)

    with pytest.raises(BadPayload) as caught:
        await fetch(client)

    assert complaint in str(caught.value)
    assert "cid-123" in str(caught.value)


# --- retries ------------------------------------------------------------------------------


async def test_503_then_200_is_retried_after_a_backoff(
    client: AngusClient, fake: FakeAngus, mocked: aioresponses, sleeps: Sleeps
) -> None:
    mocked.get(ENTITIES, status=503)
    fake.serve_entities(mocked)

    pages = await fetch(client)

    assert passing_by(pages) == [1]
    assert len(sleeps.waits) == 1
    assert 0 < sleeps.waits[0] <= 1.0


async def test_retries_exhausted_is_vendor_unavailable(
    client: AngusClient, fake: FakeAngus, mocked: aioresponses, sleeps: Sleeps
) -> None:
    mocked.get(ENTITIES, status=502, repeat=True)

    with pytest.raises(VendorUnavailable, match="502"):
        await fetch(client)

    assert entity_requests(mocked) == 3  # the first try and retries=2
    assert len(sleeps.waits) == 2
    assert all(wait > 0 for wait in sleeps.waits)


@pytest.mark.parametrize(
    "error",
    [aiohttp.ClientConnectionError("reset"), TimeoutError()],
    ids=["connection-reset", "timeout"],
)
async def test_network_errors_are_retried_then_vendor_unavailable(
    client: AngusClient, fake: FakeAngus, mocked: aioresponses, sleeps: Sleeps, error: Exception
) -> None:
    mocked.get(ENTITIES, exception=error)
    mocked.get(ENTITIES, callback=fake.entities)  # once
    assert passing_by(await fetch(client)) == [1]

    mocked.get(ENTITIES, exception=error, repeat=True)
    with pytest.raises(VendorUnavailable, match=type(error).__name__):
        await fetch(client)


async def test_token_endpoint_is_retried_on_server_errors(
    client: AngusClient, mocked: aioresponses, clock: Clock, sleeps: Sleeps
) -> None:
    mocked.post(TOKEN_URL, status=500)
    fake = FakeAngus(clock)
    fake.serve_tokens(mocked)
    fake.serve_entities(mocked)

    assert passing_by(await fetch(client)) == [1]
    assert len(sleeps.waits) == 1


async def test_429_waits_as_long_as_retry_after_says(
    client: AngusClient, fake: FakeAngus, mocked: aioresponses, sleeps: Sleeps
) -> None:
    mocked.get(ENTITIES, status=429, headers={"Retry-After": "7"})
    mocked.get(ENTITIES, status=429, headers={"Retry-After": "11"})
    fake.serve_entities(mocked)

    assert passing_by(await fetch(client)) == [1]
    assert sleeps.waits == [7.0, 11.0]


async def test_429_exhausted_is_rate_limited_carrying_the_delay(
    client: AngusClient, fake: FakeAngus, mocked: aioresponses, sleeps: Sleeps
) -> None:
    mocked.get(ENTITIES, status=429, headers={"Retry-After": "5"}, repeat=True)

    with pytest.raises(RateLimited) as caught:
        await fetch(client)

    assert caught.value.delay == 5.0
    assert sleeps.waits == [5.0, 5.0]


async def test_429_with_a_long_retry_after_is_handed_to_the_job_without_waiting(
    client: AngusClient, fake: FakeAngus, mocked: aioresponses, sleeps: Sleeps
) -> None:
    mocked.get(ENTITIES, status=429, headers={"Retry-After": "3600"})

    with pytest.raises(RateLimited) as caught:
        await fetch(client)

    assert caught.value.delay == 3600.0
    assert sleeps.waits == []


# --- concurrency --------------------------------------------------------------------------


async def test_never_more_than_max_concurrency_requests_at_once(
    session: aiohttp.ClientSession, clock: Clock, sleeps: Sleeps, served: FakeAngus
) -> None:
    served.delay_s = 0.01
    served.pages = 2
    client = make_client(session, clock, sleeps, max_concurrency=2)

    async with anyio.create_task_group() as tg:
        for _ in range(6):
            tg.start_soon(fetch, client)

    assert served.peak_in_flight == 2
