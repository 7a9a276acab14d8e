"""The VidiCenter data types: their tables, columns, keys, resolutions and scope.

Adding a data type is one `DataType(...)` entry in `REGISTRY` (plus its tables in a
migration). Everything else (the normalizer, the loader, the command line) reads from here.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from types import MappingProxyType
from typing import Final

SCHEMA: Final = "vidicenter"

# The vendor's time resolutions, in increasing order (the order error messages list them in).
RESOLUTION_ORDER: Final = ("finest", "5m", "10m", "15m", "30m", "1h", "1d", "7d", "30d", "1M")
FINEST: Final = "finest"
AGGREGATES: Final = frozenset(RESOLUTION_ORDER[1:])

PG_TYPES: Final = frozenset({"bigint", "integer", "double precision", "text", "timestamp", "jsonb"})


class ScopeKind(StrEnum):
    """What a row is attributed to, which decides how jobs are cut."""

    location = "location"  # rows carry location_id: one job per location per day
    site = "site"  # rows carry site_id: one job per site per day
    extrapolated = "extrapolated"  # rows carry no scope id: one job per day for the whole scope


class Fill(StrEnum):
    """Where the normalizer takes a column's value from."""

    payload = "payload"  # the vendor's key `Column.source` of the row
    time_resolution = "time_resolution"  # the request's time_resolution
    scope = "scope"  # the request's scope, e.g. 'locations:1,2,3'
    extrapolation_amount = "extrapolation_amount"  # the request's amount; '' when left empty
    extra = "extra"  # the row's keys the table has no column for, as a JSON object


@dataclass(frozen=True)
class Column:
    """One stored column; NULL-able unless it is part of a natural key or filled by us."""

    name: str
    pg_type: str  # 'bigint' | 'integer' | 'double precision' | 'text' | 'timestamp' | 'jsonb'
    nullable: bool = True
    fill: Fill = Fill.payload
    vendor_key: str | None = None  # the vendor's key when it is not `name` (start_time)

    def __post_init__(self) -> None:
        if self.pg_type not in PG_TYPES:
            raise ValueError(f"column {self.name!r}: unknown type {self.pg_type!r}")

    @property
    def source(self) -> str:
        """The vendor's JSON key this column is read from."""
        return self.vendor_key or self.name


@dataclass(frozen=True)
class TableSpec:
    """A table of schema `vidicenter`, with its columns in COPY order."""

    name: str
    # The columns the normalizer fills, in COPY order; never ingested_at nor surrogate ids.
    columns: tuple[Column, ...]
    # Natural key for upserts (aggregated tables); None for finest tables (slice-replaced).
    key: tuple[str, ...] | None
    # Finest tables: a (slice_column, day) slice is deleted and re-inserted as a whole.
    slice_column: str | None
    child: TableSpec | None = None
    child_source: str | None = None  # the parent row's key holding the child rows
    id_column: str | None = None  # parent tables: surrogate id, taken by the loader in bulk
    id_sequence: str | None = None  # ... from this sequence, with nextval()
    parent_column: str | None = None  # child tables: the parent's id, filled by the loader

    def __post_init__(self) -> None:
        names = self.column_names
        if len(set(names)) != len(names):
            raise ValueError(f"table {self.name!r}: duplicate column names")
        if not self.columns or self.columns[-1].fill is not Fill.extra:
            raise ValueError(f"table {self.name!r}: the last column must be 'extra'")
        for name in (*(self.key or ()), *filter(None, [self.slice_column])):
            if name not in names:
                raise ValueError(f"table {self.name!r}: key column {name!r} is not a column")
        if (self.child is None) != (self.child_source is None):
            raise ValueError(f"table {self.name!r}: child and child_source go together")

    @property
    def qualified_name(self) -> str:
        return f"{SCHEMA}.{self.name}"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    @property
    def constraint_name(self) -> str | None:
        """The UNIQUE constraint on the natural key, as the migration names it."""
        return f"{self.name}_natural_key" if self.key else None

    @property
    def scope_column(self) -> str | None:
        """The column rows are attributed to jobs by: location_id, site_id, or None."""
        names = self.column_names
        return next((name for name in ("location_id", "site_id") if name in names), None)

    @property
    def documented_keys(self) -> frozenset[str]:
        """Every vendor key the table takes (any other key of a row goes to `extra`)."""
        keys = {c.source for c in self.columns if c.fill is Fill.payload}
        return frozenset(keys | ({self.child_source} if self.child_source else set()))


