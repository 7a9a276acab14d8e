"""Rows of aggregated exports: a row per location (or site) and period, as documented (pure)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from random import Random
from typing import NamedTuple

from ingest.simulator.datagen import (
    CONTENTS,
    EXTRAPOLATED,
    GATE_IDS,
    ExportSpec,
    GenOptions,
    Row,
    content_played,
    is_placeholder,
    key_int,
    periods,
)
from ingest.simulator.topology import Location

# people per hour in front of a screen, by hour of the day: quiet nights, busy afternoons
HOURLY = (2, 1, 0, 0, 0, 1, 4, 10, 22, 30, 34, 38, 45, 40, 36, 34, 38, 44, 40, 30, 20, 12, 6, 3)
DAILY_MEAN = sum(HOURLY) / 24
PERIOD_FORMAT = "%Y-%m-%d %H:%M:%S"


class Audience(NamedTuple):
    ots: int
    watchers: int
    dwell: int  # tenths of a second
    attention: int  # tenths of a second


class Traffic(NamedTuple):
    vehicles: int
    vehicle_presence: int  # tenths of a second
    impressions_per_vehicle: float
    footfall: int
    footfall_presence: int  # tenths of a second


def _mean(period: datetime, seconds: int) -> float:
    per_hour = HOURLY[period.hour] if seconds < 86400 else DAILY_MEAN
    return per_hour * seconds / 3600


def _rng(opts: GenOptions, family: str, location_id: int, period: datetime, seconds: int) -> Random:
    return Random(key_int(opts.seed, opts.version, family, location_id, period, seconds))


def audience(opts: GenOptions, location_id: int, period: datetime, seconds: int) -> Audience:
    """OTS and watchers of one location and period (shared by viewers, OTS, extrapolations)."""
    rng = _rng(opts, "audience", location_id, period, seconds)
    ots = int(_mean(period, seconds) * (0.5 + rng.random()))
    watchers = int(ots * rng.uniform(0.1, 0.6))
    dwell = watchers * rng.randint(15, 90)
    return Audience(ots, watchers, dwell, int(dwell * rng.uniform(0.2, 0.7)))


def traffic(opts: GenOptions, location_id: int, period: datetime, seconds: int) -> Traffic:
    """Vehicles and footfall of one location and period (shared by vehicles, footfall, im)."""
    rng = _rng(opts, "traffic", location_id, period, seconds)
    vehicles = int(_mean(period, seconds) * 1.5 * (0.5 + rng.random()))
    footfall = int(_mean(period, seconds) * 2 * (0.5 + rng.random()))
    ipv = round(rng.uniform(1.5, 2.2), 2) if vehicles else 0.0
    return Traffic(
        vehicles, vehicles * rng.randint(20, 120), ipv, footfall, footfall * rng.randint(20, 150)
    )


class Cell(NamedTuple):
    """One location and period of an export."""

    location: Location
    period: datetime
    seconds: int
    placeholder: bool

    @property
    def start(self) -> str:
        return self.period.strftime(PERIOD_FORMAT)


def _viewers(opts: GenOptions, spec: ExportSpec, c: Cell) -> list[Row]:
    base: Row = {"location_id": c.location.id, "period_start": c.start}
    if spec.group_by_demographics:
        return _demographics(opts, c, base)
    if c.placeholder:
        metrics = dict.fromkeys(
            ("watcher_count", "dwell_time_in_tenths_of_sec", "attention_time_in_tenths_of_sec")
        )
        return [{**base, **metrics, "conversion_ratio": None}]
    a = audience(opts, c.location.id, c.period, c.seconds)
    ratio = a.watchers / a.ots * 100 if a.ots else 0.0
    return [
        {
            **base,
            "watcher_count": a.watchers,
            "dwell_time_in_tenths_of_sec": a.dwell,
            "attention_time_in_tenths_of_sec": a.attention,
            "conversion_ratio": ratio,
        }
    ]


def _demographics(opts: GenOptions, c: Cell, base: Row) -> list[Row]:
    """One row per gender (0..2) and age group (0..4); times are null where nobody watched."""
    cells = [(gender, age) for gender in range(3) for age in range(5)]
    if c.placeholder:
        return [
            {**base, "gender": g, "age": a, "watcher_count": None}
            | dict.fromkeys(("dwell_time_in_tenths_of_sec", "attention_time_in_tenths_of_sec"))
            for g, a in cells
        ]
    total = audience(opts, c.location.id, c.period, c.seconds)
    rng = _rng(opts, "demographics", c.location.id, c.period, c.seconds)
    weights = [rng.random() ** 2 for _ in cells]
    counts = [int(total.watchers * w / sum(weights)) for w in weights]
    counts[0] += total.watchers - sum(counts)
    rows = []
    for (gender, age), count in zip(cells, counts, strict=True):
        dwell = count * rng.randint(15, 90) if count else None
        attention = int(dwell * rng.uniform(0.2, 0.7)) if dwell is not None else None
        rows.append(
            {
                **base,
                "gender": gender,
                "age": age,
                "watcher_count": count,
                "dwell_time_in_tenths_of_sec": dwell,
                "attention_time_in_tenths_of_sec": attention,
            }
        )
    return rows


def _ots(opts: GenOptions, spec: ExportSpec, c: Cell) -> list[Row]:
    base: Row = {"location_id": c.location.id, "period_start": c.start}
    if c.placeholder:
        return [{**base, "ots_count": None, "watcher_count": None, "duration": None}]
    a = audience(opts, c.location.id, c.period, c.seconds)
    return [{**base, "ots_count": a.ots, "watcher_count": a.watchers, "duration": c.seconds}]


def _gate(opts: GenOptions, spec: ExportSpec, c: Cell) -> list[Row]:
    rows = []
    for gate_id in GATE_IDS:
        row: Row = {"location_id": c.location.id, "period_start": c.start, "gate_id": gate_id}
        if c.placeholder:
            rows.append(row | dict.fromkeys(("in_count", "out_count", "duration")))
            continue
        rng = _rng(opts, f"gate{gate_id}", c.location.id, c.period, c.seconds)
        mean = _mean(c.period, c.seconds)
        row |= {
            "in_count": int(mean * rng.uniform(0.2, 1.0)),
            "out_count": int(mean * rng.uniform(0.2, 1.0)),
            "duration": c.seconds,
        }
        rows.append(row)
    return rows


POP_TIMES = ("total_dwell_time_in_tenths_of_sec", "total_attention_time_in_tenths_of_sec")
POP_METRICS = (
    "content_duration",
    "impressions",
    "play_count",
    "watchers",
    "watchers_2sec",
    "total_dwell_time_in_tenths_of_sec",
    "total_attention_time_in_tenths_of_sec",
)


def _pop_metrics(opts: GenOptions, c: Cell, content_id: str, length: int) -> dict[str, float]:
    rng = Random(key_int(opts.seed, opts.version, "pop", c.location.id, c.period, content_id))
    plays = max(1, int(c.seconds / 3600 * rng.randint(4, 30)))
    watchers = rng.randint(0, plays * 3)
    dwell = round(watchers * rng.uniform(5, 60), 1)
    return {
        "content_duration": plays * length,
        "impressions": watchers + rng.randint(0, watchers * 2),
        "play_count": plays,
        "watchers": watchers,
        "watchers_2sec": rng.randint(0, watchers),
        "total_dwell_time_in_tenths_of_sec": dwell,
        "total_attention_time_in_tenths_of_sec": round(dwell * rng.uniform(0.2, 0.6), 1),
    }


def _pop_row(base: Row, seconds: int, metrics: dict[str, float] | None) -> Row:
    if metrics is None:
        return base | dict.fromkeys((*POP_METRICS, "duration", "impressions_per_play"))
    ipp = round(metrics["impressions"] / metrics["play_count"], 2)
    times = {k: round(metrics[k], 1) for k in POP_TIMES}  # sums of floats: keep one decimal
    return base | metrics | times | {"duration": seconds, "impressions_per_play": ipp}


def _contents(spec: ExportSpec) -> list[tuple[str, int]]:
    return [
        (cid, length)
        for cid, _app, _campaign, length in CONTENTS
        if spec.content_ids is None or cid in spec.content_ids
    ]


def _pop_by_location(opts: GenOptions, spec: ExportSpec, c: Cell) -> list[Row]:
    rows = []
    for cid, length in _contents(spec):
        if content_played(opts, c.location.id, c.period, cid):
            base: Row = {"location_id": c.location.id, "period_start": c.start, "content_id": cid}
            metrics = None if c.placeholder else _pop_metrics(opts, c, cid, length)
            rows.append(_pop_row(base, c.seconds, metrics))
    return rows


def _traffic_row(opts: GenOptions, c: Cell, keys: tuple[str, ...]) -> Row:
    """A row of the vehicles/footfall family holding `keys` (null metrics for placeholders)."""
    base: Row = {"location_id": c.location.id, "period_start": c.start}
    if c.placeholder:
        return base | dict.fromkeys(keys)
    t = traffic(opts, c.location.id, c.period, c.seconds)
    rng = _rng(opts, "im", c.location.id, c.period, c.seconds)
    im_footfall, im_vehicle = round(rng.uniform(0.1, 0.8), 2), round(rng.uniform(0.05, 0.4), 2)
    values: Row = {
        "vehicle_count": t.vehicles,
        "vehicle_presence_time": t.vehicle_presence,
        "vehicle_total_presence_time": t.vehicle_presence,
        "vehicle_impressions": round(t.vehicles * t.impressions_per_vehicle, 2),
        "impressions_per_vehicle": t.impressions_per_vehicle,
        "footfall_impressions": t.footfall,
        "footfall_presence_time": t.footfall_presence,
        "footfall_total_dwell_time": t.footfall_presence,
        "im_footfall": im_footfall,
        "im_vehicle": im_vehicle,
        "im": round(im_footfall + im_vehicle, 2),
        "analysis_window": c.seconds * 10,
        "backup_value": "yes" if rng.random() < 0.2 else "",
    }
    return base | {k: values[k] for k in keys}


VEHICLES = (
    "vehicle_count",
    "vehicle_presence_time",
    "vehicle_impressions",
    "impressions_per_vehicle",
)
FOOTFALL = ("footfall_impressions", "footfall_presence_time")
IM = (
    "vehicle_count",
    "vehicle_total_presence_time",
    "vehicle_impressions",
    "impressions_per_vehicle",
    "footfall_impressions",
    "footfall_total_dwell_time",
    "im_footfall",
    "im_vehicle",
    "im",
    "backup_value",
    "analysis_window",
)

Builder = Callable[[GenOptions, ExportSpec, Cell], list[Row]]
PER_LOCATION: dict[str, Builder] = {
    "viewers": _viewers,
    "ots": _ots,
    "gate": _gate,
    "proof_of_play_by_location": _pop_by_location,
    "vehicles": lambda o, s, c: [_traffic_row(o, c, VEHICLES)],
    "footfall": lambda o, s, c: [_traffic_row(o, c, FOOTFALL)],
    "vehicles_footfall": lambda o, s, c: [_traffic_row(o, c, VEHICLES + FOOTFALL)],
    "im": lambda o, s, c: [_traffic_row(o, c, IM)],
}


def _cells(spec: ExportSpec, opts: GenOptions, location: Location) -> list[Cell]:
    return [
        Cell(location, period, seconds, is_placeholder(opts, location, period, spec.resolution))
        for period, seconds in periods(spec.resolution, spec.start, spec.end, opts.inclusive_end)
    ]


def aggregated_rows(spec: ExportSpec, opts: GenOptions) -> list[Row]:
    """Rows of an aggregated export: per location, per site, or for the whole scope."""
    if spec.data_type in EXTRAPOLATED:
        return _extrapolated(spec, opts)
    if spec.data_type == "proof_of_play_by_site":
        return _pop_by_site(spec, opts)
    build = PER_LOCATION[spec.data_type]
    return [
        row
        for loc in spec.locations
        for c in _cells(spec, opts, loc)
        for row in build(opts, spec, c)
    ]


EXTRAPOLATED_KEYS = {
    "extrapolated_watchers": (
        "watcher_count",
        "dwell_time_in_tenths_of_sec",
        "attention_time_in_tenths_of_sec",
    ),
    "extrapolated_ots": ("ots_count", "watcher_count", "duration"),
}


def _extrapolated(spec: ExportSpec, opts: GenOptions) -> list[Row]:
    """One row per period for the scope: the sampled locations' mean, times the amount if given."""
    keys = EXTRAPOLATED_KEYS[spec.data_type]
    rows = []
    for cells in zip(*(_cells(spec, opts, loc) for loc in spec.locations), strict=True):
        row: Row = {"period_start": cells[0].start}
        sampled = [
            audience(opts, c.location.id, c.period, c.seconds) for c in cells if not c.placeholder
        ]
        if not sampled:
            rows.append(row | dict.fromkeys(keys))
            continue
        factor = (spec.extrapolation_amount or 1) / len(sampled)
        sums = {
            "ots_count": sum(a.ots for a in sampled),
            "watcher_count": sum(a.watchers for a in sampled),
            "dwell_time_in_tenths_of_sec": sum(a.dwell for a in sampled),
            "attention_time_in_tenths_of_sec": sum(a.attention for a in sampled),
        }
        row |= {k: round(sums[k] * factor) for k in keys if k != "duration"}
        if "duration" in keys:
            row["duration"] = cells[0].seconds
        rows.append(row)
    return rows


def _pop_by_site(spec: ExportSpec, opts: GenOptions) -> list[Row]:
    """Proof of play summed over the scope's locations of each site; rows carry site_id."""
    site_ids = sorted({loc.site_id for loc in spec.locations})
    rows = []
    for site_id in site_ids:
        members = [loc for loc in spec.locations if loc.site_id == site_id]
        by_period = zip(*(_cells(spec, opts, loc) for loc in members), strict=True)
        for cells in by_period:
            for cid, length in _contents(spec):
                played = [c for c in cells if content_played(opts, c.location.id, c.period, cid)]
                if not played:
                    continue
                base: Row = {"site_id": site_id, "period_start": cells[0].start, "content_id": cid}
                parts = [_pop_metrics(opts, c, cid, length) for c in played if not c.placeholder]
                total = {k: sum(p[k] for p in parts) for k in POP_METRICS} if parts else None
                rows.append(_pop_row(base, cells[0].seconds, total))
    return rows
