"""VidiCenter's endpoints under /api/v1/: whoami, topology and the data export."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import structlog
from aiohttp import web

from ingest.simulator.datagen import (
    ALIASES,
    EXTRAPOLATED,
    RESOLUTIONS,
    ExportSpec,
    estimate_rows,
)
from ingest.simulator.exports import (
    Build,
    ExportCapReached,
    ExportState,
    export_key,
    finished_body,
)
from ingest.simulator.faults import FinishedAnswer, finished_json
from ingest.simulator.limits import days_label, retry_after_header, size_label
from ingest.simulator.state import STATE, SimState
from ingest.simulator.topology import SCOPE_KEYS, Location, Tag

log = structlog.get_logger()

DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"
DATE_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")


def vendor_error(
    status: int, message: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    """An error in VidiCenter's documented shape."""
    body = {"message": message, "error": status}
    return web.json_response(body, status=status, headers=headers)


def too_many_requests(message: str, retry_after_s: float) -> web.Response:
    """A 429 with a Retry-After in whole real seconds."""
    return vendor_error(429, message, {"Retry-After": retry_after_header(retry_after_s)})


def _location_json(state: SimState, loc: Location) -> dict[str, Any]:
    site = state.topology.site(loc.site_id)
    uploaded = state.last_upload(loc.id) if loc.active else "2019-06-01 00:00:00"
    return {
        "id": loc.id,
        "label": loc.label,
        "site_id": loc.site_id,
        "site_label": site.label if site else None,
        "active": loc.active,
        "last_timezone": loc.last_timezone,
        "last_upload_timestamp": uploaded,
        "tags": list(loc.tag_ids),
    }


def _tag_json(tag: Tag, members: str) -> dict[str, Any]:
    return {"id": tag.id, "label": tag.label, members: list(tag.member_ids)}


async def whoami(request: web.Request) -> web.Response:
    """The authenticated user (the only one there is): a cheap credentials check."""
    return web.json_response({"username": request.app[STATE].config.vidicenter_username})


async def locations(request: web.Request) -> web.Response:
    """Every location, active or not."""
    state = request.app[STATE]
    return web.json_response([_location_json(state, loc) for loc in state.topology.locations])


async def sites(request: web.Request) -> web.Response:
    """Every site."""
    topology = request.app[STATE].topology
    return web.json_response(
        [
            {
                "id": s.id,
                "label": s.label,
                "active": s.active,
                "last_timezone": s.last_timezone,
                "tags": list(s.tag_ids),
                "locations": [loc.id for loc in topology.site_locations(s.id)],
            }
            for s in topology.sites
        ]
    )


async def site_locations(request: web.Request) -> web.Response:
    """Locations of one site; 404 for an unknown site."""
    state = request.app[STATE]
    ident = request.match_info["site_id"]
    if not ident.isdigit() or state.topology.site(int(ident)) is None:
        return vendor_error(404, "Not found")
    locs = state.topology.site_locations(int(ident))
    return web.json_response([_location_json(state, loc) for loc in locs])


async def location_tags(request: web.Request) -> web.Response:
    """Location tags with their locations."""
    tags = request.app[STATE].topology.location_tags
    return web.json_response([_tag_json(t, "locations") for t in tags])


async def site_tags(request: web.Request) -> web.Response:
    """Site tags with their sites."""
    tags = request.app[STATE].topology.site_tags
    return web.json_response([_tag_json(t, "sites") for t in tags])


async def not_found(request: web.Request) -> web.Response:
    """Any other path under /api/v1/."""
    return vendor_error(404, "Not found")


def _required(query: Mapping[str, str], name: str) -> str:
    value = query.get(name, "")
    if not value:
        raise ValueError(f"Missing mandatory argument: {name}")
    return value


def _date(query: Mapping[str, str], name: str) -> datetime:
    value = _required(query, name)
    if DATE_PATTERN.fullmatch(value):
        with contextlib.suppress(ValueError):  # e.g. a 13th month
            return datetime.strptime(value, DATE_FORMAT)
    raise ValueError(f"Invalid date format for {name}: {value!r}, expected YYYY-MM-DDTHH:MM:SS")


