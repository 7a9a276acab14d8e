"""A faithful fake of VidiCenter and Angus.ai on one port, for tests, `ingest demo` and trials."""

from ingest.simulator.app import RunningSimulator, create_app, run_simulator, serve
from ingest.simulator.clock import ManualClock
from ingest.simulator.config import AngusStream, SimConfig, add_arguments, config_from_args
from ingest.simulator.state import STATE, SimState

__all__ = [
    "STATE",
    "AngusStream",
    "ManualClock",
    "RunningSimulator",
    "SimConfig",
    "SimState",
    "add_arguments",
    "config_from_args",
    "create_app",
    "run_simulator",
    "serve",
]
