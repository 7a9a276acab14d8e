"""HTTP plumbing shared by the vendor clients: sessions, status mapping, retries."""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import aiohttp
import anyio
import msgspec
import structlog

from ingest.delays import backoff
from ingest.errors import (
    AuthError,
    BadPayload,
    IngestError,
    RateLimited,
    RetryableError,
    VendorRejected,
    VendorUnavailable,
)

log = structlog.get_logger(__name__)
T = TypeVar("T")

USER_AGENT = "ingest/0.1 (+audience data ingestion)"


def new_session(
    *,
    max_connections: int,
    timeout_s: float,
    trace_configs: list[aiohttp.TraceConfig] | None = None,
) -> aiohttp.ClientSession:
    """A session with a connection cap and a total timeout on every request.

    Connections are not kept idle between calls, so open connections never exceed the
    calls in flight (the vendor counts simultaneous connections).
    """
    connector = aiohttp.TCPConnector(limit=max_connections, force_close=True)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout_s),
        headers={"User-Agent": USER_AGENT},
        raise_for_status=False,
        trace_configs=trace_configs,
    )


def sent_once() -> tuple[aiohttp.ClientMiddlewareType]:
    """Request middleware that lets a request leave the process once.

    aiohttp sends an idempotent request again, unseen, when its connection drops (there is
    no switch for it: aio-libs/aiohttp#10790), and that second request would pass no call
    budget. The drop goes up instead, to the caller's own retries, which pass the budget.
    Pass a fresh one with each request: it remembers that request's first try.
    """
    failed: list[aiohttp.ClientError] = []

    async def once(
        request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
    ) -> aiohttp.ClientResponse:
        if failed:
            raise failed[0]
        try:
            return await handler(request)
        except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError) as error:
            failed.append(error)
            raise

    return (once,)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: whole seconds or an HTTP date (GMT).

    Anything else ('inf', '1e9', garbage) is None: the caller's own backoff applies.
    """
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # HTTP dates are GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


# A wait longer than this is not slept through in a call (a Retry-After of an hour, say):
# the failure is raised with its delay and the job is tried again after it, so a worker
# slot is not held for minutes.
MAX_RETRY_WAIT_S = 120.0

_JSON = msgspec.json.Decoder()


def decode_json(vendor: str, body: bytes | str) -> Any:
    """Parse a JSON body, or fail the job with the reason (not retried by the client).

    msgspec parses a 65 MB export in about a third of the standard library's time and
    builds the objects directly, with no transient buffer (orjson's peaks at 15 times
    the body). NaN and Infinity are refused: PostgreSQL could not store them anyway.
    """
    try:
        return _JSON.decode(body)
    except msgspec.DecodeError as error:
        raise BadPayload(f"{vendor} answered a body that is not JSON ({error})") from None


def snippet(body: bytes, limit: int = 80) -> str:
    """The start of a body, quoted, for an error message."""
    return repr(body[:limit].decode("utf-8", "replace")) + ("..." if len(body) > limit else "")


def vendor_message(body: bytes, secrets: Sequence[str] = ()) -> tuple[str, str | None]:
    """The vendor's words in an error body and its error code, if any, with `secrets` cut
    out: `{"code", "message"}`, DRF-style `{"detail"}`/`{"field": [...]}`, or the text."""
    code: str | None = None
    try:
        data = _JSON.decode(body)
    except msgspec.DecodeError:
        data = None
    if isinstance(data, dict) and data:
        if isinstance(data.get("code"), str):
            code = data["code"]
            message = f"{code}: {data.get('message')}"
        else:
            parts: list[str] = []
            for key, value in data.items():
                items = value if isinstance(value, list) else [value]
                text = "; ".join(map(str, items))
                plain = key in ("message", "detail", "non_field_errors")
                parts.append(text if plain else f"{key}: {text}")
            message = "; ".join(parts)
    else:
        message = body[:200].decode("utf-8", "replace")
    for secret in secrets:
        if secret:
            message = message.replace(secret, "[REDACTED]")
    return message, code


def error_for_status(
    vendor: str,
    status: int,
    body: bytes,
    retry_after: str | None,
    *,
    secrets: Sequence[str] = (),
    now: float | None = None,
) -> IngestError:
    """The error a non-2xx answer stands for: its type decides retrying."""
    words, code = vendor_message(body, secrets)
    message = f"{vendor} answered {status}: {words}"
    if status in (401, 403):
        return AuthError(message, status=status)
    if status == 429:
        return RateLimited(message, delay=parse_retry_after(retry_after, now=now))
    if status == 503:
        return VendorUnavailable(message, delay=parse_retry_after(retry_after, now=now))
    if status >= 500:
        return VendorUnavailable(message)
    if "limit" in message.lower():  # an undocumented 4xx for the export cap: back off
        return RateLimited(message, delay=parse_retry_after(retry_after, now=now))
    return VendorRejected(message, status=status, code=code)


async def with_retries(
    attempt: Callable[[], Awaitable[T]],
    *,
    what: str,
    retries: int,
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    rng: random.Random | None = None,
    max_wait_s: float | None = None,
) -> T:
    """Run `attempt`, trying again after passing failures (5xx, 429, network) with backoff.

    A wait longer than `max_wait_s` (a Retry-After of an hour, say) is not slept here: the
    failure is raised with its delay, and the job is tried again after it.
    """
    for n in range(retries + 1):
        try:
            return await attempt()
        except (aiohttp.ClientError, TimeoutError) as error:
            failure: RetryableError = VendorUnavailable(
                f"{what}: {type(error).__name__}: {error}".rstrip(": ")
            )
        except (VendorUnavailable, RateLimited) as error:
            failure = error
        if n == retries:
            raise failure
        wait = failure.delay if failure.delay is not None else backoff(n, rng=rng)
        if max_wait_s is not None and wait > max_wait_s:
            failure.delay = wait
            raise failure
        log.warning(
            "http.retry_scheduled",
            what=what,
            error=str(failure),
            wait_s=round(wait, 2),
            attempt=n + 1,
        )
        await sleep(wait)
    raise AssertionError("unreachable")