@dataclass(frozen=True)
class DataType:
    """A VidiCenter `data_type`: where its rows go and which requests it accepts."""

    name: str  # canonical API name
    aliases: tuple[str, ...]  # former or alternative API names
    scope_kind: ScopeKind
    resolutions: frozenset[str]
    aggregated: TableSpec | None
    finest: TableSpec | None
    options: frozenset[str]  # request options it accepts
    default_resolution: str
    required_options: frozenset[str] = frozenset()  # options a request must carry
    aggregate_only_options: frozenset[str] = frozenset()  # refused with `finest`

    def __post_init__(self) -> None:
        if not self.resolutions <= set(RESOLUTION_ORDER):
            raise ValueError(f"data type {self.name!r}: unknown resolutions")
        if (FINEST in self.resolutions) != (self.finest is not None):
            raise ValueError(f"data type {self.name!r}: finest table and resolution disagree")
        if bool(self.resolutions & AGGREGATES) != (self.aggregated is not None):
            raise ValueError(f"data type {self.name!r}: aggregated table and resolutions disagree")
        if self.default_resolution not in self.resolutions:
            raise ValueError(f"data type {self.name!r}: default resolution not offered")
        if not (self.required_options | self.aggregate_only_options) <= self.options:
            raise ValueError(f"data type {self.name!r}: options out of step")

    @property
    def tables(self) -> tuple[TableSpec, ...]:
        """Its tables, child tables included."""
        found = [t for t in (self.aggregated, self.finest) if t is not None]
        return tuple(found + [t.child for t in found if t.child is not None])


# --- building blocks ------------------------------------------------------------------

_LOCATION = Column("location_id", "bigint", nullable=False)
_SITE = Column("site_id", "bigint", nullable=False)
_PERIOD = Column("period_start", "timestamp", nullable=False)
_RESOLUTION = Column("time_resolution", "text", nullable=False, fill=Fill.time_resolution)
_SCOPE = Column("scope", "text", nullable=False, fill=Fill.scope)
_AMOUNT = Column("extrapolation_amount", "text", nullable=False, fill=Fill.extrapolation_amount)
_EXTRA = Column("extra", "jsonb", nullable=False, fill=Fill.extra)


def _typed(pg_type: str, names: str) -> tuple[Column, ...]:
    return tuple(Column(name, pg_type) for name in names.split())


def _enums(names: str) -> tuple[Column, ...]:
    """Enumerations: stored as delivered, also outside the documented values."""
    return _typed("integer", names)


def _counts(names: str) -> tuple[Column, ...]:
    return _typed("bigint", names)


def _reals(names: str) -> tuple[Column, ...]:
    """Anything that is, or may one day be, fractional: ratios, impressions, times."""
    return _typed("double precision", names)


def _aggregated(name: str, scope: Column, *columns: Column, key: Iterable[str] = ()) -> TableSpec:
    return TableSpec(
        name,
        (scope, _RESOLUTION, _PERIOD, *columns, _EXTRA),
        key=(scope.name, "time_resolution", "period_start", *key),
        slice_column=None,
    )


def _extrapolated(name: str, *columns: Column) -> TableSpec:
    return TableSpec(
        name,
        (_SCOPE, _AMOUNT, _RESOLUTION, _PERIOD, *columns, _EXTRA),
        key=("scope", "extrapolation_amount", "time_resolution", "period_start"),
        slice_column=None,
    )


def _finest(name: str, *columns: Column, period: Column = _PERIOD) -> TableSpec:
    return TableSpec(
        name, (_LOCATION, period, *columns, _EXTRA), key=None, slice_column="location_id"
    )


# A viewer event (finest viewers and viewers_apc). age_value is double precision: an
# estimated age is not promised to be whole.
_VIEWER_EVENT = (
    *_enums("gender age glasses mustache beard"),
    *_reals("age_value dwell_time_in_tenths_of_sec attention_time_in_tenths_of_sec"),
    *_reals("very_happy happy neutral unhappy very_unhappy"),
)
_VEHICLE_EVENT = (
    *_enums("type color"),
    *_reals("vehicle_presence_time vehicle_impressions impressions_per_vehicle"),
)
_PROOF_OF_PLAY = (
    Column("content_id", "text", nullable=False),
    *_reals("content_duration duration impressions"),
    *_counts("play_count"),
    *_reals("impressions_per_play"),
    *_counts("watchers watchers_2sec"),
    *_reals("total_dwell_time_in_tenths_of_sec total_attention_time_in_tenths_of_sec"),
)
_APC_CONTENTS = TableSpec(
    "viewers_apc_contents",
    (
        *_typed("text", "content_id app_id campaign_id"),
        *_reals("dwell_time_in_milliseconds attention_time_in_milliseconds"),
        *_reals("very_happy_time happy_time neutral_time unhappy_time very_unhappy_time"),
        _EXTRA,
    ),
    key=None,
    slice_column=None,
    parent_column="viewers_apc_id",
)

