"""Angus.ai's endpoints: the console's token (`/api-token-authstream/`) and `/api/1/entities`."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from multidict import MultiMapping

from ingest.simulator import entities
from ingest.simulator.faults import finished_json
from ingest.simulator.state import STATE, SimState
from ingest.simulator.tokens import TokenError, decode_token, encode_token

CREDENTIAL_FIELDS = ("username", "client_id", "access_token")
BAD_CREDENTIALS = "Unable to log in with provided credentials."
ANGUS_USER_ID = 826
AUTHENTICATE = {"WWW-Authenticate": 'JWT realm="api"'}


class ParamError(Exception):
    """A bad parameter: the API's `code` and `message`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _drf_error(state: SimState, body: dict[str, Any]) -> web.Response:
    state.counters.angus_bad_requests += 1
    return web.json_response(body, status=400)


async def token(request: web.Request) -> web.Response:
    """Exchange a stream's credentials for a JWT; DRF-style 400 for bad ones."""
    state = request.app[STATE]
    try:
        if request.content_type == "application/json":
            body: Any = await request.json()
        else:
            body = dict(await request.post())
    except ValueError as exc:
        return _drf_error(state, {"detail": f"JSON parse error - {exc}"})
    if not isinstance(body, dict):
        kind = type(body).__name__
        message = f"Invalid data. Expected a dictionary, but got {kind}."
        return _drf_error(state, {"non_field_errors": [message]})
    missing = {f: ["This field is required."] for f in CREDENTIAL_FIELDS if not body.get(f)}
    if missing:
        return _drf_error(state, missing)
    given = {f: body[f] for f in CREDENTIAL_FIELDS}
    if given not in state.config.angus_streams:
        return _drf_error(state, {"non_field_errors": [BAD_CREDENTIALS]})
    issued = int(state.clock.wall())
    claims = {
        "username": given["username"],
        "orig_iat": issued,
        "exp": issued + state.config.token_lifetime_s,
        "client_id": given["client_id"],
        "user_id": ANGUS_USER_ID,
        "email": given["username"],
    }
    state.counters.angus_tokens_issued += 1
    return web.json_response({"token": encode_token(claims, state.jwt_secret)})


def _authenticate(request: web.Request, state: SimState) -> str:
    """The stream (client_id) of the request's bearer token; TokenError if there is none."""
    header = request.headers.get("Authorization", "")
    if not header:
        raise TokenError("Authentication credentials were not provided.")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() not in ("bearer", "jwt") or not credentials.strip():
        raise TokenError("Invalid Authorization header. No credentials provided.")
    claims = decode_token(credentials.strip(), state.jwt_secret, state.clock.wall())
    client_id = claims.get("client_id")
    if not any(s["client_id"] == client_id for s in state.config.angus_streams):
        raise TokenError("Invalid payload.")
    return str(client_id)


def _date(query: MultiMapping[str], name: str, default: datetime | None) -> datetime:
    text = query.get(name)
    if text is None:
        if default is None:
            raise ParamError("missing_mandatory_param", f"'{name}' is a mandatory parameter")
        return default
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        message = f"'{name}' must be an ISO 8601 date with a UTC offset, got {text!r}"
        raise ParamError("invalid_date_format", message)
    return moment


def _metrics(query: MultiMapping[str]) -> list[str]:
    text = query.get("metrics")
    if not text:
        raise ParamError("missing_mandatory_param", "'metrics' is a mandatory parameter")
    metrics = text.split(",")
    for name in metrics:
        if name not in entities.METRICS:
            raise ParamError("unexisting_metric", f"The metric {name!r} does not exist")
    return metrics


def _page(query: MultiMapping[str], pages: int) -> int:
    text = query.get("page", "1")
    if not text.isdigit() or not 1 <= int(text) <= pages:
        raise ParamError("page_not_existing", f"Page {text!r} does not exist ({pages} pages)")
    return int(text)


def _next_page(request: web.Request, state: SimState, page: int, to_date: datetime) -> str:
    """Link to page + 1: a full URL or a path, by `next_page_style`; to_date pinned."""
    url = request.url.update_query(page=page + 1)
    if "to_date" not in request.query:  # so that "now" does not move between pages
        url = url.update_query(to_date=to_date.isoformat())
    style = state.config.next_page_style
    full = style == "url" or (style == "alternate" and page % 2 == 1)
    return str(url) if full else str(url.relative())


async def entities_page(request: web.Request) -> web.Response:
    """One page of buckets with the requested metrics; 401 without a valid token."""
    state = request.app[STATE]
    try:
        client_id = _authenticate(request, state)
    except TokenError as exc:
        state.counters.angus_unauthorized += 1
        return web.json_response({"detail": str(exc)}, status=401, headers=AUTHENTICATE)
    query = request.query
    try:
        metrics = _metrics(query)
        from_date = _date(query, "from_date", None)
        to_date = _date(query, "to_date", state.clock.wall_datetime())
        time = query.get("time", entities.GLOBAL)
        if time not in entities.TIMES:
            raise ParamError("unexisting_time", f"The time {time!r} does not exist")
        if to_date <= from_date:
            raise ParamError("invalid_date_range", "'to_date' must be after 'from_date'")
        span = (from_date.astimezone(UTC), to_date.astimezone(UTC))
        buckets = entities.bucket_starts(time, *span)
        size = state.config.page_size
        pages = max(1, math.ceil(len(buckets) / size))
        page = _page(query, pages)
    except ParamError as exc:
        return _drf_error(state, {"code": exc.code, "message": exc.message})
    chosen = buckets[(page - 1) * size : page * size]
    seed, version = state.config.seed, state.data_version
    return finished_json(
        {
            "entities": entities.entities(seed, version, client_id, metrics, time, chosen, span),
            "time": time,
            "from_date": from_date.isoformat(),
            "to_date": to_date.isoformat(),
            "total_results": len(buckets),
            "nb_of_pages": pages,
            "page": page,
            "next_page": _next_page(request, state, page, to_date) if page < pages else "",
        }
    )


def add_routes(app: web.Application) -> None:
    """Register the token and entities paths, with and without a trailing slash."""
    for path in ("/api-token-authstream/", "/api-token-authstream"):
        app.router.add_post(path, token)
    for path in ("/api/1/entities", "/api/1/entities/"):
        app.router.add_get(path, entities_page)
