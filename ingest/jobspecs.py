"""Pure: turn a backfill request into job specs (one per scope per day)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from ingest.datatypes import DataType, ScopeKind, check_options, table_for
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
    """The request parameters that make a job distinct; the registry decides which options
    the data type takes (UsageError naming the option otherwise)."""
    dt = req.data_type
    try:
        table_for(dt, req.resolution)
    except ValueError as error:
        raise UsageError(f"--resolution: {error}") from None
    params: dict[str, Any] = {}
    if req.group_by_demographics:
        params["group_by_demographics"] = True
    if req.content_ids is not None:
        params["content_ids"] = req.content_ids
    if req.extrapolation_amount is not None or "extrapolation_amount" in dt.required_options:
        amount = req.extrapolation_amount or ""  # empty: the average of the sampled locations
        if amount and not amount.isdigit():
            raise UsageError("--extrapolation-amount: must be a whole number (or omitted)")
        params["extrapolation_amount"] = amount
    try:
        check_options(dt, req.resolution, params)
    except ValueError as error:
        flags = ", ".join(f"--{name.replace('_', '-')}" for name in sorted(params))
        raise UsageError(f"{flags}: {error}") from None
    return params


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
