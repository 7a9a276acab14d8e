"""VidiCenter payload → records: the documentation's examples, the edge cases, properties."""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.datatypes import (
    FINEST,
    REGISTRY,
    Column,
    Fill,
    TableSpec,
    get_data_type,
    table_for,
)
from ingest.errors import BadPayload
from ingest.normalize import vidicenter
from ingest.normalize.vidicenter import NormalizedExport, TableRows, normalize_export

Row = dict[str, Any]


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


ACCOUNT = "vidicenter.example.com/alice"


def normalize(
    name: str,
    resolution: str,
    data: object,
    scope: str = "locations:1",
    extrapolation_amount: str | None = None,
    *,
    keep_account: bool = False,
) -> NormalizedExport:
    """The export's records; unless `keep_account`, without their account column (which
    must hold the job's account in every record)."""
    result = normalize_export(
        get_data_type(name),
        resolution,
        data,
        scope=scope,
        extrapolation_amount=extrapolation_amount,
        account=ACCOUNT,
    )
    if keep_account:
        return result
    table = result.rows.table
    at = table.column_names.index("account")
    assert all(record[at] == ACCOUNT for record in result.rows.records)
    records = [record[:at] + record[at + 1 :] for record in result.rows.records]
    return NormalizedExport(TableRows(table, records), result.child)


def typed(records: list[tuple[object, ...]]) -> list[list[tuple[type, object]]]:
    """Records with each value's type, so that 41 and 41.0 differ."""
    return [[(type(value), value) for value in record] for record in records]


def assert_records(actual: list[tuple[object, ...]], expected: list[tuple[object, ...]]) -> None:
    assert typed(actual) == typed(expected)


# --- the documentation's examples -----------------------------------------------------
# Copied from vidicenter-data-export.rst, slips included (the missing commas after
# "location_id" in the aggregated vehicles example are restored: Python needs them).

FINEST_VIEWERS_PRO: list[Row] = [
    {
        "happy": None,
        "dwell_time_in_tenths_of_sec": 41,
        "gender": 1,
        "age": 3,
        "age_value": None,
        "neutral": None,
        "unhappy": None,
        "very_unhappy": None,
        "attention_time_in_tenths_of_sec": 16,
        "period_start": "2018-01-29T00:00:27",
        "glasses": None,
        "location_id": 8264,
        "very_happy": None,
        "mustache": None,
        "beard": None,
    },
    {
        "happy": None,
        "dwell_time_in_tenths_of_sec": 54,
        "gender": 1,
        "age": 2,
        "age_value": None,
        "neutral": None,
        "unhappy": None,
        "very_unhappy": None,
        "attention_time_in_tenths_of_sec": 39,
        "period_start": "2018-01-29T00:03:57",
        "glasses": None,
        "location_id": 8264,
        "very_happy": None,
        "mustache": None,
        "beard": None,
    },
]

FINEST_VIEWERS_EXPERT: list[Row] = [
    {
        "happy": 0.0,
        "dwell_time_in_tenths_of_sec": 24,
        "gender": 2,
        "age": 2,
        "age_value": 19,
        "neutral": 66.66666666666666,
        "unhappy": 0.0,
        "very_unhappy": 0.0,
        "attention_time_in_tenths_of_sec": 8,
        "period_start": "2018-01-29T01:28:52",
        "glasses": 1,
        "location_id": 8866,
        "very_happy": 33.333333333333336,
        "mustache": 1,
        "beard": 1,
    },
    {
        "happy": 49.80392156862745,
        "dwell_time_in_tenths_of_sec": 37,
        "gender": 1,
        "age": 3,
        "age_value": 57,
        "neutral": 0.39215686274509665,
        "unhappy": 49.80392156862745,
        "very_unhappy": 0.0,
        "attention_time_in_tenths_of_sec": 3,
        "period_start": "2018-01-29T00:25:18",
        "glasses": 3,
        "location_id": 8866,
        "very_happy": 0.0,
        "mustache": 2,
        "beard": 2,
    },
]

VIEWERS_APC: list[Row] = [
    {
        "beard": 1,
        "dwell_time_in_tenths_of_sec": 29,
        "start_time": "2018-01-14T09:29:10",
        "gender": 2,
        "age": 1,
        "age_value": 8,
        "neutral": 70.19607843137254,
        "mustache": 1,
        "unhappy": 0.0,
        "attention_time_in_tenths_of_sec": 12,
        "location_id": 38918,
        "glasses": 1,
        "very_unhappy": 0.0,
        "very_happy": 9.803921568627452,
        "contents": [
            {
                "campaign_id": None,
                "dwell_time_in_milliseconds": 928,
                "unhappy_time": 0,
                "happy_time": 0,
                "very_happy_time": 0,
                "app_id": "my_app_id",
                "very_unhappy_time": 0,
                "attention_time_in_milliseconds": 192,
                "content_id": "my_very_own_content_id",
                "neutral_time": 192,
            },
            {
                "campaign_id": "A campaign id",
                "dwell_time_in_milliseconds": 925,
                "unhappy_time": 0,
                "happy_time": 0,
                "very_happy_time": 0,
                "app_id": "my_app_id",
                "very_unhappy_time": 0,
                "attention_time_in_milliseconds": 925,
                "content_id": "another_content_id",
                "neutral_time": 925,
            },
        ],
        "happy": 20.0,
    },
    {
        "beard": 1,
        "dwell_time_in_tenths_of_sec": 10,
        "start_time": "2018-01-14T09:21:54",
        "gender": 2,
        "age": 3,
        "age_value": 40,
        "neutral": 33.33333333333333,
        "mustache": 1,
        "unhappy": 0.0,
        "attention_time_in_tenths_of_sec": 5,
        "location_id": 38918,
        "glasses": 1,
        "very_unhappy": 0.0,
        "very_happy": 0.0,
        "contents": [
            {
                "campaign_id": None,
                "dwell_time_in_milliseconds": 15,
                "unhappy_time": 0,
                "happy_time": 542,
                "very_happy_time": 0,
                "app_id": "my_app_id",
                "very_unhappy_time": 0,
                "attention_time_in_milliseconds": 542,
                "content_id": "my_very_own_content_id",
                "neutral_time": 0,
            }
        ],
        "happy": 66.66666666666667,
    },
]

