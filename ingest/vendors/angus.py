"""Angus.ai Data API client: per-stream JWTs and paged entities; returns raw payloads only."""

from __future__ import annotations

import base64
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
import anyio
import structlog
from multidict import CIMultiDictProxy
from yarl import URL

from ingest.config import AngusStream
from ingest.errors import AuthError, BadPayload
from ingest.vendors.http import (
    MAX_RETRY_WAIT_S,
    decode_json,
    error_for_status,
    snippet,
    vendor_message,
    with_retries,
)

log = structlog.get_logger(__name__)

# FACTS: the sample JWT lives exp - orig_iat = 18000 s; used when a token has no readable exp.
DEFAULT_TOKEN_LIFETIME_S = 5 * 3600.0


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    refresh_at: float  # clock time after which a new token is fetched before use


@dataclass(frozen=True, slots=True)
class _Reply:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes


def token_expiry(token: str) -> float | None:
    """The `exp` claim of a JWT (no signature check), or None when it cannot be read."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    segment = parts[1]
    try:
        claims = decode_json("angus", base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, BadPayload):  # binascii.Error is a ValueError
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, int | float) and not isinstance(exp, bool) and math.isfinite(exp):
        return float(exp)
    return None


class AngusClient:
    """Fetches Angus entities for configured streams, with one cached JWT per stream."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        console_url: str,
        data_url: str,
        timeout_s: float,
        retries: int,
        max_concurrency: int,
        token_margin_s: float,
        max_pages: int,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self._session = session
        self._token_url = URL(console_url.rstrip("/") + "/api-token-authstream/")
        self._data_url = URL(data_url.rstrip("/") + "/")
        self._entities_url = self._data_url.join(URL("api/1/entities"))
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._retries = retries
        self._limiter = anyio.CapacityLimiter(max_concurrency)
        self._margin_s = token_margin_s
        self._max_pages = max_pages
        self._clock = clock
        self._sleep = sleep
        self._tokens: dict[str, _Token] = {}
        self._token_locks: dict[str, anyio.Lock] = {}

    # --- entities -----------------------------------------------------------------------

    async def fetch_entities(
        self,
        stream: AngusStream,
        *,
        metrics: Sequence[str],
        from_date: datetime,
        to_date: datetime,
        time_bucket: str,
    ) -> list[dict[str, Any]]:
        """Every page's payload for the window, in order, following `next_page` to the end.

        Raises BadPayload on a malformed page or a pagination loop (a page asked twice,
        or more than max_pages pages).
        """
        if from_date.utcoffset() is None or to_date.utcoffset() is None:
            raise ValueError("from_date and to_date must be timezone-aware")
        params = {
            "metrics": ",".join(m.strip() for m in metrics),
            "from_date": from_date.isoformat(),
            "to_date": to_date.isoformat(),
            "time": time_bucket,
        }
        url = self._entities_url.with_query(params)
        page_number = 1
        seen_pages: set[int] = set()
        seen_urls: set[str] = set()
        pages: list[dict[str, Any]] = []
        while True:
            seen_pages.add(page_number)
            seen_urls.add(_canonical(url))
            payload = await self._get_page(stream, url, page_number)
            pages.append(payload)
            log.info(
                "angus.page_fetched",
                client_id=stream.client_id,
                page=page_number,
                pages=payload.get("nb_of_pages"),
                buckets=len(payload["entities"]),
            )
            if _is_last_page(payload):
                return pages
            if len(pages) >= self._max_pages:
                raise BadPayload(
                    f"angus pagination loop for stream {stream.client_id}: "
                    f"more than {self._max_pages} pages"
                )
            url = self._next_url(payload["next_page"], params, stream.client_id)
            page_number = _page_of(url, default=page_number + 1, client_id=stream.client_id)
            if page_number in seen_pages or _canonical(url) in seen_urls:
                raise BadPayload(
                    f"angus pagination loop for stream {stream.client_id}: "
                    f"next_page after page {len(pages)} points back to page {page_number}"
                )

    def _next_url(self, next_page: str, params: Mapping[str, str], client_id: str) -> URL:
        """`next_page` (full URL or path on the data host) with this client's own parameters.

        The bearer token is only ever sent to the data host: a next_page on another host
        is refused rather than followed.
        """
        target = URL(next_page)
        if target.is_absolute():
            port = target.explicit_port or self._data_url.port
            if (target.host, port) != (self._data_url.host, self._data_url.port):
                raise BadPayload(
                    f"angus next_page for stream {client_id} points to another host "
                    f"({target.host}); refusing to send the token there"
                )
            # keep the configured scheme: never downgrade https to what an echo says
            target = target.with_scheme(self._data_url.scheme)
        else:
            target = self._data_url.join(target)
        # this client's own parameters win over the echoed ones: a literal "+" in an
        # echoed offset would decode as a space
        query = dict(target.query)
        query.update(params)
        return target.with_query(query)

    async def _get_page(self, stream: AngusStream, url: URL, page: int) -> dict[str, Any]:
        """One entities page; a 401 fetches a new token once, a second 401 is an AuthError."""
        token = await self._token(stream)
        reply = await self._call(
            "GET",
            url,
            what="entities",
            client_id=stream.client_id,
            headers={"Authorization": f"Bearer {token}"},
        )
        retried = False
        if reply.status == 401:
            log.info("angus.token_rejected", client_id=stream.client_id, page=page)
            token = await self._token(stream, stale=token)
            reply = await self._call(
                "GET",
                url,
                what="entities",
                client_id=stream.client_id,
                headers={"Authorization": f"Bearer {token}"},
            )
            retried = True
        if reply.status in (401, 403):
            raise AuthError(
                f"angus refused the token of stream {stream.client_id} ({reply.status}"
                + (", also after fetching a new one)" if retried else ")")
                + f": {_stream_message(reply.body, stream)}",
                status=reply.status,
            )
        if reply.status != 200:
            raise _rejected(reply, stream)
        return _entities_payload(reply.body, f"stream {stream.client_id} page {page}")

    # --- tokens -------------------------------------------------------------------------

    async def _token(self, stream: AngusStream, *, stale: str | None = None) -> str:
        """The stream's cached JWT, fetched anew when near expiry or equal to `stale`.

        Concurrent callers for one stream wait on one fetch instead of each fetching.
        """
        key = stream.client_id
        lock = self._token_locks.get(key)
        if lock is None:
            lock = self._token_locks[key] = anyio.Lock()
        async with lock:
            cached = self._tokens.get(key)
            if cached is not None and cached.value != stale and self._clock() < cached.refresh_at:
                return cached.value
            token = await self._fetch_token(stream)
            self._tokens[key] = token
            # a token that is already within the margin (clock skew, short life) is still
            # used for this request; the next request fetches again
            return token.value

    async def _fetch_token(self, stream: AngusStream) -> _Token:
        body = {
            "username": stream.username,
            "client_id": stream.client_id,
            "access_token": stream.access_token.get_secret_value(),
        }
        reply = await self._call(
            "POST", self._token_url, what="token", client_id=stream.client_id, json_body=body
        )
        if reply.status in (400, 401, 403):
            raise AuthError(
                f"angus refused the credentials of stream {stream.client_id} "
                f"({reply.status}): {_stream_message(reply.body, stream)}",
                status=reply.status,
            )
        if reply.status != 200:
            raise _rejected(reply, stream)
        try:
            data = decode_json("angus", reply.body)
        except BadPayload:
            data = None
        value = data.get("token") if isinstance(data, dict) else None
        if not isinstance(value, str) or not value:
            # never quote this body: it may hold a token
            raise BadPayload(
                f"angus token answer for stream {stream.client_id} has no 'token' string"
            )
        now = self._clock()
        exp = token_expiry(value)
        if exp is None:
            exp = now + DEFAULT_TOKEN_LIFETIME_S
        log.info(
            "angus.token_fetched",
            client_id=stream.client_id,
            expires_in_s=round(exp - now),
            exp_readable=token_expiry(value) is not None,
        )
        return _Token(value=value, refresh_at=exp - self._margin_s)

    # --- transport ----------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        url: URL,
        *,
        what: str,
        client_id: str,
        headers: Mapping[str, str] | None = None,
        json_body: Mapping[str, Any] | None = None,
    ) -> _Reply:
        """One request, tried again on 5xx, 429 and network errors with backoff.

        Any other answer is returned as is. The concurrency cap is held for the request
        only, never while waiting to try again; a Retry-After over MAX_RETRY_WAIT_S is not
        waited here but raised, so the job is tried again after it.
        """

        async def once() -> _Reply:
            async with (
                self._limiter,
                self._session.request(
                    method, url, headers=headers, json=json_body, timeout=self._timeout
                ) as response,
            ):
                reply = _Reply(response.status, response.headers, await response.read())
            if reply.status == 429 or reply.status >= 500:
                raise error_for_status(
                    f"angus {what}",
                    reply.status,
                    reply.body,
                    reply.headers.get("Retry-After"),
                    now=self._clock(),
                )
            return reply

        return await with_retries(
            once,
            what=f"angus {what} ({client_id})",
            retries=self._retries,
            sleep=self._sleep,
            max_wait_s=MAX_RETRY_WAIT_S,
        )


