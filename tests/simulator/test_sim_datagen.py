"""The pure parts: periods, finest density, tokens."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import pytest

from ingest.simulator.datagen import ExportSpec, GenOptions, periods
from ingest.simulator.exports import Build, Export, generate_rows, render_finished
from ingest.simulator.tokens import TokenError, decode_token, encode_token
from ingest.simulator.topology import build_topology

OPTIONS = GenOptions(
    seed=42,
    version=0,
    finest_rows_per_hour=12,
    placeholder_share=0.1,
    extra_keys=False,
    bad_enums=False,
    inclusive_end=False,
)


def starts(resolution: str, start: str, end: str, inclusive: bool = False) -> list[str]:
    found = periods(
        resolution, datetime.fromisoformat(start), datetime.fromisoformat(end), inclusive
    )
    return [p.strftime("%Y-%m-%d %H:%M") for p, _ in found]


def test_sub_daily_periods_align_on_their_boundaries() -> None:
    assert starts("15m", "2024-03-04T10:07:00", "2024-03-04T10:50:00") == [
        "2024-03-04 10:00",
        "2024-03-04 10:15",
        "2024-03-04 10:30",
        "2024-03-04 10:45",
    ]
    assert starts("1h", "2018-01-29T02:00:00", "2018-01-29T04:59:59") == [
        "2018-01-29 02:00",
        "2018-01-29 03:00",
        "2018-01-29 04:00",
    ]


def test_inclusive_end_adds_the_period_starting_at_end() -> None:
    # the docs' aggregated footfall + vehicles example: 09:00 to 10:00 at 30m gives 3 rows
    assert starts("30m", "2021-11-01T09:00:00", "2021-11-01T10:00:00", inclusive=True) == [
        "2021-11-01 09:00",
        "2021-11-01 09:30",
        "2021-11-01 10:00",
    ]


def test_long_periods_start_at_the_start_date_or_month() -> None:
    assert starts("1d", "2024-03-04T06:00:00", "2024-03-06T00:00:00") == [
        "2024-03-04 00:00",
        "2024-03-05 00:00",
    ]
    assert starts("7d", "2024-03-04T00:00:00", "2024-03-20T00:00:00") == [
        "2024-03-04 00:00",
        "2024-03-11 00:00",
        "2024-03-18 00:00",
    ]
    assert starts("30d", "2024-01-15T00:00:00", "2024-03-01T00:00:00") == [
        "2024-01-15 00:00",
        "2024-02-14 00:00",
    ]
    months = periods("1M", datetime(2024, 1, 15), datetime(2024, 4, 1))
    assert [(p.strftime("%Y-%m-%d"), s // 86400) for p, s in months] == [
        ("2024-01-01", 31),
        ("2024-02-01", 29),
        ("2024-03-01", 31),
    ]


def test_one_location_day_at_benchmark_density_has_the_expected_rows() -> None:
    location = build_topology(1, 1, 0).locations[0]
    spec = ExportSpec("viewers", "finest", datetime(2024, 3, 4), datetime(2024, 3, 5), (location,))
    options = dataclasses.replace(OPTIONS, finest_rows_per_hour=8400)
    rows = generate_rows(spec, options)
    assert len(rows) == 24 * 8400
    assert rows == sorted(rows, key=lambda r: r["period_start"])
    build = Build(1, 0.0, 0.0, "2024-03-05 00:00:00", options, None)
    assert render_finished(Export("k", spec, build), build).startswith(b'{"state": "finished"')


def test_token_round_trips_and_refuses_tampering_and_expiry() -> None:
    token = encode_token({"client_id": "c", "exp": 100}, b"secret")
    assert decode_token(token, b"secret", now=99)["client_id"] == "c"
    with pytest.raises(TokenError, match="expired"):
        decode_token(token, b"secret", now=100)
    with pytest.raises(TokenError):
        decode_token(token, b"other", now=0)
    with pytest.raises(TokenError):
        decode_token(token + "x", b"secret", now=0)