AGGREGATED_VIEWERS: list[Row] = [
    {
        "dwell_time_in_tenths_of_sec": 12,
        "conversion_ratio": 11.11111111111111,
        "watcher_count": 1,
        "attention_time_in_tenths_of_sec": 3,
        "period_start": "2018-01-29 02:00:00",
        "location_id": 4636,
    },
    {
        "dwell_time_in_tenths_of_sec": 0,
        "conversion_ratio": 0.0,
        "watcher_count": 0,
        "attention_time_in_tenths_of_sec": 0,
        "period_start": "2018-01-29 03:00:00",
        "location_id": 4636,
    },
    {
        "dwell_time_in_tenths_of_sec": 83,
        "conversion_ratio": 27.272727272727273,
        "watcher_count": 3,
        "attention_time_in_tenths_of_sec": 27,
        "period_start": "2018-01-29 04:00:00",
        "location_id": 4636,
    },
]

VIEWERS_BY_DEMOGRAPHICS: list[Row] = [
    {
        "dwell_time_in_tenths_of_sec": 83,
        "gender": 1,
        "age": 3,
        "watcher_count": 3,
        "attention_time_in_tenths_of_sec": 27,
        "period_start": "2018-01-29 04:00:00",
        "location_id": 9876,
    },
    {
        "dwell_time_in_tenths_of_sec": None,
        "gender": 0,
        "age": 0,
        "watcher_count": 0,
        "attention_time_in_tenths_of_sec": None,
        "period_start": "2018-01-29 04:00:00",
        "location_id": 9876,
    },
]

OTS: list[Row] = [
    {
        "duration": 3600,
        "watcher_count": 3,
        "period_start": "2018-01-29 00:00:00",
        "location_id": 1467,
        "ots_count": 4,
    },
    {
        "duration": 3600,
        "watcher_count": 0,
        "period_start": "2018-01-29 01:00:00",
        "location_id": 1467,
        "ots_count": 0,
    },
    {
        "duration": 3600,
        "watcher_count": 1,
        "period_start": "2018-01-29 02:00:00",
        "location_id": 1467,
        "ots_count": 9,
    },
    {
        "duration": 3600,
        "watcher_count": 0,
        "period_start": "2018-01-29 03:00:00",
        "location_id": 1467,
        "ots_count": 0,
    },
    {
        "duration": 3600,
        "watcher_count": 3,
        "period_start": "2018-01-29 04:00:00",
        "location_id": 1467,
        "ots_count": 11,
    },
]

GATE: list[Row] = [
    {
        "in_count": 8,
        "gate_id": 1,
        "out_count": 18,
        "duration": 3600,
        "period_start": "2018-01-19 10:00:00",
        "location_id": 26549,
    },
    {
        "in_count": 14,
        "gate_id": 1,
        "out_count": 36,
        "duration": 3600,
        "period_start": "2018-01-19 11:00:00",
        "location_id": 26549,
    },
    {
        "in_count": 16,
        "gate_id": 1,
        "out_count": 32,
        "duration": 3600,
        "period_start": "2018-01-19 12:00:00",
        "location_id": 26549,
    },
]

PROOF_OF_PLAY_BY_LOCATION: list[Row] = [
    {
        "content_duration": 60,
        "content_id": "content one",
        "duration": 3600,
        "impressions": 32,
        "location_id": 4636,
        "period_start": "2018-01-29 02:00:00",
        "play_count": 12,
        "impressions_per_play": 2.67,
        "watchers": 8,
        "watchers_2sec": 6,
        "total_dwell_time_in_tenths_of_sec": 54.1,
        "total_attention_time_in_tenths_of_sec": 12.9,
    },
    {
        "content_duration": 110,
        "content_id": "content one",
        "duration": 3600,
        "impressions": 96,
        "location_id": 4636,
        "period_start": "2018-01-29 03:00:00",
        "play_count": 22,
        "impressions_per_play": 4.36,
        "watchers": 64,
        "watchers_2sec": 20,
        "total_dwell_time_in_tenths_of_sec": 105.1,
        "total_attention_time_in_tenths_of_sec": 38.5,
    },
    {
        "content_duration": 165,
        "content_id": "content one",
        "duration": 3600,
        "impressions": 8,
        "location_id": 4636,
        "period_start": "2018-01-29 04:00:00",
        "play_count": 33,
        "impressions_per_play": 0.24,
        "watchers": 4,
        "watchers_2sec": 1,
        "total_dwell_time_in_tenths_of_sec": 6.3,
        "total_attention_time_in_tenths_of_sec": 3.4,
    },
]

PROOF_OF_PLAY_BY_SITE: list[Row] = [
    {
        "content_duration": 50,
        "content_id": "content one",
        "duration": 3600,
        "impressions": 31,
        "period_start": "2018-01-29 02:00:00",
        "play_count": 10,
        "impressions_per_play": 3.10,
        "site_id": 178,
        "watchers": 7,
        "watchers_2sec": 5,
        "total_dwell_time_in_tenths_of_sec": 9.3,
        "total_attention_time_in_tenths_of_sec": 5.4,
    },
    {
        "content_duration": 110,
        "content_id": "content one",
        "duration": 3600,
        "impressions": 28,
        "period_start": "2018-01-29 03:00:00",
        "play_count": 22,
        "impressions_per_play": 1.27,
        "site_id": 178,
        "watchers": 14,
        "watchers_2sec": 14,
        "total_dwell_time_in_tenths_of_sec": 36.3,
        "total_attention_time_in_tenths_of_sec": 19.5,
    },
    {
        "content_duration": 20,
        "content_id": "content one",
        "duration": 3600,
        "impressions": 87,
        "period_start": "2018-01-29 04:00:00",
        "play_count": 4,
        "impressions_per_play": 21.75,
        "site_id": 178,
        "watchers": 42,
        "watchers_2sec": 12,
        "total_dwell_time_in_tenths_of_sec": 95.1,
        "total_attention_time_in_tenths_of_sec": 42.2,
    },
]

EXTRAPOLATED_WATCHERS: list[Row] = [
    {
        "dwell_time_in_tenths_of_sec": 12,
        "watcher_count": 1,
        "attention_time_in_tenths_of_sec": 3,
        "period_start": "2018-01-29 02:00:00",
    },
    {
        "dwell_time_in_tenths_of_sec": 0,
        "watcher_count": 0,
        "attention_time_in_tenths_of_sec": 0,
        "period_start": "2018-01-29 03:00:00",
    },
    {
        "dwell_time_in_tenths_of_sec": 83,
        "watcher_count": 3,
        "attention_time_in_tenths_of_sec": 27,
        "period_start": "2018-01-29 04:00:00",
    },
]

