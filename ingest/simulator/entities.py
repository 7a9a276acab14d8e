"""Angus entities: time buckets and their metrics, deterministic per stream and hour (pure)."""

from __future__ import annotations

from datetime import datetime, timedelta
from random import Random
from typing import Any, NamedTuple

from ingest.simulator.aggregates import HOURLY
from ingest.simulator.datagen import key_int

METRICS = (
    "passing_by",
    "interested",
    "stop_time",
    "attention_time",
    "category",
    "gender",
    "satisfaction",
)
TIMES = ("by_hour", "by_day", "global")
GLOBAL = "global"
BUCKET_LENGTH = {"by_hour": timedelta(hours=1), "by_day": timedelta(days=1)}


class HourCounts(NamedTuple):
    passing_by: int
    interested: int
    stop_s: float  # total over interested people
    attention_s: float
    female: int
    male: int
    young_female: int
    young_male: int
    satisfaction: float  # total over interested people


def hour_counts(seed: int, version: int, client_id: str, hour: datetime) -> HourCounts:
    """One stream's audience in one UTC hour; nights have hours with nobody at all."""
    rng = Random(key_int(seed, version, "angus", client_id, hour))
    passing_by = int(HOURLY[hour.hour] * 3 * (0.5 + rng.random()))
    interested = int(passing_by * rng.uniform(0.1, 0.5))
    stop_s = interested * rng.uniform(2.0, 20.0)
    female = rng.randint(0, interested)
    male = rng.randint(0, interested - female)
    return HourCounts(
        passing_by=passing_by,
        interested=interested,
        stop_s=stop_s,
        attention_s=stop_s * rng.uniform(0.2, 0.8),
        female=female,
        male=male,
        young_female=rng.randint(0, female),
        young_male=rng.randint(0, male),
        satisfaction=interested * rng.uniform(0.3, 0.9),
    )


def _floor(moment: datetime, time: str) -> datetime:
    hour = moment.replace(minute=0, second=0, microsecond=0)
    return hour.replace(hour=0) if time == "by_day" else hour


def bucket_starts(time: str, start: datetime, end: datetime) -> list[datetime]:
    """UTC starts of the buckets overlapping [start, end); `global` has one, at `start`."""
    if time == GLOBAL:
        return [start]
    step = timedelta(days=1) if time == "by_day" else timedelta(hours=1)
    current = _floor(start, time)
    out = []
    while current < end:
        out.append(current)
        current += step
    return out


def bucket_hours(time: str, bucket: datetime, start: datetime, end: datetime) -> list[datetime]:
    """The UTC hours of one bucket that overlap [start, end)."""
    if time == GLOBAL:
        return bucket_starts("by_hour", start, end)
    length = BUCKET_LENGTH[time]
    return bucket_starts("by_hour", max(start, bucket), min(end, bucket + length))


def _average(total: float, count: int) -> float | None:
    return round(total / count, 2) if count else None


def metrics_of(counts: list[HourCounts], metrics: list[str]) -> dict[str, Any]:
    """The requested metrics of a bucket, in Angus' shapes."""
    passing_by = sum(c.passing_by for c in counts)
    interested = sum(c.interested for c in counts)
    female, male = sum(c.female for c in counts), sum(c.male for c in counts)
    young_female, young_male = (
        sum(c.young_female for c in counts),
        sum(c.young_male for c in counts),
    )
    shapes: dict[str, Any] = {
        "passing_by": {"value": passing_by},
        "interested": {"value": interested},
        "stop_time": {"value": _average(sum(c.stop_s for c in counts), interested)},
        "attention_time": {"value": _average(sum(c.attention_s for c in counts), interested)},
        "gender": {"?": interested - female - male, "female": female, "male": male},
        "category": {
            "senior_female": female - young_female,
            "senior_male": male - young_male,
            "young_female": young_female,
            "young_male": young_male,
        },
        "satisfaction": {"value": _average(sum(c.satisfaction for c in counts), interested)},
    }
    return {name: shapes[name] for name in metrics}


def bucket_key(time: str, bucket: datetime) -> str:
    """The key of a bucket in `entities`: its UTC start, or "global"."""
    return GLOBAL if time == GLOBAL else bucket.isoformat()


def entities(
    seed: int,
    version: int,
    client_id: str,
    metrics: list[str],
    time: str,
    buckets: list[datetime],
    span: tuple[datetime, datetime],
) -> dict[str, dict[str, Any]]:
    """The metrics of each given bucket (one page of them), within the requested span."""
    start, end = span
    return {
        bucket_key(time, b): metrics_of(
            [hour_counts(seed, version, client_id, h) for h in bucket_hours(time, b, start, end)],
            metrics,
        )
        for b in buckets
    }
