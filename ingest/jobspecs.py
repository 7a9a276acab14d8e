"""Pure: turn a backfill request into job specs (one per scope per day, or per bucket for
7d, 30d and 1M: see `ingest.buckets`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from ingest import datatypes
from ingest.buckets import bucket_start
from ingest.datatypes import DataType, table_for
from ingest.domain import JobSpec, Scope, ScopeKind, Vendor
from ingest.errors import UsageError

MAX_DAYS = 3660


def days_between(first: date, last: date, *, today: date | None = None) -> list[date]:
    """Every day from `first` to `last`, inclusive; a day after `today` is refused (its
    data does not exist yet: loading it would only store placeholders)."""
    if last < first:
        raise UsageError(f"--to ({last}) is before --from ({first})")
    if today is not None and last > today:
        raise UsageError(
            f"--to: {last} is after today ({today}); a day can be ingested once it has begun"
        )
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
    # the data type's options as given (by option name); None or False: not given
    options: Mapping[str, Any] = field(default_factory=dict)


def request_params(req: VidiCenterRequest) -> dict[str, Any]:
    """The request parameters that make a job distinct; the registry decides which options
    the data type takes (UsageError naming the option's flag otherwise)."""
    dt = req.data_type
    try:
        table_for(dt, req.resolution)
    except ValueError as error:
        raise UsageError(f"--resolution: {error}") from None
    try:
        return datatypes.request_params(dt, req.resolution, req.options)
    except ValueError as error:
        given = [name for name, value in req.options.items() if value not in (None, False)]
        flags = ", ".join(f"--{name.replace('_', '-')}" for name in sorted(given))
        raise UsageError(f"{flags or '--data-type'}: {error}") from None


def scopes_for(
    req: VidiCenterRequest, *, location_ids: Sequence[str] = (), site_ids: Sequence[str] = ()
) -> list[Scope]:
    """The jobs' scopes: one per location or site, or the whole request for an
    extrapolated type."""
    kind = req.data_type.scope_kind
    if kind is ScopeKind.extrapolated:
        return [Scope.request(req.sources)] if any(req.sources.values()) else []
    if kind is ScopeKind.site:
        return [Scope.site(i) for i in site_ids]
    return [Scope.location(i) for i in location_ids]


def job_days(resolution: str, days: Sequence[date]) -> list[date]:
    """The jobs' days for these days: the days themselves, or for 7d, 30d and 1M the first
    day of each bucket that holds one of them."""
    return sorted({bucket_start(resolution, day) for day in days})


def vidicenter_specs(
    req: VidiCenterRequest,
    *,
    account: str,
    location_ids: Sequence[str] = (),
    site_ids: Sequence[str] = (),
) -> list[JobSpec]:
    """One job per scope per day (per bucket for 7d, 30d, 1M) of the account; the scopes
    resolved by the caller as the type needs them."""
    params = request_params(req)
    scopes = scopes_for(req, location_ids=location_ids, site_ids=site_ids)
    if not scopes:
        raise UsageError(
            "no scope: give --locations, --sites, --location-tags or --site-tags, "
            "or set INGEST_VIDICENTER_LOCATIONS"
        )
    return [
        JobSpec(Vendor.vidicenter, req.data_type.name, req.resolution, scope, day, params, account)
        for day in job_days(req.resolution, req.days)
        for scope in scopes
    ]


def angus_specs(streams: Sequence[str], resolution: str, days: Sequence[date]) -> list[JobSpec]:
    """One job per stream per day."""
    return [
        JobSpec(Vendor.angus, "entities", resolution, Scope.stream(s), day)
        for day in days
        for s in streams
    ]