EXTRAPOLATED_OTS: list[Row] = [
    {"duration": 3600, "watcher_count": 3, "period_start": "2018-01-29 00:00:00", "ots_count": 4},
    {"duration": 3600, "watcher_count": 0, "period_start": "2018-01-29 01:00:00", "ots_count": 0},
    {"duration": 3600, "watcher_count": 1, "period_start": "2018-01-29 02:00:00", "ots_count": 9},
    {"duration": 3600, "watcher_count": 0, "period_start": "2018-01-29 03:00:00", "ots_count": 0},
    {"duration": 3600, "watcher_count": 3, "period_start": "2018-01-29 04:00:00", "ots_count": 11},
]

FINEST_VEHICLES: list[Row] = [
    {
        "vehicle_presence_time": 41,
        "period_start": "2018-01-29T00:00:27",
        "type": 4,
        "location_id": 8264,
        "color": None,
        "vehicle_impressions": 1.83,
        "impressions_per_vehicle": 1.83,
    },
    {
        "vehicle_presence_time": 54,
        "period_start": "2018-01-29T00:03:57",
        "type": 3,
        "location_id": 8264,
        "color": 12356,
        "vehicle_impressions": 1.72,
        "impressions_per_vehicle": 1.72,
    },
]

AGGREGATED_VEHICLES: list[Row] = [
    {
        "vehicle_presence_time": 12,
        "vehicle_count": 1,
        "period_start": "2018-01-29 02:00:00",
        "location_id": 4636,
        "vehicle_impressions": 1.72,
        "impressions_per_vehicle": 1.72,
    },
    {
        "vehicle_presence_time": 0,
        "vehicle_count": 0,
        "period_start": "2018-01-29 03:00:00",
        "location_id": 4636,
        "vehicle_impressions": 0,
        "impressions_per_vehicle": 0,
    },
    {
        "vehicle_presence_time": 83,
        "vehicle_count": 3,
        "period_start": "2018-01-29 04:00:00",
        "location_id": 4636,
        "vehicle_impressions": 6.04,
        "impressions_per_vehicle": 2.01,
    },
]

FINEST_FOOTFALL: list[Row] = [
    {"footfall_presence_time": 41, "period_start": "2018-01-29T00:00:27", "location_id": 8264},
    {"footfall_presence_time": 54, "period_start": "2018-01-29T00:03:57", "location_id": 8264},
]

AGGREGATED_FOOTFALL: list[Row] = [
    {
        "footfall_presence_time": 12,
        "footfall_impressions": 1,
        "period_start": "2018-01-29 02:00:00",
        "location_id": 4636,
    },
    {
        "footfall_presence_time": 0,
        "footfall_impressions": 0,
        "period_start": "2018-01-29 03:00:00",
        "location_id": 4636,
    },
    {
        "footfall_presence_time": 83,
        "footfall_impressions": 3,
        "period_start": "2018-01-29 04:00:00",
        "location_id": 4636,
    },
]

FINEST_VEHICLES_FOOTFALL: list[Row] = [
    {
        "type": 3,
        "color": 6,
        "location_id": 4636,
        "period_start": "2021-11-01T09:03:25",
        "vehicle_presence_time": 29,
        "vehicle_impressions": 1.85,
        "impressions_per_vehicle": 1.85,
        "footfall_presence_time": 0,
    },
    {
        "type": 0,
        "color": 0,
        "location_id": 4636,
        "period_start": "2021-11-01T09:05:21",
        "vehicle_presence_time": 0,
        "vehicle_impressions": 0.0,
        "impressions_per_vehicle": 0.0,
        "footfall_presence_time": 85,
    },
]

AGGREGATED_VEHICLES_FOOTFALL: list[Row] = [
    {
        "location_id": 4636,
        "vehicle_impressions": 155,
        "impressions_per_vehicle": 1.85,
        "period_start": "2021-11-01 09:00:00",
        "vehicle_count": 84,
        "vehicle_presence_time": 23569,
        "footfall_impressions": 2,
        "footfall_presence_time": 133,
    },
    {
        "location_id": 4636,
        "vehicle_impressions": 187,
        "impressions_per_vehicle": 1.85,
        "period_start": "2021-11-01 09:30:00",
        "vehicle_count": 101,
        "vehicle_presence_time": 7634,
        "footfall_impressions": 1,
        "footfall_presence_time": 91,
    },
    {
        "location_id": 4636,
        "vehicle_impressions": 0,
        "impressions_per_vehicle": 0.0,
        "period_start": "2021-11-01 10:00:00",
        "vehicle_count": 0,
        "vehicle_presence_time": 0,
        "footfall_impressions": 0,
        "footfall_presence_time": 0,
    },
]

IM: list[Row] = [
    {
        "location_id": 60628,
        "vehicle_impressions": 50,
        "impressions_per_vehicle": 1.85,
        "footfall_impressions": 76,
        "footfall_total_dwell_time": 23482,
        "im": 0.79,
        "im_footfall": 0.65,
        "im_vehicle": 0.14,
        "analysis_window": 36000,
        "backup_value": "",
        "period_start": "2021-11-14 21:00:00",
        "vehicle_count": 27,
        "vehicle_total_presence_time": 2696,
    },
    {
        "location_id": 60628,
        "vehicle_impressions": 70,
        "impressions_per_vehicle": 1.94,
        "footfall_impressions": 49,
        "footfall_total_dwell_time": 6662,
        "im": 0.4,
        "im_footfall": 0.19,
        "im_vehicle": 0.21,
        "analysis_window": 36000,
        "backup_value": "yes",
        "period_start": "2021-11-14 22:00:00",
        "vehicle_count": 36,
        "vehicle_total_presence_time": 3989,
    },
]

PLACEHOLDER_OTS: list[Row] = [
    {
        "duration": 86400.0,
        "location_id": 1234,
        "ots_count": 504,
        "watcher_count": 156,
        "period_start": "2016-04-29 00:00:00",
    },
    {
        "duration": None,
        "location_id": 1234,
        "ots_count": None,
        "watcher_count": None,
        "period_start": "2016-04-30 00:00:00",
    },
]