def parse_export(query: Mapping[str, str], state: SimState) -> ExportSpec:
    """The export a query asks for; ValueError with the vendor's kind of message if invalid."""
    requested = _required(query, "data_type")
    data_type = ALIASES.get(requested, requested)
    if data_type not in RESOLUTIONS:
        raise ValueError(f"Invalid data_type: {requested!r}")
    resolution = _required(query, "time_resolution")
    if not any(resolution in allowed for allowed in RESOLUTIONS.values()):
        raise ValueError(f"Invalid time_resolution: {resolution!r}")
    if resolution not in RESOLUTIONS[data_type]:
        allowed = ", ".join(RESOLUTIONS[data_type])
        raise ValueError(
            f"time_resolution {resolution!r} is not available for data_type {requested!r}"
            f" (allowed: {allowed})"
        )
    start, end = _date(query, "start"), _date(query, "end")
    if end <= start:
        raise ValueError("end must be after start")
    sources = {k: query[k] for k in SCOPE_KEYS if k in query}
    if not sources:
        raise ValueError("Missing mandatory argument: one of " + ", ".join(SCOPE_KEYS))
    amount = None
    if data_type in EXTRAPOLATED:
        if "extrapolation_amount" not in query:
            raise ValueError("Missing mandatory argument: extrapolation_amount")
        text = query["extrapolation_amount"]
        if text and (not text.isdigit() or int(text) < 1):
            raise ValueError(f"Invalid extrapolation_amount: {text!r}, expected an integer >= 1")
        amount = int(text) if text else None
    content_ids = None
    if "content_ids" in query:
        content_ids = tuple(c.strip() for c in query["content_ids"].split(",") if c.strip())
    return ExportSpec(
        data_type=data_type,
        resolution=resolution,
        start=start,
        end=end,
        locations=tuple(state.topology.resolve_scope(sources)),
        # "only works with aggregated viewers": ignored elsewhere, as the docs put it
        group_by_demographics="group_by_demographics" in query,
        content_ids=content_ids,
        extrapolation_amount=amount,
    )


def _count_start(
    state: SimState, build: Build, spec: ExportSpec, *, forced: bool, now: float
) -> None:
    counters = state.counters
    counters.exports_started += 1
    rows = estimate_rows(spec, build.options)
    by_rows, by_days = counters.exports_by_rows, counters.exports_by_days
    by_rows[size_label(rows)] = by_rows.get(size_label(rows), 0) + 1
    days = max(1, -(-int((spec.end - spec.start).total_seconds()) // 86400))
    by_days[days_label(days)] = by_days.get(days_label(days), 0) + 1
    counters.largest_export_rows = max(counters.largest_export_rows, rows)
    if forced and build.number > 1:
        counters.exports_rebuilt += 1
    if build.fail_reason is not None:
        counters.exports_failed += 1
    running = len(state.exports.running(now))
    counters.max_concurrent_exports = max(counters.max_concurrent_exports, running)


async def data(request: web.Request) -> web.Response:
    """The export endpoint: start, poll, answer the data; 429 when max_exports are running."""
    state = request.app[STATE]
    query = request.query
    try:
        spec = parse_export(query, state)
    except ValueError as exc:
        state.counters.bad_requests += 1
        return vendor_error(400, str(exc))
    now = state.now()
    try:
        status, export = state.exports.request(
            export_key(query.items()),
            spec,
            force="force_rebuild" in query,
            now=now,
            creation_date=state.creation_date(),
            options=state.gen_options(),
            config=state.config,
        )
    except ExportCapReached as exc:
        state.counters.violations.exports += 1
        log.warning("simulator.export_refused", running=state.config.max_exports)
        message = f"You cannot start more than {state.config.max_exports} exports in parallel"
        return too_many_requests(message, exc.retry_after / state.clock.scale)
    build = export.build
    if status is ExportState.started:
        _count_start(state, build, spec, forced="force_rebuild" in query, now=now)
        log.debug("simulator.export_started", key=export.key, build=build.number)
        return web.json_response({"state": "started"})
    if status is ExportState.in_progress:
        return web.json_response({"state": "in_progress", "creation_date": build.creation_date})
    if status is ExportState.failed:
        answer = {"state": "failed", "fail_reason": build.fail_reason}
        return web.json_response(answer | {"creation_date": build.creation_date})
    state.counters.exports_served += 1
    if "status_only" in query:
        return finished_json({"state": "finished", "creation_date": build.creation_date})
    body = await finished_body(export, build)
    return FinishedAnswer(body=body, content_type="application/json")


def add_routes(app: web.Application) -> None:
    """Register every VidiCenter path, with and without its trailing slash."""
    routes = {
        "/api/v1/whoami/": whoami,
        "/api/v1/locations/": locations,
        "/api/v1/sites/": sites,
        "/api/v1/site/{site_id}/locations/": site_locations,
        "/api/v1/location_tags/": location_tags,
        "/api/v1/site_tags/": site_tags,
        "/api/v1/data/": data,
    }
    for path, handler in routes.items():
        app.router.add_get(path, handler)
        app.router.add_get(path.rstrip("/"), handler)
    app.router.add_route("*", "/api/v1/{tail:.*}", not_found)
