"""The asynchronous export lifecycle: identity, builds, cache, failures and the running cap.

An export is identified by its query string's parameters minus the flags
(`force_rebuild`, `status_only`), in any order. Its first request starts a build that
runs for `build_seconds` of simulated time whether or not anyone polls; it then ends
`finished` or, for a deterministic share of builds, `failed`. A finished or failed build
is kept `cache_seconds` after its end; a failed one keeps answering `failed` until a
`force_rebuild` or the end of the cache. Rows are generated when the export is first read.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import urlencode

from ingest.simulator import aggregates, finest
from ingest.simulator.config import SimConfig
from ingest.simulator.datagen import FINEST, ExportSpec, GenOptions, Row, estimate_rows, key_unit

FLAGS = frozenset({"force_rebuild", "status_only"})
FAIL_REASONS = (
    "An internal error occurred while building the export.",
    "The export timed out, please try again later.",
)


class ExportState(StrEnum):
    started = "started"  # this very request started the build
    in_progress = "in_progress"  # the build is running
    finished = "finished"  # built; the data is in the answer
    failed = "failed"  # the build ended in error; fail_reason says why


class ExportCapReached(Exception):
    """Too many exports are running at once."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(self.__doc__)
        self.retry_after = retry_after  # simulated seconds until a running build ends


@dataclass
class Build:
    """One build of an export; a rebuild replaces it."""

    number: int
    started_at: float  # simulated seconds
    ends_at: float
    creation_date: str
    options: GenOptions
    fail_reason: str | None
    body: bytes | bytearray | None = None  # the finished answer, rendered on first read
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def state(self, now: float) -> ExportState:
        """State of the build at simulated time `now` (never `started`: that is an event)."""
        if now < self.ends_at:
            return ExportState.in_progress
        return ExportState.failed if self.fail_reason else ExportState.finished


@dataclass
class Export:
    """An export and its current build."""

    key: str
    spec: ExportSpec
    build: Build


def export_key(params: Iterable[tuple[str, str]]) -> str:
    """The export's identity: its parameters minus the flags, sorted."""
    return urlencode(sorted((k, v) for k, v in params if k not in FLAGS))


def generate_rows(spec: ExportSpec, opts: GenOptions) -> list[Row]:
    """Every row of the export, with the unknown keys when they are switched on (pure)."""
    if spec.resolution == FINEST:
        rows = finest.finest_rows(spec, opts)
    else:
        rows = aggregates.aggregated_rows(spec, opts)
    _add_extra_keys(rows, spec, opts)
    if opts.poison:
        _poison(rows, opts.poison)
    return rows


def _add_extra_keys(rows: list[Row], spec: ExportSpec, opts: GenOptions) -> None:
    if opts.extra_keys:
        extra: Row = {"new_metric": 1}
        if spec.data_type == "ots":
            extra["status"] = "active"  # OTS rows' own location status (not the export's state)
        for row in rows:
            row.update(extra)


_IDS = frozenset({"location_id", "site_id", "gate_id"})


def _poison(rows: list[Row], target: str) -> None:
    """Give the first row of one location and day a metric of the wrong type."""
    location, _, day = target.partition(":")
    for row in rows:
        when = str(row.get("period_start", row.get("start_time", "")))
        if str(row.get("location_id")) == location and when.startswith(day):
            key = next(k for k, v in row.items() if k not in _IDS and isinstance(v, int | float))
            row[key] = "poisoned"
            return


def render_finished(export: Export, build: Build) -> bytes | bytearray:
    """The `finished` answer with its data, as JSON bytes (slow for big exports). Raw rows
    are encoded an hour at a time, so that a million of them never exist at once."""
    spec, opts = export.spec, build.options
    if spec.resolution != FINEST or opts.poison:
        rows = generate_rows(spec, opts)
        answer = {"state": "finished", "data": rows, "creation_date": build.creation_date}
        return json.dumps(answer).encode()
    body = bytearray(b'{"state": "finished", "data": [')
    separator = b""
    for rows in finest.finest_row_chunks(spec, opts):
        if rows:
            _add_extra_keys(rows, spec, opts)
            body += separator + json.dumps(rows)[1:-1].encode()
            separator = b", "
    body += b'], "creation_date": ' + json.dumps(build.creation_date).encode() + b"}"
    return body


class ExportRegistry:
    """Every export of the simulated account, keyed by identity."""

    def __init__(self) -> None:
        self._exports: dict[str, Export] = {}
        self._build_numbers: dict[str, int] = {}

    def running(self, now: float) -> list[Export]:
        """Exports whose build has not yet ended, polled or not."""
        return [e for e in self._exports.values() if now < e.build.ends_at]

    def request(
        self,
        key: str,
        spec: ExportSpec,
        *,
        force: bool,
        now: float,
        creation_date: str,
        options: GenOptions,
        config: SimConfig,
    ) -> tuple[ExportState, Export]:
        """Poll the export, or start a build of it; ExportCapReached if none may start.

        A build starts on the first request, after the cache ran out, and on every
        `force_rebuild`. A rebuild of an export that is still running replaces its build,
        so that build does not count against the cap.
        """
        current = self._exports.get(key)
        if current is not None and not force and now < current.build.ends_at + config.cache_seconds:
            return current.build.state(now), current
        others = [e for e in self.running(now) if e.key != key]
        if len(others) >= config.max_exports:
            raise ExportCapReached(min(e.build.ends_at for e in others) - now)
        number = self._build_numbers.get(key, 0) + 1
        self._build_numbers[key] = number
        rows = estimate_rows(spec, options)
        build = Build(
            number=number,
            started_at=now,
            ends_at=now + config.build_seconds + config.build_seconds_per_million_rows * rows / 1e6,
            creation_date=creation_date,
            options=options,
            fail_reason=_fail_reason(key, number, spec, options, config),
        )
        export = Export(key, spec, build)
        self._exports = {
            k: e for k, e in self._exports.items() if now < e.build.ends_at + config.cache_seconds
        }
        self._exports[key] = export
        return ExportState.started, export


def _fail_reason(
    key: str, number: int, spec: ExportSpec, options: GenOptions, config: SimConfig
) -> str | None:
    """Why this build will fail, or None: too many rows, else a seeded share of builds."""
    rows = estimate_rows(spec, options)
    limit = config.max_finest_rows if spec.resolution == FINEST else config.max_aggregated_rows
    if rows > limit:
        return f"The export is too large ({rows} rows, at most {limit} allowed)."
    draw = key_unit(config.seed, "fail", key, number)
    if draw < config.fail_share:
        return FAIL_REASONS[int(draw * 1000) % len(FAIL_REASONS)]
    return None


async def finished_body(export: Export, build: Build) -> bytes | bytearray:
    """The build's finished answer, rendered once, off the event loop."""
    async with build.lock:
        if build.body is None:
            build.body = await asyncio.to_thread(render_finished, export, build)
        return build.body