N = None
EXAMPLES: list[tuple[str, str, list[Row], list[tuple[object, ...]]]] = [
    (
        "viewers",
        FINEST,
        FINEST_VIEWERS_PRO,
        [
            (8264, ts("2018-01-29 00:00:27"), 1, 3, N, N, N, N, 41.0, 16.0, N, N, N, N, N, "{}"),
            (8264, ts("2018-01-29 00:03:57"), 1, 2, N, N, N, N, 54.0, 39.0, N, N, N, N, N, "{}"),
        ],
    ),
    (
        "viewers",
        FINEST,
        FINEST_VIEWERS_EXPERT,
        [
            (
                8866,
                ts("2018-01-29 01:28:52"),
                *(2, 2, 1, 1, 1, 19.0, 24.0, 8.0),
                *(33.333333333333336, 0.0, 66.66666666666666, 0.0, 0.0),
                "{}",
            ),
            (
                8866,
                ts("2018-01-29 00:25:18"),
                *(1, 3, 3, 2, 2, 57.0, 37.0, 3.0),
                *(0.0, 49.80392156862745, 0.39215686274509665, 49.80392156862745, 0.0),
                "{}",
            ),
        ],
    ),
    (
        "viewers",
        "1h",
        AGGREGATED_VIEWERS,
        [
            (4636, "1h", ts("2018-01-29 02:00:00"), N, N, 1, 12.0, 3.0, 11.11111111111111, "{}"),
            (4636, "1h", ts("2018-01-29 03:00:00"), N, N, 0, 0.0, 0.0, 0.0, "{}"),
            (4636, "1h", ts("2018-01-29 04:00:00"), N, N, 3, 83.0, 27.0, 27.272727272727273, "{}"),
        ],
    ),
    (
        "viewers",
        "1h",
        VIEWERS_BY_DEMOGRAPHICS,
        [
            (9876, "1h", ts("2018-01-29 04:00:00"), 1, 3, 3, 83.0, 27.0, N, "{}"),
            (9876, "1h", ts("2018-01-29 04:00:00"), 0, 0, 0, N, N, N, "{}"),
        ],
    ),
    (
        "ots",
        "1h",
        OTS,
        [
            (1467, "1h", ts("2018-01-29 00:00:00"), 4, 3600.0, 3, "{}"),
            (1467, "1h", ts("2018-01-29 01:00:00"), 0, 3600.0, 0, "{}"),
            (1467, "1h", ts("2018-01-29 02:00:00"), 9, 3600.0, 1, "{}"),
            (1467, "1h", ts("2018-01-29 03:00:00"), 0, 3600.0, 0, "{}"),
            (1467, "1h", ts("2018-01-29 04:00:00"), 11, 3600.0, 3, "{}"),
        ],
    ),
    (
        "gate",
        "1h",
        GATE,
        [
            (26549, "1h", ts("2018-01-19 10:00:00"), 1, 8, 18, 3600.0, "{}"),
            (26549, "1h", ts("2018-01-19 11:00:00"), 1, 14, 36, 3600.0, "{}"),
            (26549, "1h", ts("2018-01-19 12:00:00"), 1, 16, 32, 3600.0, "{}"),
        ],
    ),
    (
        "proof_of_play_by_location",
        "1h",
        PROOF_OF_PLAY_BY_LOCATION,
        [
            (
                4636,
                "1h",
                ts("2018-01-29 02:00:00"),
                "content one",
                *(60.0, 3600.0, 32.0, 12, 2.67, 8, 6, 54.1, 12.9, "{}"),
            ),
            (
                4636,
                "1h",
                ts("2018-01-29 03:00:00"),
                "content one",
                *(110.0, 3600.0, 96.0, 22, 4.36, 64, 20, 105.1, 38.5, "{}"),
            ),
            (
                4636,
                "1h",
                ts("2018-01-29 04:00:00"),
                "content one",
                *(165.0, 3600.0, 8.0, 33, 0.24, 4, 1, 6.3, 3.4, "{}"),
            ),
        ],
    ),
    (
        "proof_of_play_by_site",
        "1h",
        PROOF_OF_PLAY_BY_SITE,
        [
            (
                178,
                "1h",
                ts("2018-01-29 02:00:00"),
                "content one",
                *(50.0, 3600.0, 31.0, 10, 3.10, 7, 5, 9.3, 5.4, "{}"),
            ),
            (
                178,
                "1h",
                ts("2018-01-29 03:00:00"),
                "content one",
                *(110.0, 3600.0, 28.0, 22, 1.27, 14, 14, 36.3, 19.5, "{}"),
            ),
            (
                178,
                "1h",
                ts("2018-01-29 04:00:00"),
                "content one",
                *(20.0, 3600.0, 87.0, 4, 21.75, 42, 12, 95.1, 42.2, "{}"),
            ),
        ],
    ),
    (
        "vehicles",
        FINEST,
        FINEST_VEHICLES,
        [
            (8264, ts("2018-01-29 00:00:27"), 4, N, 41.0, 1.83, 1.83, "{}"),
            (8264, ts("2018-01-29 00:03:57"), 3, 12356, 54.0, 1.72, 1.72, "{}"),
        ],
    ),
    (
        "vehicles",
        "1h",
        AGGREGATED_VEHICLES,
        [
            (4636, "1h", ts("2018-01-29 02:00:00"), 1, 12.0, 1.72, 1.72, "{}"),
            (4636, "1h", ts("2018-01-29 03:00:00"), 0, 0.0, 0.0, 0.0, "{}"),
            (4636, "1h", ts("2018-01-29 04:00:00"), 3, 83.0, 6.04, 2.01, "{}"),
        ],
    ),
    (
        "persons",
        FINEST,
        FINEST_FOOTFALL,
        [
            (8264, ts("2018-01-29 00:00:27"), 41.0, "{}"),
            (8264, ts("2018-01-29 00:03:57"), 54.0, "{}"),
        ],
    ),
    (
        "persons",
        "1h",
        AGGREGATED_FOOTFALL,
        [
            (4636, "1h", ts("2018-01-29 02:00:00"), 1.0, 12.0, "{}"),
            (4636, "1h", ts("2018-01-29 03:00:00"), 0.0, 0.0, "{}"),
            (4636, "1h", ts("2018-01-29 04:00:00"), 3.0, 83.0, "{}"),
        ],
    ),
    (
        "vehicles_persons",
        FINEST,
        FINEST_VEHICLES_FOOTFALL,
        [
            (4636, ts("2021-11-01 09:03:25"), 3, 6, 29.0, 1.85, 1.85, 0.0, "{}"),
            (4636, ts("2021-11-01 09:05:21"), 0, 0, 0.0, 0.0, 0.0, 85.0, "{}"),
        ],
    ),
    (
        "vehicles_persons",
        "30m",
        AGGREGATED_VEHICLES_FOOTFALL,
        [
            (4636, "30m", ts("2021-11-01 09:00:00"), 84, 155.0, 23569.0, 1.85, 2.0, 133.0, "{}"),
            (4636, "30m", ts("2021-11-01 09:30:00"), 101, 187.0, 7634.0, 1.85, 1.0, 91.0, "{}"),
            (4636, "30m", ts("2021-11-01 10:00:00"), 0, 0.0, 0.0, 0.0, 0.0, 0.0, "{}"),
        ],
    ),
    (
        "im",
        "1h",
        IM,
        [
            (
                60628,
                "1h",
                ts("2021-11-14 21:00:00"),
                27,
                2696.0,
                50.0,
                1.85,
                76.0,
                23482.0,
                *(0.65, 0.14, 0.79, "", 36000.0, "{}"),
            ),
            (
                60628,
                "1h",
                ts("2021-11-14 22:00:00"),
                36,
                3989.0,
                70.0,
                1.94,
                49.0,
                6662.0,
                *(0.19, 0.21, 0.4, "yes", 36000.0, "{}"),
            ),
        ],
    ),
]