def _canonical(url: URL) -> str:
    """The URL with its query sorted, to recognise a page asked twice."""
    return str(url.with_query(sorted(url.query.items())))


def _page_of(url: URL, *, default: int, client_id: str) -> int:
    raw = url.query.get("page")
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise BadPayload(
            f"angus next_page for stream {client_id} has a page that is not a number: {raw!r}"
        ) from None


def _is_last_page(payload: Mapping[str, Any]) -> bool:
    """True when next_page is empty or missing, or the page count says so."""
    page, count = payload.get("page"), payload.get("nb_of_pages")
    if isinstance(page, int) and isinstance(count, int) and page >= count:
        return True
    return not payload.get("next_page")


def _entities_payload(body: bytes, where: str) -> dict[str, Any]:
    """The page as a dict, checked for the keys pagination and the normalizer rely on."""
    try:
        data = decode_json("angus", body)
    except BadPayload:
        raise BadPayload(f"angus entities {where}: body is not JSON: {snippet(body)}") from None
    if not isinstance(data, dict):
        raise BadPayload(f"angus entities {where}: body is {type(data).__name__}, not an object")
    if not isinstance(data.get("entities"), dict):
        raise BadPayload(f"angus entities {where}: 'entities' is missing or not an object")
    next_page = data.get("next_page")
    if next_page is not None and not isinstance(next_page, str):
        raise BadPayload(f"angus entities {where}: 'next_page' is not a string")
    return data


def _rejected(reply: _Reply, stream: AngusStream) -> Exception:
    """A 4xx other than the auth ones: the request is invalid and is not tried again."""
    return error_for_status(
        f"angus (stream {stream.client_id})",
        reply.status,
        reply.body,
        reply.headers.get("Retry-After"),
        secrets=_secrets(stream),
    )


def _secrets(stream: AngusStream) -> list[str]:
    return [stream.access_token.get_secret_value(), stream.username]


def _stream_message(body: bytes, stream: AngusStream) -> str:
    """The vendor's words from an error body, with the stream's secrets removed."""
    message, _ = vendor_message(body, _secrets(stream))
    return message or "no message"