_ALL = frozenset(RESOLUTION_ORDER)
_NO_OPTIONS: frozenset[str] = frozenset()


def _register(*data_types: DataType) -> Mapping[str, DataType]:
    names = [name for dt in data_types for name in (dt.name, *dt.aliases)]
    if len(set(names)) != len(names):
        raise ValueError("a data type name or alias is used twice")
    return MappingProxyType({dt.name: dt for dt in data_types})


REGISTRY: Final[Mapping[str, DataType]] = _register(
    DataType(
        "viewers",
        aliases=(),
        scope_kind=ScopeKind.location,
        resolutions=_ALL,
        # plain and group_by_demographics rows share the table: gender/age are NULL in plain rows
        aggregated=_aggregated(
            "viewers",
            _LOCATION,
            *_enums("gender age"),
            *_counts("watcher_count"),
            *_reals("dwell_time_in_tenths_of_sec attention_time_in_tenths_of_sec"),
            *_reals("conversion_ratio"),
            key=("gender", "age"),
        ),
        finest=_finest("viewers_finest", *_VIEWER_EVENT),
        options=frozenset({"group_by_demographics"}),
        default_resolution="1h",
        aggregate_only_options=frozenset({"group_by_demographics"}),
    ),
    DataType(
        "viewers_apc",
        aliases=(),
        scope_kind=ScopeKind.location,
        resolutions=frozenset({FINEST}),
        aggregated=None,
        finest=replace(
            _finest(
                "viewers_apc",
                *_VIEWER_EVENT,
                period=Column("period_start", "timestamp", nullable=False, vendor_key="start_time"),
            ),
            child=_APC_CONTENTS,
            child_source="contents",
            id_column="id",
            id_sequence=f"{SCHEMA}.viewers_apc_id_seq",
        ),
        options=frozenset({"content_ids"}),
        default_resolution=FINEST,
    ),
    DataType(
        "ots",
        aliases=(),
        scope_kind=ScopeKind.location,
        resolutions=AGGREGATES,
        aggregated=_aggregated(
            "ots", _LOCATION, *_counts("ots_count"), *_reals("duration"), *_counts("watcher_count")
        ),
        finest=None,
        options=_NO_OPTIONS,
        default_resolution="1h",
    ),
    DataType(
        "gate",
        aliases=(),
        scope_kind=ScopeKind.location,
        resolutions=AGGREGATES,
        aggregated=_aggregated(
            "gate",
            _LOCATION,
            Column("gate_id", "bigint", nullable=False),
            *_counts("in_count out_count"),
            *_reals("duration"),
            key=("gate_id",),
        ),
        finest=None,
        options=_NO_OPTIONS,
        default_resolution="1h",
    ),
    DataType(
        "proof_of_play_by_location",
        aliases=(),
        scope_kind=ScopeKind.location,
        resolutions=AGGREGATES,
        aggregated=_aggregated(
            "proof_of_play_by_location", _LOCATION, *_PROOF_OF_PLAY, key=("content_id",)
        ),
        finest=None,
        options=frozenset({"content_ids"}),
        default_resolution="1h",
    ),
    DataType(
        "proof_of_play_by_site",
        aliases=(),
        scope_kind=ScopeKind.site,
        resolutions=AGGREGATES,
        aggregated=_aggregated(
            "proof_of_play_by_site", _SITE, *_PROOF_OF_PLAY, key=("content_id",)
        ),
        finest=None,
        options=frozenset({"content_ids"}),
        default_resolution="1h",
    ),
    # Extrapolated figures are scaled or averaged: even the counts may be fractional.
    DataType(
        "extrapolated_watchers",
        aliases=(),
        scope_kind=ScopeKind.extrapolated,
        resolutions=AGGREGATES,
        aggregated=_extrapolated(
            "extrapolated_watchers",
            *_reals("watcher_count dwell_time_in_tenths_of_sec attention_time_in_tenths_of_sec"),
        ),
        finest=None,
        options=frozenset({"extrapolation_amount"}),
        default_resolution="1h",
        required_options=frozenset({"extrapolation_amount"}),
    ),
    DataType(
        "extrapolated_ots",
        aliases=(),
        scope_kind=ScopeKind.extrapolated,
        resolutions=AGGREGATES,
        aggregated=_extrapolated("extrapolated_ots", *_reals("ots_count duration watcher_count")),
        finest=None,
        options=frozenset({"extrapolation_amount"}),
        default_resolution="1h",
        required_options=frozenset({"extrapolation_amount"}),
    ),
    DataType(
        "vehicles",
        aliases=(),
        scope_kind=ScopeKind.location,
        resolutions=_ALL,
        aggregated=_aggregated(
            "vehicles",
            _LOCATION,
            *_counts("vehicle_count"),
            *_reals("vehicle_presence_time vehicle_impressions impressions_per_vehicle"),
        ),
        finest=_finest("vehicles_finest", *_VEHICLE_EVENT),
        options=_NO_OPTIONS,
        default_resolution="1h",
    ),
    DataType(
        "footfall",
        aliases=("persons",),
        scope_kind=ScopeKind.location,
        resolutions=_ALL,
        aggregated=_aggregated(
            "footfall", _LOCATION, *_reals("footfall_impressions footfall_presence_time")
        ),
        finest=_finest("footfall_finest", *_reals("footfall_presence_time")),
        options=_NO_OPTIONS,
        default_resolution="1h",
    ),
    DataType(
        "vehicles_footfall",
        aliases=("vehicles_persons",),
        scope_kind=ScopeKind.location,
        resolutions=_ALL,
        aggregated=_aggregated(
            "vehicles_footfall",
            _LOCATION,
            *_counts("vehicle_count"),
            *_reals("vehicle_impressions vehicle_presence_time impressions_per_vehicle"),
            *_reals("footfall_impressions footfall_presence_time"),
        ),
        finest=_finest(
            "vehicles_footfall_finest", *_VEHICLE_EVENT, *_reals("footfall_presence_time")
        ),
        options=_NO_OPTIONS,
        default_resolution="1h",
    ),
    DataType(
        "im",
        aliases=(),
        scope_kind=ScopeKind.location,
        resolutions=frozenset({"1h"}),
        aggregated=_aggregated(
            "im",
            _LOCATION,
            *_counts("vehicle_count"),
            *_reals("vehicle_total_presence_time vehicle_impressions impressions_per_vehicle"),
            *_reals("footfall_impressions footfall_total_dwell_time"),
            *_reals("im_footfall im_vehicle im"),
            *_typed("text", "backup_value"),
            *_reals("analysis_window"),
        ),
        finest=None,
        options=_NO_OPTIONS,
        default_resolution="1h",
    ),
)

