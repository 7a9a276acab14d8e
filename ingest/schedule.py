"""Pure: which jobs `ingest run` keeps up to date, and when a done day is due again.

Time is an argument; nothing here reads the clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from ingest.buckets import bucket_end, bucket_start
from ingest.datatypes import REGISTRY, Registry, request_params, table_for
from ingest.domain import JobSpec, Scope, ScopeKind, Vendor


@dataclass(frozen=True)
class Scheduled:
    """A job to keep: `refresh_before` re-opens it when it was done before that instant."""

    spec: JobSpec
    refresh_before: datetime | None


def parse_schedule(entries: Sequence[str], registry: Registry = REGISTRY) -> list[tuple[str, str]]:
    """`viewers:1h` pairs, each checked against the registry (ValueError when not offered)."""
    pairs = []
    for entry in entries:
        name, _, resolution = entry.partition(":")
        try:
            dt = registry.get(name)
        except KeyError as error:
            raise ValueError(str(error.args[0])) from None
        table_for(dt, resolution)
        pairs.append((dt.name, resolution))
    return pairs


def refresh_rule(
    day: date, today: date, now: datetime, *, reingest_days: int, resolution: str = "1d"
) -> datetime | None:
    """When a done job of `day` (a bucket's first day for 7d, 30d, 1M) is stale.

    A job whose span holds today is still open: it is ingested again at every tick of the
    schedule, so a job done since the last tick is stale at this one. A span that ended
    within `reingest_days` is ingested again once per calendar day, to pick up late
    uploads. Older spans are left as they are.
    """
    end = bucket_end(resolution, day)
    if end > today:
        return now
    if (today - end).days < reingest_days:
        return datetime.combine(today, time.min, tzinfo=now.tzinfo)
    return None


def due_jobs(
    now: datetime,
    *,
    tz: str,
    lookback_days: int,
    reingest_days: int,
    vidicenter_types: Sequence[tuple[str, str]] = (),
    locations: Sequence[str] = (),
    sites: Sequence[str] = (),
    streams: Sequence[str] = (),
    angus_resolution: str = "by_hour",
    registry: Registry = REGISTRY,
) -> list[Scheduled]:
    """Every job `ingest run` keeps for the days from today back over the look-back (for 7d,
    30d and 1M: the buckets that hold them)."""
    today = now.astimezone(ZoneInfo(tz)).date()
    days = [today - timedelta(days=i) for i in range(lookback_days, -1, -1)]
    out: list[Scheduled] = []
    for name, resolution in vidicenter_types:
        dt = registry.get(name)
        params = request_params(dt, resolution, {})  # every option at its default
        if dt.scope_kind is ScopeKind.location:
            scopes = [Scope.location(i) for i in locations]
        elif dt.scope_kind is ScopeKind.site:
            scopes = [Scope.site(i) for i in sites]
        else:
            scopes = [Scope.request({"locations": locations})] if locations else []
        for day in sorted({bucket_start(resolution, d) for d in days}):
            rule = refresh_rule(day, today, now, reingest_days=reingest_days, resolution=resolution)
            out += [
                Scheduled(JobSpec(Vendor.vidicenter, name, resolution, s, day, params), rule)
                for s in scopes
            ]
    for day in days:
        rule = refresh_rule(day, today, now, reingest_days=reingest_days)
        out += [
            Scheduled(
                JobSpec(Vendor.angus, "entities", angus_resolution, Scope.stream(s), day), rule
            )
            for s in streams
        ]
    return out
