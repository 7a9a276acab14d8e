"""Pure: which jobs `ingest run` keeps up to date, when a done day is due again, and
when a day is final (the vendor has all of it).

Time is an argument; nothing here reads the clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from ingest.buckets import bucket_start
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


def refresh_rule(now: datetime) -> datetime:
    """When a done job that is still open (its day, or bucket, not final) is stale: at every
    tick of the schedule. A job done at any moment before this tick is due again at it, so
    an open day is refreshed at every interval, not every second one (`now - interval` would
    miss a job done just after the last tick began).

    A done job whose day was final when it was fetched is never due again (unless forced).
    """
    return now


def due_jobs(
    now: datetime,
    *,
    tz: str,
    lookback_days: int,
    account: str = "",
    vidicenter_types: Sequence[tuple[str, str]] = (),
    locations: Sequence[str] = (),
    sites: Sequence[str] = (),
    streams: Sequence[str] = (),
    angus_resolution: str = "by_hour",
    registry: Registry = REGISTRY,
) -> list[Scheduled]:
    """Every job `ingest run` keeps for the days from today back over the look-back (for 7d,
    30d and 1M: the buckets that hold them): the VidiCenter types of `account` (its
    locations and sites), and the Angus streams."""
    today = now.astimezone(ZoneInfo(tz)).date()
    days = [today - timedelta(days=i) for i in range(lookback_days, -1, -1)]
    rule = refresh_rule(now)
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
            out += [
                Scheduled(
                    JobSpec(Vendor.vidicenter, name, resolution, s, day, params, account), rule
                )
                for s in scopes
            ]
    for day in days:
        out += [
            Scheduled(
                JobSpec(Vendor.angus, "entities", angus_resolution, Scope.stream(s), day), rule
            )
            for s in streams
        ]
    return out


# --- completeness -----------------------------------------------------------------------


def vidicenter_day_end(day: date) -> datetime:
    """The end of a VidiCenter day as its export asks for it: the next midnight, on the
    vendor's own clock (naive, as `period_start` and `last_upload_timestamp` come)."""
    return datetime.combine(day + timedelta(days=1), time.min)


def vendor_clock(now: datetime) -> datetime:
    """`now` as the vendor's naive timestamps are read: UTC without a time zone."""
    return now.astimezone(UTC).replace(tzinfo=None)


def is_silent(last_upload: datetime | None, now: datetime, *, silence_s: float) -> bool:
    """A location is silent when it has never uploaded, or not for `silence_s` seconds.

    A silent location is reported and holds no day open: whatever it uploads later is
    only picked up by a forced backfill.
    """
    if last_upload is None:
        return True
    return last_upload < vendor_clock(now) - timedelta(seconds=silence_s)


def vidicenter_day_final(
    day: date,
    last_uploads: Iterable[datetime | None],
    *,
    now: datetime,
    settle_s: float,
    silence_s: float,
) -> bool:
    """True when every location (but the silent ones) has uploaded past the day's end plus
    `settle_s`: an export built from now on holds the whole day."""
    final_after = vidicenter_day_end(day) + timedelta(seconds=settle_s)
    return all(
        upload >= final_after
        for upload in last_uploads
        if upload is not None and not is_silent(upload, now, silence_s=silence_s)
    )


def final_by_silence(day: date, *, now: datetime, settle_s: float, silence_s: float) -> bool:
    """True when the day is final whatever the uploads: it ended (plus the margin) longer
    than `silence_s` ago, so every location has either uploaded past it or fallen silent."""
    end = vidicenter_day_end(day) + timedelta(seconds=settle_s)
    return end <= vendor_clock(now) - timedelta(seconds=silence_s)


def angus_day_final(day: date, *, tz: str, now: datetime, settle_s: float) -> bool:
    """True once the day (in `tz`) has ended `settle_s` seconds ago."""
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=ZoneInfo(tz))
    return now >= end + timedelta(seconds=settle_s)