@pytest.mark.parametrize(
    ("name", "resolution", "data", "expected"),
    EXAMPLES,
    ids=[f"{name}-{resolution}-{i}" for i, (name, resolution, _, _) in enumerate(EXAMPLES)],
)
def test_documented_example_normalizes_to_the_expected_records(
    name: str, resolution: str, data: list[Row], expected: list[tuple[object, ...]]
) -> None:
    result = normalize(name, resolution, data)
    assert_records(result.rows.records, expected)
    assert result.child is None


def test_extrapolated_watchers_example_is_stored_under_scope_and_amount() -> None:
    result = normalize("extrapolated_watchers", "1h", EXTRAPOLATED_WATCHERS, "locations:4636", "12")
    head = ("locations:4636", "12", "1h")
    assert_records(
        result.rows.records,
        [
            (*head, ts("2018-01-29 02:00:00"), 1.0, 12.0, 3.0, "{}"),
            (*head, ts("2018-01-29 03:00:00"), 0.0, 0.0, 0.0, "{}"),
            (*head, ts("2018-01-29 04:00:00"), 3.0, 83.0, 27.0, "{}"),
        ],
    )
    assert result.counts_by_scope() == {}


def test_extrapolated_ots_example_with_empty_amount_stores_an_empty_string() -> None:
    result = normalize("extrapolated_ots", "1h", EXTRAPOLATED_OTS, "sites:4,5", None)
    head = ("sites:4,5", "", "1h")
    assert_records(
        result.rows.records,
        [
            (*head, ts("2018-01-29 00:00:00"), 4.0, 3600.0, 3.0, "{}"),
            (*head, ts("2018-01-29 01:00:00"), 0.0, 3600.0, 0.0, "{}"),
            (*head, ts("2018-01-29 02:00:00"), 9.0, 3600.0, 1.0, "{}"),
            (*head, ts("2018-01-29 03:00:00"), 0.0, 3600.0, 0.0, "{}"),
            (*head, ts("2018-01-29 04:00:00"), 11.0, 3600.0, 3.0, "{}"),
        ],
    )


def test_viewers_apc_example_puts_contents_in_child_rows_with_their_parent_index() -> None:
    result = normalize("viewers_apc", FINEST, VIEWERS_APC)
    assert_records(
        result.rows.records,
        [
            (
                38918,
                ts("2018-01-14 09:29:10"),
                *(2, 1, 1, 1, 1, 8.0, 29.0, 12.0),
                *(9.803921568627452, 20.0, 70.19607843137254, 0.0, 0.0),
                "{}",
            ),
            (
                38918,
                ts("2018-01-14 09:21:54"),
                *(2, 3, 1, 1, 1, 40.0, 10.0, 5.0),
                *(0.0, 66.66666666666667, 33.33333333333333, 0.0, 0.0),
                "{}",
            ),
        ],
    )
    assert result.child is not None
    assert result.child.table.name == "viewers_apc_contents"
    assert_records(
        result.child.records,
        [
            (
                0,
                "my_very_own_content_id",
                "my_app_id",
                N,
                *(928.0, 192.0, 0.0, 0.0, 192.0, 0.0, 0.0, "{}"),
            ),
            (
                0,
                "another_content_id",
                "my_app_id",
                "A campaign id",
                *(925.0, 925.0, 0.0, 0.0, 925.0, 0.0, 0.0, "{}"),
            ),
            (
                1,
                "my_very_own_content_id",
                "my_app_id",
                N,
                *(15.0, 542.0, 0.0, 542.0, 0.0, 0.0, 0.0, "{}"),
            ),
        ],
    )
    assert result.counts_by_scope() == {38918: 2}


# --- the rules ------------------------------------------------------------------------


def test_placeholder_rows_keep_their_nulls() -> None:
    result = normalize("ots", "1d", PLACEHOLDER_OTS)
    assert_records(
        result.rows.records,
        [
            (1234, "1d", ts("2016-04-29 00:00:00"), 504, 86400.0, 156, "{}"),
            (1234, "1d", ts("2016-04-30 00:00:00"), N, N, N, "{}"),
        ],
    )


def test_missing_metric_keys_are_stored_as_null() -> None:
    row = {"location_id": 1, "period_start": "2018-01-29 02:00:00"}
    result = normalize("viewers", "1h", [row])
    assert result.rows.records == [(1, "1h", ts("2018-01-29 02:00:00"), N, N, N, N, N, N, "{}")]


def test_unknown_keys_land_in_extra_as_a_sorted_json_object() -> None:
    row = {**OTS[0], "zeta": [1, 2], "status": "active", "alpha": {"nested": None}}
    (record,) = normalize("ots", "1h", [row]).rows.records
    assert record[-1] == '{"alpha":{"nested":null},"status":"active","zeta":[1,2]}'
    assert record[:-1] == (1467, "1h", ts("2018-01-29 00:00:00"), 4, 3600.0, 3)


def test_an_ots_rows_own_status_key_goes_to_extra() -> None:
    rows = [{**row, "status": "ok"} for row in OTS]
    records = normalize("ots", "1h", rows).rows.records
    assert [json.loads(str(record[-1])) for record in records] == [{"status": "ok"}] * 5


def test_keys_named_like_our_own_columns_are_vendor_keys_and_go_to_extra() -> None:
    row = {**OTS[0], "time_resolution": "1d", "extra": {"x": 1}}
    (record,) = normalize("ots", "1h", [row]).rows.records
    assert record[1] == "1h"
    assert json.loads(str(record[-1])) == {"time_resolution": "1d", "extra": {"x": 1}}


def test_out_of_range_enumerations_are_kept_as_delivered() -> None:
    row = {**FINEST_VIEWERS_PRO[0], "gender": 7, "age": -1, "glasses": 99}
    (record,) = normalize("viewers", FINEST, [row]).rows.records
    assert record[2:5] == (7, -1, 99)


