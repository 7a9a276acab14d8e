"""Pure: turn a backfill request into job specs (one per scope per day)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from ingest.datatypes import DataType, ScopeKind, table_for
from ingest.errors import UsageError
from ingest.ledger import JobSpec, Vendor

MAX_DAYS = 3660


def days_between(first: date, last: date) -> list[date]:
    """Every day from `first` to `last`, inclusive."""
    if last < first:
        raise UsageError(f"--to ({last}) is before --from ({first})")
    n = (last - first).days + 1
    if n > MAX_DAYS:
        raise UsageError(f"--from/--to: at most {MAX_DAYS} days at once, got {n}")
    return [first + timedelta(days=i) for i in range(n)]


@dataclass(frozen=True)
class VidiCenterRequest:
    data_type: DataType
    resolution: str
    days: Sequence[date]
    # the scopes asked for, by kind: "locations", "sites", "location_tags", "site_tags"
    sources: Mapping[str, Sequence[str]]
    group_by_demographics: bool = False
    content_ids: str | None = None
    extrapolation_amount: str | None = None


def request_params(req: VidiCenterRequest) -> dict[str, Any]:
    """The request parameters that make a job distinct; refuses options the type lacks."""
    dt = req.data_type
    table_for_resolution(dt, req.resolution)
    params: dict[str, Any] = {}
    if req.group_by_demographics:
        if "group_by_demographics" not in dt.options or req.resolution == "finest":
            raise UsageError("--group-by-demographics works only with aggregated viewers")
        params["group_by_demographics"] = True
    if req.content_ids is not None:
        if "content_ids" not in dt.options:
            raise UsageError("--content-ids works only with viewers_apc and proof of play")
        params["content_ids"] = req.content_ids
    if "extrapolation_amount" in dt.options:
        amount = req.extrapolation_amount or ""
        if amount and not amount.isdigit():
            raise UsageError("--extrapolation-amount must be a whole number (or omitted)")
        params["extrapolation_amount"] = amount
    elif req.extrapolation_amount is not None:
        raise UsageError("--extrapolation-amount works only with the extrapolated types")
    return params


def table_for_resolution(dt: DataType, resolution: str) -> None:
    try:
        table_for(dt, resolution)
    except ValueError as error:
        raise UsageError(f"--resolution: {error}") from None


def vidicenter_specs(
    req: VidiCenterRequest,
    *,
    location_ids: Sequence[str] = (),
    site_ids: Sequence[str] = (),
) -> list[JobSpec]:
    """One job per scope per day; the scopes resolved by the caller as the type needs them."""
    params = request_params(req)
    dt = req.data_type
    if dt.scope_kind is ScopeKind.extrapolated:
        scope = ";".join(f"{kind}:{','.join(ids)}" for kind, ids in req.sources.items() if ids)
        scopes = [scope]
    elif dt.scope_kind is ScopeKind.site:
        scopes = [f"site:{i}" for i in site_ids]
    else:
        scopes = [f"location:{i}" for i in location_ids]
    if not scopes or not scopes[0]:
        raise UsageError(
            "no scope: give --locations, --sites, --location-tags or --site-tags, "
            "or set INGEST_VIDICENTER_LOCATIONS"
        )
    return [
        JobSpec(Vendor.vidicenter, dt.name, req.resolution, scope, day, params)
        for day in req.days
        for scope in scopes
    ]


def angus_specs(streams: Sequence[str], resolution: str, days: Sequence[date]) -> list[JobSpec]:
    """One job per stream per day."""
    return [
        JobSpec(Vendor.angus, "entities", resolution, f"stream:{s}", day)
        for day in days
        for s in streams
    ]
