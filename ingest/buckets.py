"""Pure: the span of one job, by time resolution.

A job of a resolution up to `1d` covers one day. A coarser period spans many days, so a
per-day job cannot own it: a job of `7d`, `30d` or `1M` covers one bucket, and its `day`
is the bucket's first day. VidiCenter does not say how it aligns these periods; ingest asks
for whole buckets:

- `7d`: ISO weeks, Monday to Sunday;
- `30d`: 30-day periods counted from 1970-01-01 (the Unix epoch): 2024-01-18 to 2024-02-16,
  then 2024-02-17 to 2024-03-17, ...;
- `1M`: calendar months.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Final

COARSE: Final = frozenset({"7d", "30d", "1M"})
ANCHOR_30D: Final = date(1970, 1, 1)
# seconds of each fixed period up to a day: how many rows a scope has per day
PERIOD_SECONDS: Final = {"5m": 300, "10m": 600, "15m": 900, "30m": 1800, "1h": 3600, "1d": 86400}


def bucket_start(resolution: str, day: date) -> date:
    """The first day of the job that holds `day`."""
    if resolution == "7d":
        return day - timedelta(days=day.weekday())
    if resolution == "30d":
        return ANCHOR_30D + timedelta(days=30 * ((day - ANCHOR_30D).days // 30))
    if resolution == "1M":
        return day.replace(day=1)
    return day


def bucket_end(resolution: str, start: date) -> date:
    """The day after the last day of the job that starts on `start` (exclusive)."""
    if resolution == "7d":
        return start + timedelta(days=7)
    if resolution == "30d":
        return start + timedelta(days=30)
    if resolution == "1M":
        return date(start.year + start.month // 12, start.month % 12 + 1, 1)
    return start + timedelta(days=1)


def bucket_index(resolution: str, start: date) -> int:
    """A number that grows by one from a job's bucket to the next: consecutive buckets are
    consecutive numbers."""
    if resolution == "7d":
        return (start - date(1970, 1, 5)).days // 7  # 1970-01-05 is a Monday
    if resolution == "30d":
        return (start - ANCHOR_30D).days // 30
    if resolution == "1M":
        return start.year * 12 + start.month - 1
    return start.toordinal()


def buckets_between(resolution: str, first: date, last: date) -> list[date]:
    """The first days of every job whose span meets `first..last` (inclusive), in order."""
    out: list[date] = []
    current = bucket_start(resolution, first)
    while current <= last:
        out.append(current)
        current = bucket_end(resolution, current)
    return out


def is_open(resolution: str, start: date, today: date) -> bool:
    """Whether the job's span has not ended by `today` (it holds today or a later day)."""
    return bucket_end(resolution, start) > today
