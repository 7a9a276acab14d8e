"""Rows of finest exports: one row per detected person or vehicle (pure, built for speed).

Each (location, hour) has its own `Random`, so an hour's events do not depend on the
export's range; each event's fields are sliced out of one 64-bit draw, which keeps
200,000 rows to well under a second. Every hour of an active location has exactly
`finest_rows_per_hour` events (fewer in hours the range clips), so row counts are
predictable; inactive locations have none.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from random import Random

from ingest.simulator.datagen import (
    CONTENTS,
    ExportSpec,
    GenOptions,
    Row,
    hours,
    key_int,
)
from ingest.simulator.topology import Location

MINUTE_SECOND = tuple(f"{m:02d}:{s:02d}" for m in range(60) for s in range(60))
AGE_BASE = (30, 6, 20, 38, 66)  # youngest age in years of each age group
MOOD_TIMES = ("very_happy_time", "happy_time", "neutral_time", "unhappy_time", "very_unhappy_time")
IPV = tuple(round(1.5 + i / 100, 2) for i in range(64))  # impressions per vehicle


def _mood_table() -> tuple[tuple[float, float, float, float, float], ...]:
    """64 mood distributions, each summing to 100 over two moods."""
    table = []
    for i in range(64):
        share = 100.0 * (i % 8) / 7
        moods = [0.0] * 5
        moods[i // 8 % 5] += share
        moods[(i // 8 + 2) % 5] += 100.0 - share
        table.append((moods[0], moods[1], moods[2], moods[3], moods[4]))
    return tuple(table)


MOODS = _mood_table()


class Hour:
    """The events of one location and hour, clipped to the export's range."""

    def __init__(self, spec: ExportSpec, opts: GenOptions, location: Location, hour: datetime):
        self.location = location
        self.prefix = hour.strftime("%Y-%m-%dT%H:")
        self.rng = Random(key_int(opts.seed, opts.version, spec.data_type, location.id, hour))
        draws = [self.rng.getrandbits(64) for _ in range(opts.finest_rows_per_hour)]
        draws.sort(key=_second)  # each draw's second of the hour is its value modulo 3600
        lo = max(0, int((spec.start - hour).total_seconds()))
        hi = min(3600, int((spec.end - hour).total_seconds()))
        self.draws = [b for b in draws if lo <= b % 3600 < hi]
        self.bad = opts.bad_enums


def _second(draw: int) -> int:
    return draw % 3600


def _viewers(h: Hour, time_key: str = "period_start") -> list[Row]:
    loc_id, prefix, stamp = h.location.id, h.prefix, MINUTE_SECOND
    rows: list[Row] = []
    for b in h.draws:
        gender = (b >> 12 & 255) % 3
        age = (b >> 20 & 255) % 5
        if h.bad and b >> 59 == 0:  # one row in 32
            gender, age = 7, 9
        dwell = 5 + (b >> 28 & 511)
        attention = dwell * (b >> 37 & 63) // 63
        if h.location.expert:
            very_happy, happy, neutral, unhappy, very_unhappy = MOODS[b >> 43 & 63]
            row: Row = {
                "location_id": loc_id,
                time_key: prefix + stamp[b % 3600],
                "gender": gender,
                "age": age,
                "glasses": (b >> 49 & 15) % 4,
                "mustache": (b >> 53 & 15) % 3,
                "beard": (b >> 57 & 15) % 3,
                "age_value": AGE_BASE[age % 5] + (b >> 43 & 15),
                "dwell_time_in_tenths_of_sec": dwell,
                "attention_time_in_tenths_of_sec": attention,
                "very_happy": very_happy,
                "happy": happy,
                "neutral": neutral,
                "unhappy": unhappy,
                "very_unhappy": very_unhappy,
            }
        else:  # PRO licence: expert keys present, null
            row = {
                "location_id": loc_id,
                time_key: prefix + stamp[b % 3600],
                "gender": gender,
                "age": age,
                "glasses": None,
                "mustache": None,
                "beard": None,
                "age_value": None,
                "dwell_time_in_tenths_of_sec": dwell,
                "attention_time_in_tenths_of_sec": attention,
                "very_happy": None,
                "happy": None,
                "neutral": None,
                "unhappy": None,
                "very_unhappy": None,
            }
        rows.append(row)
    return rows


