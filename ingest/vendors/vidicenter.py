"""VidiCenter client: the export lifecycle and topology calls; returns raw payloads only."""

from __future__ import annotations

import base64
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import date, datetime
from datetime import time as dtime
from typing import Any, Protocol
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
import anyio
import structlog
from pydantic import SecretStr

from ingest.config import is_loopback
from ingest.domain import SOURCE_KINDS
from ingest.errors import (
    AuthError,
    BadPayload,
    BodyUnreadable,
    ConfigError,
    ExportFailed,
    ExportPending,
    RateLimited,
    VendorRejected,
    VendorUnavailable,
)
from ingest.vendors.body import ExportAnswer, spool
from ingest.vendors.builds import BuildTimes, cold_first_wait, first_poll_after
from ingest.vendors.http import (
    MAX_RETRY_WAIT_S,
    decode_json,
    error_for_status,
    sent_once,
    with_retries,
)

log = structlog.get_logger(__name__)

VENDOR = "vidicenter"
DATA_PATH = "/api/v1/data/"
# Until a build has been seen, the wait between polls doubles from the first (see
# `cold_first_wait`), up to INGEST_VIDICENTER_POLL_MAX_S: a build of unknown length costs
# about log2(its seconds / that first wait) polls.
COLD_GROWTH = 2.0


class Budget(Protocol):
    # an async context manager around one vendor call; it gives the call's place (with
    # `async keep()`, renewed as a long answer arrives), or None when places are not leased
    def call(self) -> Any: ...


def export_query(
    data_type: str,
    time_resolution: str,
    start: date,
    end: date,
    sources: Mapping[str, Sequence[str]],
    options: Sequence[tuple[str, str]] = (),
) -> str:
    """The export's query string, always built the same way: it is the export's identity.

    It runs from `start`'s midnight to `end`'s midnight (`end` is exclusive): whether the
    vendor counts `end` in or not, no second of the last day is left out (rows of the day
    after, if any, are another job's). `options` are the data type's query parameters as
    the registry renders them. `force_rebuild` is never part of it: it is added to the
    first request only.
    """
    pairs: list[tuple[str, str]] = [
        ("data_type", data_type),
        ("time_resolution", time_resolution),
        ("start", datetime.combine(start, dtime.min).strftime("%Y-%m-%dT%H:%M:%S")),
        ("end", datetime.combine(end, dtime.min).strftime("%Y-%m-%dT%H:%M:%S")),
    ]
    for kind in SOURCE_KINDS:
        ids = sources.get(kind)
        if ids:
            pairs.append((kind, ",".join(str(i) for i in ids)))
    pairs += options
    return urlencode(pairs, safe=",:")


def request_line_length(base_url: str, query: str) -> int:
    """Bytes of the request line of an export's first request, force_rebuild included:
    `GET /api/v1/data/?... HTTP/1.1`."""
    path = urlsplit(base_url).path.rstrip("/") + DATA_PATH
    return len(f"GET {path}?{query}&force_rebuild=1 HTTP/1.1")


def export_kind(query: str) -> str:
    """What an export's build time depends on besides its size: data type and resolution."""
    params = parse_qs(query)
    return f"{params.get('data_type', ['?'])[0]}:{params.get('time_resolution', ['?'])[0]}"


def export_state(payload: Mapping[str, Any]) -> str:
    """The export's state: the docs call the key `state` and, once, `status`."""
    state = payload.get("state", payload.get("status"))
    if not isinstance(state, str):
        raise BadPayload(f"export answer has no 'state' (keys: {sorted(payload)[:10]})")
    return state


