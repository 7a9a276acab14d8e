"""The simulator's knobs, settable from code, from the command line and at `/_sim/config`."""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8089
NEXT_PAGE_STYLES = ("alternate", "url", "path")


class AngusStream(TypedDict):
    """One Angus stream the token endpoint accepts."""

    username: str
    client_id: str
    access_token: str


def _default_streams() -> list[AngusStream]:
    return [
        {"username": "demo@example.com", "client_id": "stream-1", "access_token": "demo-access-1"},
        {"username": "demo@example.com", "client_id": "stream-2", "access_token": "demo-access-2"},
    ]


def _help(text: str, *, cli: bool = True) -> dict[str, Any]:
    """A knob's field metadata: its help; `cli=False` keeps it out of the CLI and /_sim/config."""
    return {"help": text, "cli": cli}


@dataclass
class SimConfig:
    """Every knob of the simulator; defaults give a small, fault-free, realistic vendor."""

    # --- credentials ----------------------------------------------------------------------
    vidicenter_username: str = field(
        default="demo", metadata=_help("VidiCenter user accepted by Basic auth")
    )
    vidicenter_token: str = field(
        default="demo-token", metadata=_help("VidiCenter API token accepted by Basic auth")
    )
    angus_streams: list[AngusStream] = field(
        default_factory=_default_streams,
        metadata=_help("Angus streams, a JSON list of {username, client_id, access_token}"),
    )
    # --- data -----------------------------------------------------------------------------
    seed: int = field(default=42, metadata=_help("seed of every generated value and of the faults"))
    location_count: int = field(default=6, metadata=_help("active locations (ids from 1001)"))
    site_count: int = field(default=2, metadata=_help("sites (ids from 501)"))
    inactive_location_count: int = field(
        default=1, metadata=_help("inactive locations, after the active ones")
    )
    placeholder_share: float = field(
        default=0.1, metadata=_help("share of aggregated periods without data")
    )
    finest_rows_per_hour: int = field(
        default=12, metadata=_help("finest events per location per hour")
    )
    extra_keys: bool = field(
        default=False, metadata=_help("add unknown keys to rows (new_metric; status on OTS rows)")
    )
    bad_enums: bool = field(
        default=False, metadata=_help("put out-of-range enum values in some finest rows")
    )
    inclusive_end: bool = field(
        default=False, metadata=_help("include the period starting exactly at `end`")
    )
    upload_lag_s: float = field(
        default=0.0,
        metadata=_help(
            "seconds the active locations' last_upload_timestamp lags the simulated clock"
        ),
    )
    stopped_locations: str = field(
        default="",
        metadata=_help("comma-separated active locations that stopped uploading 30 days ago"),
    )
    site_moves: str = field(
        default="",
        metadata=_help(
            "comma-separated LOCATION:SITE pairs: locations moved to another site (the site's"
            " exports, listings and sites= follow)"
        ),
    )
    poison: str = field(
        default="",
        metadata=_help("LOCATION_ID:YYYY-MM-DD whose first row gets a value of the wrong type"),
    )
    # --- export lifecycle -----------------------------------------------------------------
    build_seconds: float = field(
        default=2.0, metadata=_help("simulated seconds an export takes to build")
    )
    build_seconds_per_million_rows: float = field(
        default=0.0,
        metadata=_help("more simulated build seconds per million rows of the export"),
    )
    cache_seconds: float = field(
        default=86400.0, metadata=_help("simulated seconds a built export stays cached")
    )
    time_scale: float = field(default=1.0, metadata=_help("simulated seconds per real second"))
    fail_share: float = field(default=0.0, metadata=_help("share of export builds that end failed"))
    max_finest_rows: int = field(
        default=3_000_000, metadata=_help("row limit of one finest export (else failed)")
    )
    max_aggregated_rows: int = field(
        default=20_000_000, metadata=_help("row limit of one aggregated export")
    )
    # --- published limits -----------------------------------------------------------------
    max_exports: int = field(default=3, metadata=_help("exports running at once before a 429"))
    calls_per_minute: int = field(
        default=50, metadata=_help("VidiCenter calls per user per 60 s before a 429")
    )
    max_connections: int = field(
        default=2, metadata=_help("simultaneous VidiCenter requests per IP before a 429")
    )
    max_request_line: int = field(
        default=8190, metadata=_help("longest request line in bytes; a longer one gets a 414")
    )
    # --- Angus ----------------------------------------------------------------------------
    token_lifetime_s: int = field(
        default=18000, metadata=_help("lifetime of Angus JWTs, in simulated seconds")
    )
    page_size: int = field(default=24, metadata=_help("Angus buckets per page"))
    next_page_style: str = field(
        default="alternate",
        metadata=_help("Angus next_page: alternate (odd pages URL, even pages path), url, path"),
    )
    # --- faults ---------------------------------------------------------------------------
    error_share: float = field(default=0.0, metadata=_help("share of calls answered 500/502/503"))
    slow_share: float = field(
        default=0.0, metadata=_help("share of calls answered after slow_seconds")
    )
    slow_seconds: float = field(
        default=0.0, metadata=_help("delay of slow answers, in real seconds")
    )
    malformed_share: float = field(
        default=0.0, metadata=_help("share of finished answers whose body is not JSON")
    )
    drop_share: float = field(
        default=0.0, metadata=_help("share of calls whose connection is dropped unanswered")
    )
    # --- clocks (code only) ---------------------------------------------------------------
    clock: Callable[[], float] | None = field(
        default=None, metadata=_help("simulated clock in seconds (no time_scale then)", cli=False)
    )
    rate_clock: Callable[[], float] | None = field(
        default=None, metadata=_help("real clock of the 60 s window (time.monotonic)", cli=False)
    )

    def __post_init__(self) -> None:
        for names, ok, expected in _RULES:
            for name in names:
                _check(ok(getattr(self, name)), name, expected)
        _check(self.time_scale > 0, "time_scale", "a number > 0")
        _check(
            self.next_page_style in NEXT_PAGE_STYLES, "next_page_style", "|".join(NEXT_PAGE_STYLES)
        )
        _check(_valid_streams(self.angus_streams), "angus_streams", "a list of stream objects")
        stopped = [p.strip() for p in self.stopped_locations.split(",") if p.strip()]
        _check(all(p.isdigit() for p in stopped), "stopped_locations", "comma-separated ids")
        moves = [p.strip().partition(":") for p in self.site_moves.split(",") if p.strip()]
        _check(
            all(a.isdigit() and sep and b.isdigit() for a, sep, b in moves),
            "site_moves",
            "comma-separated LOCATION:SITE pairs",
        )

    @property
    def moved_locations(self) -> dict[int, int]:
        """The locations moved to another site: location id -> site id."""
        pairs = [p.strip().partition(":") for p in self.site_moves.split(",") if p.strip()]
        return {int(a): int(b) for a, _, b in pairs}

    @property
    def stopped_location_ids(self) -> frozenset[int]:
        """The locations that stopped uploading."""
        return frozenset(int(p) for p in self.stopped_locations.split(",") if p.strip())


