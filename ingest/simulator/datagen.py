"""What each data type accepts, the periods of an export, and deterministic randomness (pure).

Every value is drawn from `random.Random(key_int(seed, data version, family, location,
period))`, never from global random state: the same request gives the same rows, in any
simulator with the same seed, and a late upload (a new data version) changes them.
"""

from __future__ import annotations

import calendar
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ingest.simulator.topology import Location

Row = dict[str, Any]

AGGREGATED = ("5m", "10m", "15m", "30m", "1h", "1d", "7d", "30d", "1M")
FINEST = "finest"
FIXED_SECONDS = {"5m": 300, "10m": 600, "15m": 900, "30m": 1800, "1h": 3600, "1d": 86400}

# data type → the resolutions it accepts. The page says finest is "unavailable for OTS,
# Gate, Proof of play, Footfall and Vehicle exports" yet documents finest vehicles and
# footfall exports with examples: those are accepted, the aggregate-only types are not.
RESOLUTIONS: dict[str, tuple[str, ...]] = {
    "viewers": (FINEST, *AGGREGATED),
    "viewers_apc": (FINEST,),
    "ots": AGGREGATED,
    "gate": AGGREGATED,
    "proof_of_play_by_location": AGGREGATED,
    "proof_of_play_by_site": AGGREGATED,
    "extrapolated_watchers": AGGREGATED,
    "extrapolated_ots": AGGREGATED,
    "vehicles": (FINEST, *AGGREGATED),
    "footfall": (FINEST, *AGGREGATED),
    "vehicles_footfall": (FINEST, *AGGREGATED),
    "im": ("1h",),
}
# older names still accepted (the footfall examples of the docs use them)
ALIASES = {"persons": "footfall", "vehicles_persons": "vehicles_footfall"}
EXTRAPOLATED = ("extrapolated_watchers", "extrapolated_ots")
# content played on the screens: (content_id, app_id, campaign_id, length in seconds)
CONTENTS = (
    ("content-a", "sim-app", None, 15),
    ("content-b", "sim-app", "campaign-1", 30),
    ("content-c", "sim-app", "campaign-2", 20),
    ("content-d", "other-app", None, 10),
)
# documented gate ids of the simulated locations
GATE_IDS = (1, 2)


@dataclass(frozen=True)
class GenOptions:
    """The generation settings an export is built with (snapshotted when its build starts)."""

    seed: int
    version: int
    finest_rows_per_hour: int
    placeholder_share: float
    extra_keys: bool
    bad_enums: bool
    inclusive_end: bool
    poison: str = ""  # LOCATION_ID:YYYY-MM-DD whose first row gets a value of the wrong type


@dataclass(frozen=True)
class ExportSpec:
    """A validated export request."""

    data_type: str  # canonical name (aliases resolved)
    resolution: str
    start: datetime
    end: datetime
    locations: tuple[Location, ...]
    group_by_demographics: bool = False
    content_ids: tuple[str, ...] | None = None
    extrapolation_amount: int | None = None  # None: the average of the sampled locations


def key_int(*parts: object) -> int:
    """A stable 64-bit integer from the parts (unlike hash(), the same in every process)."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def key_unit(*parts: object) -> float:
    """A stable number in [0, 1) from the parts."""
    return key_int(*parts) / 2.0**64


def is_placeholder(opts: GenOptions, location: Location, period: datetime, resolution: str) -> bool:
    """No data for this location and period: inactive locations, and a share of periods."""
    if not location.active:
        return True
    share = key_unit(opts.seed, opts.version, "placeholder", location.id, period, resolution)
    return share < opts.placeholder_share


def _add_month(day: datetime) -> datetime:
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    return day.replace(
        year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1])
    )


def periods(
    resolution: str, start: datetime, end: datetime, inclusive_end: bool = False
) -> list[tuple[datetime, int]]:
    """(period start, length in seconds) of every period starting in [start, end).

    Sub-daily and 1d periods are aligned on midnight, so the first one is the period that
    holds `start`. 7d and 30d periods start at midnight of the start date and every 7 or
    30 days from it; 1M periods are calendar months, from the first of the start's month.
    With `inclusive_end`, a period starting exactly at `end` is included too (one
    example of the docs shows that).
    """
    day0 = start.replace(hour=0, minute=0, second=0, microsecond=0)
    if resolution in FIXED_SECONDS:
        step = timedelta(seconds=FIXED_SECONDS[resolution])
        first = day0 + step * ((start - day0) // step)
    elif resolution == "1M":
        first = day0.replace(day=1)
    else:
        step = timedelta(days=7 if resolution == "7d" else 30)
        first = day0
    out: list[tuple[datetime, int]] = []
    current = first
    while current < end or (inclusive_end and current == end):
        following = _add_month(current) if resolution == "1M" else current + step
        out.append((current, int((following - current).total_seconds())))
        current = following
    return out


def hours(start: datetime, end: datetime) -> list[datetime]:
    """Starts of the hours that overlap [start, end)."""
    current = start.replace(minute=0, second=0, microsecond=0)
    out = []
    while current < end:
        out.append(current)
        current += timedelta(hours=1)
    return out


def estimate_rows(spec: ExportSpec, opts: GenOptions) -> int:
    """An upper bound of the export's row count, cheap to compute (for the row limits)."""
    if spec.resolution == FINEST:
        n_hours = len(hours(spec.start, spec.end))
        return len(spec.locations) * n_hours * opts.finest_rows_per_hour
    n_periods = len(periods(spec.resolution, spec.start, spec.end, opts.inclusive_end))
    if spec.data_type in EXTRAPOLATED:
        return n_periods
    per_period = {"gate": len(GATE_IDS)}.get(spec.data_type, 1)
    if spec.data_type.startswith("proof_of_play"):
        per_period = len(CONTENTS)
    if spec.group_by_demographics and spec.data_type == "viewers":
        per_period = 15
    return len(spec.locations) * n_periods * per_period


def content_played(opts: GenOptions, location_id: int, period: datetime, content_id: str) -> bool:
    """Whether the content played at the location in the period (the data version aside)."""
    return key_unit(opts.seed, "played", location_id, period, content_id) < 0.75