@pytest.mark.parametrize(
    "text", ["2018-01-29T02:00:27", "2018-01-29 02:00:27", "2018-01-29T02:00:27.000"]
)
def test_both_timestamp_formats_give_the_same_naive_wall_clock(text: str) -> None:
    row = {"location_id": 1, "period_start": text}
    (record,) = normalize("footfall", FINEST, [row]).rows.records
    assert record[1] == datetime(2018, 1, 29, 2, 0, 27)
    assert record[-1] == "{}"


@pytest.mark.parametrize("text", ["2018-01-29T02:00:00+01:00", "2018-01-29T02:00:00Z"])
def test_timestamp_with_an_offset_keeps_the_wall_clock_and_the_raw_string(text: str) -> None:
    row = {"location_id": 1, "period_start": text}
    (record,) = normalize("footfall", FINEST, [row]).rows.records
    assert isinstance(record[1], datetime)
    assert record[1] == datetime(2018, 1, 29, 2, 0, 0)
    assert record[1].tzinfo is None
    assert json.loads(str(record[-1])) == {"period_start_raw": text}


def test_viewers_apc_start_time_with_an_offset_is_kept_as_period_start_raw() -> None:
    row = {**VIEWERS_APC[1], "start_time": "2018-01-14T09:21:54+02:00"}
    (record,) = normalize("viewers_apc", FINEST, [row]).rows.records
    assert record[1] == datetime(2018, 1, 14, 9, 21, 54)
    assert json.loads(str(record[-1])) == {"period_start_raw": "2018-01-14T09:21:54+02:00"}


def test_integral_float_in_an_integer_column_is_stored_as_an_int() -> None:
    row = {**OTS[0], "watcher_count": 3.0, "location_id": 1467.0}
    (record,) = normalize("ots", "1h", [row]).rows.records
    assert typed([record])[0][0] == (int, 1467)
    assert typed([record])[0][5] == (int, 3)


def test_int_in_a_double_column_is_stored_as_a_float() -> None:
    (record,) = normalize("ots", "1h", [OTS[0]]).rows.records
    assert type(record[4]) is float


def test_numeric_content_id_is_stored_as_its_decimal_string() -> None:
    row = {**PROOF_OF_PLAY_BY_LOCATION[0], "content_id": 42}
    (record,) = normalize("proof_of_play_by_location", "1h", [row]).rows.records
    assert record[3] == "42"


def test_time_resolution_column_is_filled_from_the_request() -> None:
    records = normalize("viewers", "15m", AGGREGATED_VIEWERS).rows.records
    assert {record[1] for record in records} == {"15m"}


def test_empty_export_gives_no_records() -> None:
    result = normalize("viewers_apc", FINEST, [])
    assert result.rows.records == []
    assert result.child is not None and result.child.records == []
    assert result.counts_by_scope() == {}


@pytest.mark.parametrize("contents", [None, [], "absent"])
def test_viewers_apc_row_without_contents_has_no_child_rows(contents: object) -> None:
    row = dict(VIEWERS_APC[0])
    if contents == "absent":
        del row["contents"]
    else:
        row["contents"] = contents
    result = normalize("viewers_apc", FINEST, [row])
    assert len(result.rows.records) == 1
    assert result.child is not None and result.child.records == []
    assert result.rows.records[0][-1] == "{}"


def test_unknown_key_of_a_content_lands_in_the_child_extra() -> None:
    row = {**VIEWERS_APC[1], "contents": [{**VIEWERS_APC[1]["contents"][0], "slot": 3}]}
    result = normalize("viewers_apc", FINEST, [VIEWERS_APC[0], row])
    assert result.child is not None
    assert [record[0] for record in result.child.records] == [0, 0, 1]
    assert result.child.records[2][-1] == '{"slot":3}'


def test_counts_by_scope_counts_rows_per_location_or_site() -> None:
    rows = [
        {**OTS[0], "location_id": 1},
        {**OTS[1], "location_id": 2},
        {**OTS[2], "location_id": 1},
    ]
    assert normalize("ots", "1h", rows).counts_by_scope() == {1: 2, 2: 1}
    by_site = normalize("proof_of_play_by_site", "1h", PROOF_OF_PLAY_BY_SITE)
    assert by_site.counts_by_scope() == {178: 3}


def test_resolution_the_data_type_does_not_offer_raises_value_error() -> None:
    with pytest.raises(ValueError, match="allowed: 1h"):
        normalize("im", "1d", IM)


# --- bad payloads ---------------------------------------------------------------------


def _with(row: Row, **changes: object) -> Row:
    """The row with keys changed; a value of `...` removes the key."""
    changed = {**row, **changes}
    return {key: value for key, value in changed.items() if value is not ...}