_SHARES = ("placeholder_share", "fail_share", "error_share", "slow_share", "malformed_share")
_RULES: tuple[tuple[tuple[str, ...], Callable[[Any], bool], str], ...] = (
    ((*_SHARES, "drop_share"), lambda v: 0.0 <= v <= 1.0, "a share between 0 and 1"),
    (
        (
            "build_seconds",
            "build_seconds_per_million_rows",
            "cache_seconds",
            "slow_seconds",
            "upload_lag_s",
        ),
        lambda v: v >= 0,
        "a number >= 0",
    ),
    (("inactive_location_count", "finest_rows_per_hour"), lambda v: v >= 0, "an integer >= 0"),
    (
        ("location_count", "site_count", "max_exports", "calls_per_minute", "max_connections"),
        lambda v: v >= 1,
        "an integer >= 1",
    ),
    (("token_lifetime_s", "page_size", "max_request_line"), lambda v: v >= 1, "an integer >= 1"),
)


def _check(ok: bool, name: str, expected: str) -> None:
    if not ok:
        raise ValueError(f"simulator knob {name} must be {expected}")


def _valid_streams(value: object) -> bool:
    keys = set(AngusStream.__annotations__)
    return isinstance(value, list) and all(
        isinstance(s, dict) and set(s) == keys and all(isinstance(v, str) for v in s.values())
        for s in value
    )


def knob_fields() -> list[dataclasses.Field[Any]]:
    """The knobs settable from the command line and from `/_sim/config`."""
    return [f for f in dataclasses.fields(SimConfig) if f.metadata.get("cli", True)]


def coerce_knobs(overrides: Mapping[str, object]) -> dict[str, Any]:
    """Check knob overrides (from JSON or code) against the knobs' types; ValueError if bad."""
    known = {f.name for f in knob_fields()}
    defaults = SimConfig()
    out: dict[str, Any] = {}
    for name, value in overrides.items():
        if name not in known:
            raise ValueError(f"unknown simulator knob {name!r}")
        default = getattr(defaults, name)
        if isinstance(value, bool) != isinstance(default, bool):
            ok = False
        elif isinstance(default, float):
            ok = isinstance(value, int | float)
            value = float(value) if isinstance(value, int | float) else value
        elif isinstance(default, int | str):
            ok = isinstance(value, type(default))
        else:
            ok = _valid_streams(value)
        if not ok:
            raise ValueError(f"simulator knob {name} must be of type {type(default).__name__}")
        out[name] = value
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --host, --port and one option per knob (`seed` → `--seed`) to `parser`."""
    parser.add_argument("--host", default=DEFAULT_HOST, help="interface to listen on")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (0: any free one)")
    defaults = SimConfig()
    for f in knob_fields():
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        help_text = str(f.metadata["help"])
        if isinstance(default, bool):
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=default, help=help_text
            )
        elif isinstance(default, list):
            parser.add_argument(
                flag, type=_streams_arg, default=default, metavar="JSON", help=help_text
            )
        elif f.name == "next_page_style":
            parser.add_argument(flag, choices=NEXT_PAGE_STYLES, default=default, help=help_text)
        else:
            parser.add_argument(
                flag, type=type(default), default=default, help=f"{help_text} (default {default})"
            )


def _streams_arg(text: str) -> list[AngusStream]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from exc
    if not _valid_streams(value):
        raise argparse.ArgumentTypeError(
            'expected [{"username": ..., "client_id": ..., "access_token": ...}, ...]'
        )
    streams: list[AngusStream] = value
    return streams


def config_from_args(args: argparse.Namespace) -> SimConfig:
    """Build the SimConfig from options added by `add_arguments` (missing ones keep defaults)."""
    given = {f.name: getattr(args, f.name) for f in knob_fields() if hasattr(args, f.name)}
    return SimConfig(**given)