_BY_NAME: Final[Mapping[str, DataType]] = MappingProxyType(
    {name: dt for dt in REGISTRY.values() for name in (dt.name, *dt.aliases)}
)


def _listed(resolutions: Collection[str]) -> str:
    return ", ".join(r for r in RESOLUTION_ORDER if r in resolutions)


def get_data_type(name: str) -> DataType:
    """The data type of a name or alias; KeyError listing the valid names otherwise."""
    try:
        return _BY_NAME[name]
    except KeyError:
        aliases = ", ".join(f"{a} (= {dt.name})" for dt in REGISTRY.values() for a in dt.aliases)
        raise KeyError(
            f"unknown VidiCenter data type {name!r}; valid: {', '.join(REGISTRY)}; "
            f"also accepted: {aliases}"
        ) from None


def table_for(dt: DataType, resolution: str) -> TableSpec:
    """The table a data type's rows go to at a resolution; ValueError if it is not offered."""
    table = dt.finest if resolution == FINEST else dt.aggregated
    if resolution not in dt.resolutions or table is None:
        raise ValueError(
            f"data type {dt.name!r} does not offer time_resolution {resolution!r}; "
            f"allowed: {_listed(dt.resolutions)}"
        )
    return table


def check_options(dt: DataType, resolution: str, options: Collection[str]) -> None:
    """ValueError naming the problem if a request's options do not suit the data type."""
    table_for(dt, resolution)
    accepted = dt.options - dt.aggregate_only_options if resolution == FINEST else dt.options
    if unknown := sorted(set(options) - accepted):
        raise ValueError(
            f"data type {dt.name!r} at {resolution!r} does not accept {', '.join(unknown)}; "
            f"accepted: {', '.join(sorted(accepted)) or 'none'}"
        )
    if missing := sorted(dt.required_options - set(options)):
        raise ValueError(f"data type {dt.name!r} requires {', '.join(missing)}")


def all_tables() -> list[TableSpec]:
    """Every vidicenter table, child tables included, each once."""
    return [table for dt in REGISTRY.values() for table in dt.tables]