BAD_ROWS: list[tuple[str, str, Row, str]] = [
    ("viewers", "1h", _with(AGGREGATED_VIEWERS[0], watcher_count="abc"),
     "row 1: key 'watcher_count': expected an integer, got 'abc'"),
    ("viewers", "1h", _with(AGGREGATED_VIEWERS[0], watcher_count=2.5),
     "row 1: key 'watcher_count': expected an integer, got 2.5"),
    ("viewers", FINEST, _with(FINEST_VIEWERS_PRO[0], gender=True),
     "row 1: key 'gender': expected an integer, got True"),
    ("viewers", FINEST, _with(FINEST_VIEWERS_PRO[0], dwell_time_in_tenths_of_sec="12"),
     "row 1: key 'dwell_time_in_tenths_of_sec': expected a number, got '12'"),
    ("viewers", FINEST, _with(FINEST_VIEWERS_PRO[0], happy=False),
     "row 1: key 'happy': expected a number, got False"),
    ("viewers", "1h", _with(AGGREGATED_VIEWERS[0], location_id=...),
     "row 1: key 'location_id': is missing"),
    ("viewers", "1h", _with(AGGREGATED_VIEWERS[0], location_id=None),
     "row 1: key 'location_id': is null"),
    ("viewers", "1h", _with(AGGREGATED_VIEWERS[0], location_id="4636"),
     "row 1: key 'location_id': expected an integer, got '4636'"),
    ("viewers", "1h", _with(AGGREGATED_VIEWERS[0], period_start=...),
     "row 1: key 'period_start': is missing"),
    ("viewers", "1h", _with(AGGREGATED_VIEWERS[0], period_start="yesterday"),
     "row 1: key 'period_start': expected a timestamp such as '2018-01-29 02:00:00', "
     "got 'yesterday'"),
    ("viewers", "1h", _with(AGGREGATED_VIEWERS[0], period_start=1517191200),
     "row 1: key 'period_start': expected a timestamp string, got 1517191200"),
    ("viewers_apc", FINEST, _with(VIEWERS_APC[1], start_time=...),
     "row 1: key 'start_time': is missing"),
    ("gate", "1h", _with(GATE[0], gate_id=...),
     "row 1: key 'gate_id': is missing"),
    ("proof_of_play_by_location", "1h", _with(PROOF_OF_PLAY_BY_LOCATION[0], content_id=None),
     "row 1: key 'content_id': is null"),
    ("proof_of_play_by_location", "1h", _with(PROOF_OF_PLAY_BY_LOCATION[0], content_id=1.5),
     "row 1: key 'content_id': expected a string, got 1.5"),
    ("proof_of_play_by_location", "1h", _with(PROOF_OF_PLAY_BY_LOCATION[0], content_id="a\x00b"),
     "row 1: key 'content_id': holds a NUL character, which PostgreSQL cannot store"),
    ("proof_of_play_by_site", "1h", _with(PROOF_OF_PLAY_BY_SITE[0], site_id=...),
     "row 1: key 'site_id': is missing"),
    ("vehicles", FINEST, _with(FINEST_VEHICLES[0], color=2**40),
     "row 1: key 'color': 1099511627776 is out of range for integer"),
    ("vehicles", FINEST, _with(FINEST_VEHICLES[0], location_id=2**70),
     "row 1: key 'location_id': 1180591620717411303424 is out of range for bigint"),
    ("vehicles", FINEST, _with(FINEST_VEHICLES[0], vehicle_presence_time=10**400),
     "row 1: key 'vehicle_presence_time': 1000000000000000000000000000000000000000000000000000000"
     "00... is out of range for double precision"),
    ("ots", "1h", _with(OTS[0], duration=[3600]),
     "row 1: key 'duration': expected a number, got [3600]"),
    ("ots", "1h", _with(OTS[0], note="a\x00"),
     "row 1: key 'note': holds a NUL character, which PostgreSQL cannot store"),
    ("ots", "1h", _with(OTS[0], score=math.nan),
     "row 1: key 'score': not storable as JSON: Out of range float values are not JSON"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "resolution", "bad_row", "message"),
    BAD_ROWS,
    ids=[f"{i}-{case[3].split(':')[1].strip()}" for i, case in enumerate(BAD_ROWS)],
)
def test_bad_value_raises_bad_payload_naming_the_row_and_key(
    name: str, resolution: str, bad_row: Row, message: str
) -> None:
    table = table_for(get_data_type(name), resolution)
    first = {  # a good row before the bad one, so that the row index means something
        "viewers_apc": VIEWERS_APC[0],
        "viewers_finest": FINEST_VIEWERS_PRO[1],
        "viewers": AGGREGATED_VIEWERS[1],
        "gate": GATE[1],
        "proof_of_play_by_location": PROOF_OF_PLAY_BY_LOCATION[1],
        "proof_of_play_by_site": PROOF_OF_PLAY_BY_SITE[1],
        "vehicles_finest": FINEST_VEHICLES[1],
        "ots": OTS[1],
    }[table.name]
    with pytest.raises(BadPayload) as caught:
        normalize(name, resolution, [first, bad_row])
    assert str(caught.value).startswith(message)


def test_location_id_in_a_site_table_is_kept_in_extra() -> None:
    row = _with(PROOF_OF_PLAY_BY_SITE[0], location_id=5)
    (record,) = normalize("proof_of_play_by_site", "1h", [row]).rows.records
    assert record[-1] == '{"location_id":5}'


@pytest.mark.parametrize("row", [["location_id", 1], "row", 7, None])
def test_row_that_is_not_an_object_raises_bad_payload_naming_the_row(row: object) -> None:
    with pytest.raises(BadPayload, match=r"^row 1: expected an object, got "):
        normalize("ots", "1h", [OTS[0], row])


@pytest.mark.parametrize("data", [None, {"rows": []}, "[]", 3])
def test_data_that_is_not_a_list_raises_bad_payload(data: object) -> None:
    with pytest.raises(BadPayload, match="expected a list of rows"):
        normalize("ots", "1h", data)


def test_contents_that_are_not_a_list_raise_bad_payload() -> None:
    row = {**VIEWERS_APC[1], "contents": {"content_id": "x"}}
    with pytest.raises(BadPayload, match=r"^row 1: key 'contents': expected a list, got \{"):
        normalize("viewers_apc", FINEST, [VIEWERS_APC[0], row])


def test_bad_content_raises_bad_payload_naming_the_row_item_and_key() -> None:
    contents = [VIEWERS_APC[1]["contents"][0], {"dwell_time_in_milliseconds": "x"}]
    row = {**VIEWERS_APC[1], "contents": contents}
    with pytest.raises(BadPayload) as caught:
        normalize("viewers_apc", FINEST, [VIEWERS_APC[0], row])
    assert str(caught.value) == (
        "row 1: key 'contents', item 1: key 'dwell_time_in_milliseconds': "
        "expected a number, got 'x' (location 38918, day 2018-01-14)"
    )


def test_content_that_is_not_an_object_raises_bad_payload() -> None:
    row = {**VIEWERS_APC[1], "contents": ["my_very_own_content_id"]}
    with pytest.raises(BadPayload, match=r"^row 0: key 'contents', item 0: expected an object"):
        normalize("viewers_apc", FINEST, [row])


def test_bad_payload_names_the_key() -> None:
    with pytest.raises(BadPayload) as caught:
        normalize("ots", "1h", [_with(OTS[0], ots_count="x")])
    assert "key 'ots_count'" in str(caught.value)


# --- properties -----------------------------------------------------------------------

PROPERTY_SETTINGS = settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# every table once: (data type, resolution)
TABLE_CASES = [
    (dt.name, resolution)
    for dt in REGISTRY
    for resolution in sorted({FINEST, "1h"} & dt.resolutions)
]

_SAFE_TEXT = st.text(
    alphabet=st.characters(exclude_characters="\x00", exclude_categories=["Cs"]),
    max_size=8,
)
_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | _SAFE_TEXT,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(_SAFE_TEXT, children, max_size=3)
    ),
    max_leaves=6,
)


def _timestamps() -> st.SearchStrategy[str]:
    return st.builds(
        lambda moment, sep: moment.isoformat(sep=sep, timespec="seconds"),
        st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1)),
        st.sampled_from(["T", " "]),
    )


