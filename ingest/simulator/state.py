"""The live state of one simulator: config, clocks, exports, limits, faults and counters."""

from __future__ import annotations

import dataclasses
import time
from datetime import timedelta
from typing import Any

import structlog
from aiohttp import web

from ingest.simulator.clock import SimClock
from ingest.simulator.config import SimConfig, coerce_knobs
from ingest.simulator.datagen import GenOptions
from ingest.simulator.exports import ExportRegistry
from ingest.simulator.faults import FaultPlan
from ingest.simulator.limits import CallWindow, ConnectionTracker, Stats
from ingest.simulator.topology import Topology, build_topology

log = structlog.get_logger()

TOPOLOGY_KNOBS = frozenset(
    {"location_count", "site_count", "inactive_location_count", "site_moves"}
)


class SimState:
    """Everything the handlers share; tests reach it as `sim.state`."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.clock = SimClock(config.clock, config.time_scale)
        # tokens stay valid across a change of seed at run time
        self.jwt_secret = f"ingest-simulator-{config.seed}".encode()
        self.topology = _topology(config)
        self.connections = ConnectionTracker()  # requests in flight are real: never reset
        self.counters = Stats()
        self.exports = ExportRegistry()
        self.calls = CallWindow()
        self.faults = FaultPlan()
        self.data_version = 0

    def now(self) -> float:
        """Simulated seconds since start: drives builds, cache and tokens."""
        return self.clock.now()

    def rate_now(self) -> float:
        """Real seconds: drives the 60 s call window."""
        return (self.config.rate_clock or time.monotonic)()

    def creation_date(self) -> str:
        """The simulated wall clock, as VidiCenter writes `creation_date`."""
        return self.clock.wall_datetime().strftime("%Y-%m-%d %H:%M:%S")

    def last_upload(self, location_id: int) -> str:
        """When an active location last uploaded, as VidiCenter writes
        `last_upload_timestamp`: the simulated wall clock (UTC) less `upload_lag_s`, or 30
        days back for a location that stopped uploading."""
        lag = self.config.upload_lag_s
        if location_id in self.config.stopped_location_ids:
            lag = 30 * 86400.0
        when = self.clock.wall_datetime() - timedelta(seconds=lag)
        return when.strftime("%Y-%m-%d %H:%M:%S")

    def gen_options(self) -> GenOptions:
        """The data settings a build starting now is made with."""
        c = self.config
        return GenOptions(
            seed=c.seed,
            version=self.data_version,
            finest_rows_per_hour=c.finest_rows_per_hour,
            placeholder_share=c.placeholder_share,
            extra_keys=c.extra_keys,
            bad_enums=c.bad_enums,
            inclusive_end=c.inclusive_end,
            poison=c.poison,
        )

    def stats(self) -> dict[str, Any]:
        """The counters, as `GET /_sim/stats` answers them."""
        return self.counters.as_dict() | {
            "exports_running": len(self.exports.running(self.now())),
            "data_version": self.data_version,
        }

    def reset(self) -> None:
        """Forget exports, counters, recorded calls and faults drawn; data version back to 0."""
        self.counters = Stats()
        self.exports = ExportRegistry()
        self.calls.clear()
        self.faults.reset()
        self.data_version = 0
        log.info("simulator.reset")

    def late_uploads(self) -> int:
        """Late uploads arrive: new builds see changed values, cached exports keep theirs."""
        self.data_version += 1
        log.info("simulator.late_uploads", data_version=self.data_version)
        return self.data_version

    def configure(self, **knobs: Any) -> None:
        """Change knobs at run time (ValueError for an unknown knob or a bad value)."""
        config = dataclasses.replace(self.config, **coerce_knobs(knobs))
        self.config = config
        if "time_scale" in knobs:
            self.clock.set_time_scale(config.time_scale)
        if TOPOLOGY_KNOBS & set(knobs):
            self.topology = _topology(config)
        log.info("simulator.configured", knobs=sorted(knobs))

    def advance(self, seconds: float) -> None:
        """Jump simulated time forward (builds end, caches and tokens expire)."""
        self.clock.advance(seconds)


def _topology(config: SimConfig) -> Topology:
    return build_topology(
        config.location_count,
        config.site_count,
        config.inactive_location_count,
        moves=config.moved_locations,
    )


STATE = web.AppKey("simulator_state", SimState)