class VidiCenterClient:
    """Talks to one VidiCenter account; every call goes through the shared budget."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        username: str,
        token: SecretStr,
        budget: Budget,
        account: str = "",
        retries: int = 4,
        poll_initial_s: float = 3.0,
        poll_max_s: float = 30.0,
        deadline_s: float = 3600.0,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        on_poll_wait: Callable[[float], None] | None = None,
        builds: BuildTimes | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "https" and not is_loopback(parts.hostname):
            # a plain-http call revokes the token at the vendor
            raise ConfigError("INGEST_VIDICENTER_URL: must be https:// unless the host is loopback")
        self._session = session
        self._base = base_url.rstrip("/")
        # the header is built here, once; the token never goes into a URL
        self._token = token.get_secret_value()
        credentials = f"{username}:{self._token}".encode()
        self._headers = {"Authorization": "Basic " + base64.b64encode(credentials).decode()}
        self._budget = budget
        self._account = account or f"{parts.hostname}/{username}"
        self._retries = retries
        self._poll_initial_s = poll_initial_s
        self._poll_max_s = poll_max_s
        self._deadline_s = deadline_s
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()
        self._on_poll_wait = on_poll_wait
        # the account's build times: seeded from, and kept in, the database by the caller
        self._builds = builds or BuildTimes()
        # how long a request whose answer was lost may still be taken by the vendor: its
        # timeout, then as long again (and a second) as the call budget holds its place
        timeout_s = session.timeout.total or 300.0
        self._lost_answer_s = 2 * timeout_s + 1
        # An export's answer may be hundreds of megabytes: it must start within the timeout
        # and never stall for longer, but as long as it keeps coming it may take as long as
        # an export may (a slow link is no reason to throw a finished export away).
        self._answer_timeout = aiohttp.ClientTimeout(
            total=max(timeout_s, deadline_s), sock_connect=timeout_s, sock_read=timeout_s
        )

    async def _get_once(
        self,
        path: str,
        query: str,
        spooled: bool = False,
        on_sent: Callable[[], None] | None = None,
    ) -> Any:
        url = f"{self._base}{path}" + (f"?{query}" if query else "")
        # The budget covers the request and nothing else: an exception in the block means
        # the call did not end with its answer read (see CallBudget.call). One request
        # leaves per call: no hidden re-send after a drop, no redirect followed.
        async with self._budget.call() as place:
            if on_sent is not None:
                on_sent()
            async with self._session.get(
                url,
                headers=self._headers,
                allow_redirects=False,
                middlewares=sent_once(),
                timeout=self._answer_timeout if spooled else self._session.timeout,
            ) as resp:
                status, retry_after = resp.status, resp.headers.get("Retry-After")
                if status < 300 and spooled:
                    # an export's answer may be hundreds of megabytes: to a file, not to
                    # memory; the call keeps its connection place for as long as it comes
                    return await spool(_kept(resp.content.iter_chunked(1 << 20), place))
                body = await resp.read()
        if status >= 300:
            # the vendor's message goes into logs and the ledger: never with the token
            error = error_for_status(VENDOR, status, body, retry_after, secrets=[self._token])
            if isinstance(error, AuthError):  # whose credentials: the account's
                error = AuthError(
                    f"VidiCenter account {self._account} refused the credentials ({error})",
                    status=error.status,
                )
            raise error
        return decode_json(VENDOR, body)

    async def get_json(
        self,
        path: str,
        query: str = "",
        *,
        spooled: bool = False,
        max_wait_s: float = MAX_RETRY_WAIT_S,
    ) -> Any:
        """One GET, retried on passing failures; 401/403 and other 4xx are not retried.

        With `spooled`, the answer is read to a temporary file and returned as an
        `ExportAnswer` (close it). A retry that would wait longer than `max_wait_s` fails the
        call with its delay instead.
        """
        return await self._with_retries(
            lambda: self._get_once(path, query, spooled), f"GET {path}", max_wait_s
        )

    async def _with_retries(
        self, attempt: Callable[[], Awaitable[Any]], what: str, max_wait_s: float
    ) -> Any:
        return await with_retries(
            attempt,
            what=what,
            retries=self._retries,
            sleep=self._sleep,
            rng=self._rng,
            max_wait_s=max_wait_s,
        )

    async def whoami(self) -> str:
        payload = await self.get_json("/api/v1/whoami/")
        if not isinstance(payload, dict) or "username" not in payload:
            raise BadPayload("whoami answer has no 'username'")
        return str(payload["username"])

    async def list_locations(self) -> list[dict[str, Any]]:
        return _list_of_objects(await self.get_json("/api/v1/locations/"), "locations")

    async def list_location_tags(self) -> list[dict[str, Any]]:
        return _list_of_objects(await self.get_json("/api/v1/location_tags/"), "location tags")

    async def list_site_tags(self) -> list[dict[str, Any]]:
        return _list_of_objects(await self.get_json("/api/v1/site_tags/"), "site tags")

    async def list_site_locations(self, site_id: str) -> list[dict[str, Any]]:
        return _list_of_objects(
            await self.get_json(f"/api/v1/site/{site_id}/locations/"), "site locations"
        )

    async def run_export(
        self,
        query: str,
        *,
        force: bool = False,
        on_started: Callable[[], Awaitable[None]] | None = None,
        expected_rows: int = 0,
    ) -> ExportAnswer:
        """Start (or resume) the export of `query`, poll it until finished, return the answer
        (close it when done; its rows are read from a temporary file, a slice at a time).

        `force` adds `force_rebuild` to requests until one of them may have reached the
        vendor (see `_Rebuild`); the polls that follow are the plain query, or each of them
        would start the build again. `on_started` is awaited once, when the vendor first
        answers or when a request with `force_rebuild` may have reached it unanswered: the
        caller records that the export is out, so that no later try asks for the rebuild
        again. Polls are scheduled from the build times seen for exports of this kind and
        `expected_rows`.
        Raises ExportFailed with the vendor's reason, ExportPending past the deadline.
        """
        poll = _Polls(self, export_kind(query), expected_rows)
        rebuild = _Rebuild(force, settle_s=self._lost_answer_s, clock=self._clock)
        announced = False
        try:
            while True:
                try:
                    answer: ExportAnswer = await self._ask_export(query, rebuild, poll)
                except BaseException:
                    if rebuild.sent and not announced and on_started is not None:
                        # the vendor may be rebuilding: record it even if we are being cancelled
                        with anyio.CancelScope(shield=True), anyio.move_on_after(10):
                            await on_started()
                    raise
                try:
                    if not announced and on_started is not None:
                        await on_started()
                    announced = True
                    state = _state_seen(answer, rebuild)
                    if state == "finished":
                        await poll.finished()
                except BaseException:
                    answer.close()
                    raise
                if state == "finished":
                    return answer
                answer.close()
                await poll.wait(state)
        finally:
            poll.done()

    async def _ask_export(self, query: str, rebuild: _Rebuild, poll: _Polls) -> Any:
        """One request of the export (retried on passing failures), `force_rebuild` added
        while the rebuild is still to be asked for."""

        async def attempt() -> Any:
            forced = rebuild.due

            def leaving() -> None:
                poll.sent()
                if forced:
                    rebuild.leaving()

            sent = query + "&force_rebuild=1" if forced else query
            try:
                answer = await self._get_once(DATA_PATH, sent, spooled=True, on_sent=leaving)
            except _NOT_TAKEN:
                if forced:
                    rebuild.refused()
                raise
            if forced:
                rebuild.confirm()
            return answer

        return await self._with_retries(
            attempt,
            "GET /api/v1/data/",
            max(0.0, min(MAX_RETRY_WAIT_S, poll.deadline - self._clock())),
        )


class _Polls:
    """The polls of one export: when the next one is due, and what its build time was.

    Times are taken when a request leaves (after its wait for the call budget): the build
    starts when the vendor takes the request that starts it, not when we began to wait.
    """

    def __init__(self, client: VidiCenterClient, kind: str, rows: int) -> None:
        self.client = client
        self.kind = kind
        self.rows = rows
        self.deadline = client._clock() + client._deadline_s
        self.first = True
        self.sent_at = 0.0  # when the last request left
        self.started_at: float | None = None  # when the request that started the build left
        self.not_ready_at = 0.0  # seconds from the start to the last poll that found it building
        self.calls = 0  # requests sent, retries included
        self.polls = 0
        self.due_polled = False  # a poll was put when the build is expected to have ended
        self.late = 0  # polls after that one
        # until a build is seen: waits growing from the first, longer for a bigger export
        self.cold_wait = min(client._poll_max_s, cold_first_wait(rows, client._poll_initial_s))
        self.probe = False

    def sent(self) -> None:
        self.sent_at = self.client._clock()
        self.calls += 1

    async def finished(self) -> None:
        build_s = None
        if self.started_at is not None:
            seen = await self.client._builds.observe(
                self.kind,
                self.rows,
                ready_after=self.sent_at - self.started_at,
                not_ready_at=self.not_ready_at,
            )
            build_s = round(seen.seconds, 1)
        log.info(
            "export.finished",
            kind=self.kind,
            expected_rows=self.rows,
            polls=self.polls,
            calls=self.calls,
            build_s=build_s,
            probe=self.probe,
        )

    def done(self) -> None:
        if self.probe:
            self.client._builds.end_probe()
            self.probe = False

    async def wait(self, state: str) -> None:
        c = self.client
        if self.first and state == "started":
            self.started_at = self.sent_at
        elif self.started_at is not None:
            self.not_ready_at = self.sent_at - self.started_at
        self.first = False
        wait = await self._next_wait()
        if c._clock() + wait > self.deadline:
            raise ExportPending(
                f"export not finished after {c._deadline_s:.0f} s; it goes on at the vendor"
            )
        log.debug("export.poll_scheduled", state=state, wait_s=round(wait, 2))
        if c._on_poll_wait is not None:
            c._on_poll_wait(wait)
        await c._sleep(wait)
        self.polls += 1

    async def _next_wait(self) -> float:
        c = self.client
        predicted = c._builds.predict(self.kind, self.rows)
        if predicted is None and not self.probe and c._builds.probing:
            # another export is finding out how long builds take: wait for what it learns
            await c._builds.wait_learned(min(4 * c._poll_max_s, self.deadline - c._clock()))
            predicted = c._builds.predict(self.kind, self.rows)
        if predicted is None or self.started_at is None:
            if predicted is None and not self.probe:
                self.probe = True
                c._builds.start_probe()
            # jittered, never shorter: a wait cut short may cost a poll
            wait = min(c._poll_max_s, self.cold_wait * c._rng.uniform(1.0, 1.2))
            self.cold_wait = min(c._poll_max_s, self.cold_wait * COLD_GROWTH)
            return wait
        elapsed = c._clock() - self.started_at
        target = first_poll_after(predicted)
        if not self.due_polled or elapsed < target:
            # the poll when the build is expected to have ended (at once for an export
            # that waited for the probe past that time)
            self.due_polled = True
            return max(0.0, target - elapsed) * c._rng.uniform(1.0, 1.05)
        # slower than the builds seen: poll at growing intervals
        wait = max(c._poll_initial_s, 0.3 * predicted) * 1.6**self.late
        self.late += 1
        return min(c._poll_max_s, wait) * c._rng.uniform(1.0, 1.1)


async def _kept(chunks: AsyncIterator[bytes], place: Any) -> AsyncIterator[bytes]:
    """The chunks of an answer, keeping the call's place in the budget as they come."""
    async for chunk in chunks:
        if place is not None:
            await place.keep()
        yield chunk


