"""VidiCenter client: the export lifecycle and topology calls; returns raw payloads only."""

from __future__ import annotations

import base64
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from datetime import time as dtime
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

import aiohttp
import anyio
import structlog
from pydantic import SecretStr

from ingest.config import is_loopback
from ingest.domain import SOURCE_KINDS
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
from ingest.vendors.http import (
    MAX_RETRY_WAIT_S,
    decode_json,
    decode_json_keeping,
    error_for_status,
    sent_once,
    with_retries,
)

log = structlog.get_logger(__name__)

VENDOR = "vidicenter"
_RAW_DATA = frozenset({"data"})


class Budget(Protocol):
    def call(self) -> Any: ...  # an async context manager around one vendor call


def export_query(
    data_type: str,
    time_resolution: str,
    day: date,
    sources: Mapping[str, Sequence[str]],
    options: Sequence[tuple[str, str]] = (),
) -> str:
    """The export's query string, always built the same way: it is the export's identity.

    `options` are the data type's query parameters as the registry renders them.
    `force_rebuild` is never part of it: it is added to the first request only.
    """
    start = datetime.combine(day, dtime.min)
    # up to the next midnight: whether the vendor counts `end` in or not, no second of the
    # day is left out (rows of the next day, if any, are the next day's job's)
    end = start + timedelta(days=1)
    pairs: list[tuple[str, str]] = [
        ("data_type", data_type),
        ("time_resolution", time_resolution),
        ("start", start.strftime("%Y-%m-%dT%H:%M:%S")),
        ("end", end.strftime("%Y-%m-%dT%H:%M:%S")),
    ]
    for kind in SOURCE_KINDS:
        ids = sources.get(kind)
        if ids:
            pairs.append((kind, ",".join(str(i) for i in ids)))
    pairs += options
    return urlencode(pairs, safe=",:")


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
        # how long a request whose answer was lost may still be taken by the vendor: its
        # timeout, then as long again (and a second) as the call budget holds its place
        timeout_s = session.timeout.total or 300.0
        self._lost_answer_s = 2 * timeout_s + 1

    async def _get_once(
        self,
        path: str,
        query: str,
        raw_keys: frozenset[str],
        on_sent: Callable[[], None] | None = None,
    ) -> Any:
        url = f"{self._base}{path}" + (f"?{query}" if query else "")
        # The budget covers the request and nothing else: an exception in the block means
        # the call did not end with its answer read (see CallBudget.call). One request
        # leaves per call: no hidden re-send after a drop, no redirect followed.
        async with self._budget.call():
            if on_sent is not None:
                on_sent()
            async with self._session.get(
                url, headers=self._headers, allow_redirects=False, middlewares=sent_once()
            ) as resp:
                status, retry_after = resp.status, resp.headers.get("Retry-After")
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
        if raw_keys:
            return decode_json_keeping(VENDOR, body, raw_keys)
        return decode_json(VENDOR, body)

    async def get_json(
        self,
        path: str,
        query: str = "",
        *,
        raw_keys: frozenset[str] = frozenset(),
        max_wait_s: float = MAX_RETRY_WAIT_S,
    ) -> Any:
        """One GET, retried on passing failures; 401/403 and other 4xx are not retried.

        The values of `raw_keys` in the answer are left undecoded (`msgspec.Raw`). A retry
        that would wait longer than `max_wait_s` fails the call with its delay instead.
        """
        return await self._with_retries(
            lambda: self._get_once(path, query, raw_keys), f"GET {path}", max_wait_s
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
    ) -> dict[str, Any]:
        """Start (or resume) the export of `query`, poll it until finished, return the answer.

        The answer's `data` is left undecoded (`msgspec.Raw`): the normalizer decodes the
        rows straight into the table's types. `force` adds `force_rebuild` to requests
        until one of them may have reached the vendor (see `_Rebuild`); the polls that
        follow are the plain query, or each of them would start the build again.
        `on_started` is awaited once, when the vendor first answers or when a request with
        `force_rebuild` may have reached it unanswered: the caller records that the export
        is out, so that no later try asks for the rebuild again.
        Raises ExportFailed with the vendor's reason, ExportPending past the deadline.
        """
        rebuild = _Rebuild(force, settle_s=self._lost_answer_s, clock=self._clock)
        announced = False
        deadline = self._clock() + self._deadline_s
        wait = self._poll_initial_s
        polls = 0
        while True:
            try:
                payload: dict[str, Any] = await self._ask_export(query, rebuild, deadline)
            except BaseException:
                if rebuild.sent and not announced and on_started is not None:
                    # the vendor may be rebuilding: record it even if we are being cancelled
                    with anyio.CancelScope(shield=True), anyio.move_on_after(10):
                        await on_started()
                raise
            if not announced and on_started is not None:
                await on_started()
            announced = True
            state = _state_seen(payload, rebuild)
            if state == "finished":
                log.info("export.finished", polls=polls, bytes=len(payload["data"]))
                return payload
            jittered = min(self._poll_max_s, wait * self._rng.uniform(0.8, 1.2))
            if self._clock() + jittered > deadline:
                raise ExportPending(
                    f"export not finished after {self._deadline_s:.0f} s; it goes on at the vendor"
                )
            log.debug("export.poll_scheduled", state=state, wait_s=round(jittered, 2))
            if self._on_poll_wait is not None:
                self._on_poll_wait(jittered)
            await self._sleep(jittered)
            polls += 1
            wait = min(self._poll_max_s, wait * 1.6)

    async def _ask_export(self, query: str, rebuild: _Rebuild, deadline: float) -> Any:
        """One request of the export (retried on passing failures), `force_rebuild` added
        while the rebuild is still to be asked for."""

        async def attempt() -> Any:
            forced = rebuild.due
            sent = query + "&force_rebuild=1" if forced else query
            try:
                answer = await self._get_once(
                    "/api/v1/data/", sent, _RAW_DATA, on_sent=rebuild.leaving if forced else None
                )
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
            max(0.0, min(MAX_RETRY_WAIT_S, deadline - self._clock())),
        )


def _state_seen(payload: Mapping[str, Any], rebuild: _Rebuild) -> str:
    """`finished` (with data), or `started`/`in_progress`: the build goes on. A failed
    build raises ExportFailed, except the failure a rebuild whose request was lost was
    asked for (the vendor may take that request yet): that one counts as in progress."""
    state = export_state(payload)
    if state in ("started", "in_progress"):
        rebuild.confirm()
        return state
    if state == "finished":
        if "data" not in payload:
            raise BadPayload("finished export has no 'data'")
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