def _documented_values(column: Column) -> st.SearchStrategy[object]:
    """Values of the documented type for a column (or null, where it may be null)."""
    strategy: st.SearchStrategy[object] = {
        "bigint": st.integers(-(2**63), 2**63 - 1),
        "integer": st.integers(-(2**31), 2**31 - 1),
        "double precision": st.floats(allow_nan=False, allow_infinity=False)
        | st.integers(-(2**53), 2**53),
        "text": _SAFE_TEXT,
        "timestamp": _timestamps(),
    }[column.pg_type]
    return strategy if not column.nullable else st.none() | strategy


def _rows(table: TableSpec, max_size: int = 4) -> st.SearchStrategy[list[Row]]:
    """Rows of the documented shape, nullable keys sometimes left out, unknown keys added."""
    payload = [column for column in table.columns if column.fill is Fill.payload]
    required = {c.source: _documented_values(c) for c in payload if not c.nullable}
    optional = {c.source: _documented_values(c) for c in payload if c.nullable}
    if table.child is not None and table.child_source is not None:
        optional[table.child_source] = st.none() | _rows(table.child, max_size=3)
    documented = st.fixed_dictionaries(required, optional=optional)
    unknown = st.dictionaries(
        _SAFE_TEXT.filter(lambda key: key not in table.documented_keys), _JSON_VALUES, max_size=2
    )
    row = st.builds(lambda known, more: {**more, **known}, documented, unknown)
    return st.lists(row, max_size=max_size)


def _expected_value(column: Column, value: object) -> object:
    if value is None:
        return None
    if column.pg_type == "double precision":
        return float(value)  # type: ignore[arg-type]
    if column.pg_type == "timestamp":
        return datetime.fromisoformat(str(value))
    return value


def _check_records(
    table: TableSpec,
    rows: list[Row],
    records: list[tuple[object, ...]],
    fills: dict[Fill, str],
) -> None:
    """Every row is one record; every documented key is in its column, every other in extra."""
    assert len(records) == len(rows)
    for row, record in zip(rows, records, strict=True):
        assert len(record) == len(table.columns)
        for column, value in zip(table.columns, record, strict=True):
            if column.fill is Fill.payload:
                expected = _expected_value(column, row.get(column.source))
                assert (type(value), value) == (type(expected), expected), column.name
            elif column.fill is Fill.extra:
                unknown = {k: v for k, v in row.items() if k not in table.documented_keys}
                assert json.loads(str(value)) == unknown
            else:
                assert value == fills[column.fill]


@pytest.mark.parametrize(("name", "resolution"), TABLE_CASES)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_every_row_and_every_key_of_a_documented_payload_lands_somewhere(
    name: str, resolution: str, data: st.DataObject
) -> None:
    table = table_for(get_data_type(name), resolution)
    rows = data.draw(_rows(table))
    result = normalize(name, resolution, rows, "locations:1,2", "7", keep_account=True)
    fills = {Fill.time_resolution: resolution, Fill.scope: "locations:1,2", Fill.account: ACCOUNT}
    fills[Fill.extrapolation_amount] = "7"
    _check_records(table, rows, result.rows.records, fills)
    if table.child is None or table.child_source is None:
        assert result.child is None
        return
    assert result.child is not None
    children = [
        (parent, child)
        for parent, row in enumerate(rows)
        for child in row.get(table.child_source) or []
    ]
    assert [record[0] for record in result.child.records] == [p for p, _ in children]
    child_records = [record[1:] for record in result.child.records]
    _check_records(table.child, [child for _, child in children], child_records, fills)


_WRONG_VALUES: dict[str, st.SearchStrategy[object]] = {
    "bigint": _SAFE_TEXT | st.booleans() | st.floats().filter(lambda f: not f.is_integer()),
    "integer": _SAFE_TEXT | st.booleans() | st.integers(min_value=2**31),
    "double precision": _SAFE_TEXT | st.booleans() | st.lists(st.integers(), max_size=2),
    "text": st.booleans() | st.floats() | st.lists(_SAFE_TEXT, max_size=2),
    "timestamp": st.integers() | st.booleans() | _SAFE_TEXT.filter(lambda t: not _is_iso(t)),
}


def _is_iso(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize(("name", "resolution"), TABLE_CASES)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_a_value_of_the_wrong_type_raises_bad_payload_naming_its_row_and_key(
    name: str, resolution: str, data: st.DataObject
) -> None:
    table = table_for(get_data_type(name), resolution)
    rows = data.draw(_rows(table).filter(bool))
    index = data.draw(st.integers(0, len(rows) - 1))
    payload = [column for column in table.columns if column.fill is Fill.payload]
    column = data.draw(st.sampled_from(payload))
    rows[index] = {**rows[index], column.source: data.draw(_WRONG_VALUES[column.pg_type])}
    with pytest.raises(BadPayload) as caught:
        normalize(name, resolution, rows)
    assert str(caught.value).startswith(f"row {index}: key {column.source!r}: ")


# Values the fast path leaves to the careful one: some it accepts, some it refuses.
_ODD_VALUES: dict[str, st.SearchStrategy[object]] = {
    "bigint": st.integers(-1000, 1000).map(float) | st.just(2**64) | st.booleans(),
    "integer": st.integers(-1000, 1000).map(float) | st.just(2**31) | st.just(1.5),
    "double precision": st.booleans() | st.just(10**400) | _SAFE_TEXT,
    "text": st.integers() | st.just("a\x00") | st.floats(),
    "timestamp": st.sampled_from(["2018-01-29T00:00:00+05:00", "2018-01-29 00:00:00Z", "x"]),
}


@pytest.mark.parametrize("table", REGISTRY.tables(), ids=lambda table: table.name)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_the_fast_path_gives_the_careful_paths_record_or_leaves_the_row_to_it(
    table: TableSpec, data: st.DataObject
) -> None:
    row = data.draw(_rows(table).filter(bool))[0]
    payload = [column for column in table.columns if column.fill is Fill.payload]
    for column in data.draw(st.lists(st.sampled_from(payload), max_size=2)):
        row[column.source] = data.draw(_ODD_VALUES[column.pg_type])
    plan = vidicenter._plan(table)
    fills = {
        Fill.account: "a.example/u",
        Fill.time_resolution: "1h",
        Fill.scope: "s",
        Fill.extrapolation_amount: "",
    }
    left: tuple[object, ...] = ("left to the careful path",)
    (fast,) = plan.fast([row], lambda _index, _row: left, "a.example/u", "1h", "s", "")
    if fast is left:
        return
    careful = vidicenter._convert_carefully(row, "row 0", vidicenter._bind(plan, fills))
    assert typed([fast]) == typed([careful])