def _state_seen(payload: ExportAnswer, rebuild: _Rebuild) -> str:
    """`finished` (with data), or `started`/`in_progress`: the build goes on. A failed
    build raises ExportFailed, except the failure a rebuild whose request was lost was
    asked for (the vendor may take that request yet): that one counts as in progress."""
    state = export_state(payload)
    if state in ("started", "in_progress"):
        rebuild.confirm()
        return state
    if state == "finished":
        if not payload.has_data:
            raise BodyUnreadable("finished export has no 'data'")
        return state
    if state != "failed":
        raise BadPayload(f"unknown export state {state!r}")
    if rebuild.unsettled:
        log.info("export.rebuild_unconfirmed", state=state)
        return "in_progress"
    reason = payload.get("fail_reason") or "no reason given"
    raise ExportFailed(f"VidiCenter export failed: {reason}", delay=0)


class _Rebuild:
    """`force_rebuild` goes out until a request carrying it may have reached the vendor.

    From then on the vendor may be rebuilding, even if that request's answer was lost (a
    dropped connection, a timeout): asking again would start a second build. A request
    the vendor answered with an error status, or that never connected, did not start one.
    While the answer is lost and the vendor may still be taking the request, a `failed`
    state is the failure the rebuild was asked for, not the rebuild's own.
    """

    def __init__(self, wanted: bool, *, settle_s: float, clock: Callable[[], float]) -> None:
        self.due = wanted  # the next request carries force_rebuild
        self.sent = False  # a request carrying it left; the vendor may be rebuilding
        self._settle_s = settle_s
        self._clock = clock
        self._unknown_until = 0.0  # until then, the lost request may still be taken

    def leaving(self) -> None:
        self.due, self.sent = False, True
        self._unknown_until = self._clock() + self._settle_s

    def refused(self) -> None:
        self.due, self.sent = True, False
        self._unknown_until = 0.0

    def confirm(self) -> None:
        """The forced request was answered, or an answer shows a build under way."""
        self._unknown_until = 0.0

    @property
    def unsettled(self) -> bool:
        """The forced request's answer was lost and the vendor may not have taken it yet."""
        return self._clock() < self._unknown_until


# Failures that prove the vendor did not act on the request: it answered an error status,
# or the connection was never made.
_NOT_TAKEN = (
    AuthError,
    RateLimited,
    VendorRejected,
    VendorUnavailable,
    aiohttp.ClientConnectorError,
)


def _list_of_objects(payload: Any, what: str) -> list[dict[str, Any]]:
    if isinstance(payload, dict):  # tolerate a one-page envelope, should one appear
        if payload.get("next"):
            # pagination is not documented: refuse rather than use the first page alone
            raise BadPayload(f"{what} answer has more pages (next: {payload['next']})")
        payload = payload.get("results", payload.get("data"))
    if not isinstance(payload, list) or not all(isinstance(x, dict) for x in payload):
        raise BadPayload(f"{what} answer is not a list of objects")
    return payload