def _viewers_apc(h: Hour, content_ids: tuple[str, ...] | None) -> list[Row]:
    """Viewers with the contents played while they were in view; others are left out."""
    rows = []
    for row in _viewers(h, time_key="start_time"):
        contents = []
        for _ in range(1 + h.rng.getrandbits(1)):
            content_id, app_id, campaign_id, _length = CONTENTS[h.rng.randrange(len(CONTENTS))]
            if content_ids is not None and content_id not in content_ids:
                continue
            dwell_ms = row["dwell_time_in_tenths_of_sec"] * h.rng.randint(20, 100)
            attention_ms = dwell_ms * h.rng.randint(0, 100) // 100
            moods: dict[str, int | None] = dict.fromkeys(MOOD_TIMES)  # PRO: null
            if h.location.expert:
                moods = dict.fromkeys(MOOD_TIMES, 0) | {"neutral_time": attention_ms}
            contents.append(
                {
                    "content_id": content_id,
                    "app_id": app_id,
                    "campaign_id": campaign_id,
                    "dwell_time_in_milliseconds": dwell_ms,
                    "attention_time_in_milliseconds": attention_ms,
                    **moods,
                }
            )
        if contents:
            row["contents"] = contents
            rows.append(row)
    return rows


def _vehicles(h: Hour) -> list[Row]:
    loc_id, prefix, stamp = h.location.id, h.prefix, MINUTE_SECOND
    rows: list[Row] = []
    for b in h.draws:
        kind, color = (b >> 21 & 7) % 5, (b >> 24 & 15) % 8
        if h.bad and b >> 59 == 0:  # one row in 32, like the docs' color 12356
            kind, color = 99, 12356
        ipv = IPV[b >> 32 & 63]
        rows.append(
            {
                "location_id": loc_id,
                "period_start": prefix + stamp[b % 3600],
                "type": kind,
                "color": None if b >> 28 & 15 == 0 else color,
                "vehicle_presence_time": 5 + (b >> 12 & 511),
                "vehicle_impressions": ipv,
                "impressions_per_vehicle": ipv,
            }
        )
    return rows


def _footfall(h: Hour) -> list[Row]:
    loc_id, prefix, stamp = h.location.id, h.prefix, MINUTE_SECOND
    return [
        {
            "location_id": loc_id,
            "period_start": prefix + stamp[b % 3600],
            "footfall_presence_time": 5 + (b >> 12 & 1023),
        }
        for b in h.draws
    ]


def _vehicles_footfall(h: Hour) -> list[Row]:
    """Each event is either a vehicle or a person; the other side's keys are zero."""
    rows = _vehicles(h)
    for row, b in zip(rows, h.draws, strict=True):
        if b >> 63:
            row["footfall_presence_time"] = 0
            if row["color"] is None:
                row["color"] = 0
        else:
            row |= {
                "type": 0,
                "color": 0,
                "vehicle_presence_time": 0,
                "vehicle_impressions": 0.0,
                "impressions_per_vehicle": 0.0,
                "footfall_presence_time": 5 + (b >> 40 & 1023),
            }
    return rows


def finest_row_chunks(spec: ExportSpec, opts: GenOptions) -> Iterator[list[Row]]:
    """The events of the export's active locations, an hour of one location at a time."""
    builders: dict[str, Callable[[Hour], list[Row]]] = {
        "viewers": _viewers,
        "viewers_apc": lambda h: _viewers_apc(h, spec.content_ids),
        "vehicles": _vehicles,
        "footfall": _footfall,
        "vehicles_footfall": _vehicles_footfall,
    }
    build = builders[spec.data_type]
    for location in spec.locations:
        if not location.active:
            continue
        for hour in hours(spec.start, spec.end):
            yield build(Hour(spec, opts, location, hour))


def finest_rows(spec: ExportSpec, opts: GenOptions) -> list[Row]:
    """Every event of the export's active locations, in time order per location."""
    return [row for chunk in finest_row_chunks(spec, opts) for row in chunk]
