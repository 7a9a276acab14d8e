"""Pure: the VidiCenter data types, their tables, columns, keys, resolutions, scope and
request options.

Adding a data type is one `DataType(...)` entry in `REGISTRY` (plus its tables in a
migration); a new request option is one `Option(...)`. Everything else (the command line,
job specs, the export query, the schedule, the demo, the normalizer and the loader) reads
them from here.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final

from ingest.domain import ScopeKind

SCHEMA: Final = "vidicenter"

# The vendor's time resolutions, in increasing order (the order error messages list them in).
RESOLUTION_ORDER: Final = ("finest", "5m", "10m", "15m", "30m", "1h", "1d", "7d", "30d", "1M")
FINEST: Final = "finest"
AGGREGATES: Final = frozenset(RESOLUTION_ORDER[1:])

PG_TYPES: Final = frozenset({"bigint", "integer", "double precision", "text", "timestamp", "jsonb"})


class Fill(StrEnum):
    """Where the normalizer takes a column's value from."""

    payload = "payload"  # the vendor's key `Column.source` of the row
    account = "account"  # the job's account (`host/user`): location ids are per account
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
    # Finest tables: an (account, slice_column, day) slice is deleted and re-inserted whole.
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
        if self.parent_column is None and "account" not in (self.key or ("account",)):
            raise ValueError(f"table {self.name!r}: the natural key must include the account")
        if self.parent_column is None and self.account_column != "account":
            raise ValueError(f"table {self.name!r}: rows must name their account (ACCOUNT_COLUMN)")

    @property
    def qualified_name(self) -> str:
        return f"{SCHEMA}.{self.name}"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    @property
    def account_column(self) -> str | None:
        """The column naming the rows' account (None for a child table: its parent has it)."""
        return next((c.name for c in self.columns if c.fill is Fill.account), None)

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


class OptionKind(StrEnum):
    """How an option is given on the command line and sent to the vendor."""

    flag = "flag"  # on or off; sent as 1 when on, left out when off
    text = "text"  # free text (a comma-separated list of ids, say), sent as given
    amount = "amount"  # a whole number, or empty; sent even when empty


@dataclass(frozen=True)
class Option:
    """A request option of some data types: its name is the job parameter's, the query
    parameter's and (with dashes) the command-line flag's."""

    name: str
    kind: OptionKind
    help: str
    default: Any = None  # what a required option's job carries when it is not given
    required: bool = False  # always part of the request, with its default when not given
    aggregate_only: bool = False  # refused with `finest`

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def parse(self, value: Any) -> Any:
        """The job parameter for a given value; ValueError when the kind refuses it."""
        if self.kind is OptionKind.flag:
            return bool(value)
        text = str(value).strip()
        if self.kind is OptionKind.amount and text and not text.isdigit():
            raise ValueError("must be a whole number (or omitted)")
        return text

    def query_value(self, value: Any) -> str | None:
        """What the export query sends for the job parameter; None leaves it out."""
        if self.kind is OptionKind.flag:
            return "1" if value else None
        if self.kind is OptionKind.text:
            return str(value) if value else None
        return "" if value is None else str(value)


GROUP_BY_DEMOGRAPHICS: Final = Option(
    "group_by_demographics",
    OptionKind.flag,
    "aggregated viewers by gender and age",
    default=False,
    aggregate_only=True,
)
CONTENT_IDS: Final = Option(
    "content_ids", OptionKind.text, "content ids for viewers_apc and proof of play"
)
# empty: the average of the sampled locations
EXTRAPOLATION_AMOUNT: Final = Option(
    "extrapolation_amount",
    OptionKind.amount,
    "locations to extrapolate to (extrapolated types)",
    default="",
    required=True,
)


@dataclass(frozen=True)
class DataType:
    """A VidiCenter `data_type`: where its rows go and which requests it accepts."""

    name: str  # canonical API name
    aliases: tuple[str, ...]  # former or alternative API names
    scope_kind: ScopeKind
    resolutions: frozenset[str]
    aggregated: TableSpec | None
    finest: TableSpec | None
    options: tuple[Option, ...]  # request options it accepts, in query order
    default_resolution: str

    def __post_init__(self) -> None:
        if not self.resolutions <= set(RESOLUTION_ORDER):
            raise ValueError(f"data type {self.name!r}: unknown resolutions")
        if (FINEST in self.resolutions) != (self.finest is not None):
            raise ValueError(f"data type {self.name!r}: finest table and resolution disagree")
        if bool(self.resolutions & AGGREGATES) != (self.aggregated is not None):
            raise ValueError(f"data type {self.name!r}: aggregated table and resolutions disagree")
        if self.default_resolution not in self.resolutions:
            raise ValueError(f"data type {self.name!r}: default resolution not offered")
        if len({o.name for o in self.options}) != len(self.options):
            raise ValueError(f"data type {self.name!r}: an option is listed twice")

    @property
    def tables(self) -> tuple[TableSpec, ...]:
        """Its tables, child tables included."""
        found = [t for t in (self.aggregated, self.finest) if t is not None]
        return tuple(found + [t.child for t in found if t.child is not None])


# --- building blocks ------------------------------------------------------------------

# every table's rows name their account: location ids are per account
ACCOUNT_COLUMN: Final = Column("account", "text", nullable=False, fill=Fill.account)
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
        (scope, _RESOLUTION, _PERIOD, *columns, ACCOUNT_COLUMN, _EXTRA),
        key=("account", scope.name, "time_resolution", "period_start", *key),
        slice_column=None,
    )


def _extrapolated(name: str, *columns: Column) -> TableSpec:
    return TableSpec(
        name,
        (_SCOPE, _AMOUNT, _RESOLUTION, _PERIOD, *columns, ACCOUNT_COLUMN, _EXTRA),
        key=("account", "scope", "extrapolation_amount", "time_resolution", "period_start"),
        slice_column=None,
    )


def _finest(name: str, *columns: Column, period: Column = _PERIOD) -> TableSpec:
    return TableSpec(
        name,
        (_LOCATION, period, *columns, ACCOUNT_COLUMN, _EXTRA),
        key=None,
        slice_column="location_id",
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
_NO_OPTIONS: tuple[Option, ...] = ()


class Registry:
    """The data types by name (aliases included); a copy with more types is one call."""

    def __init__(self, *data_types: DataType) -> None:
        names = [name for dt in data_types for name in (dt.name, *dt.aliases)]
        if len(set(names)) != len(names):
            raise ValueError("a data type name or alias is used twice")
        self._types = MappingProxyType({dt.name: dt for dt in data_types})
        self._by_name = MappingProxyType(
            {name: dt for dt in data_types for name in (dt.name, *dt.aliases)}
        )

    def __iter__(self) -> Iterator[DataType]:
        return iter(self._types.values())

    def __len__(self) -> int:
        return len(self._types)

    def __contains__(self, item: object) -> bool:
        return item in self._types.values()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._types)

    def get(self, name: str) -> DataType:
        """The data type of a name or alias; KeyError listing the valid names otherwise."""
        try:
            return self._by_name[name]
        except KeyError:
            aliases = ", ".join(f"{a} (= {dt.name})" for dt in self for a in dt.aliases)
            raise KeyError(
                f"unknown VidiCenter data type {name!r}; valid: {', '.join(self._types)}; "
                f"also accepted: {aliases}"
            ) from None

    def options(self) -> tuple[Option, ...]:
        """Every option some data type takes, each once, in registry order."""
        found: dict[str, Option] = {}
        for dt in self:
            for option in dt.options:
                if found.setdefault(option.name, option) != option:
                    raise ValueError(f"option {option.name!r} is declared twice")
        return tuple(found.values())

    def tables(self) -> list[TableSpec]:
        """Every vidicenter table, child tables included, each once."""
        return [table for dt in self for table in dt.tables]


REGISTRY: Final = Registry(
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
        options=(GROUP_BY_DEMOGRAPHICS,),
        default_resolution="1h",
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
        options=(CONTENT_IDS,),
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
        options=(CONTENT_IDS,),
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
        options=(CONTENT_IDS,),
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
        options=(EXTRAPOLATION_AMOUNT,),
        default_resolution="1h",
    ),
    DataType(
        "extrapolated_ots",
        aliases=(),
        scope_kind=ScopeKind.extrapolated,
        resolutions=AGGREGATES,
        aggregated=_extrapolated("extrapolated_ots", *_reals("ots_count duration watcher_count")),
        finest=None,
        options=(EXTRAPOLATION_AMOUNT,),
        default_resolution="1h",
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


def _listed(resolutions: Collection[str]) -> str:
    return ", ".join(r for r in RESOLUTION_ORDER if r in resolutions)


def get_data_type(name: str) -> DataType:
    """The data type of a name or alias in the built-in registry (KeyError otherwise)."""
    return REGISTRY.get(name)


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
    accepted = {o.name for o in dt.options if not (o.aggregate_only and resolution == FINEST)}
    if unknown := sorted(set(options) - accepted):
        raise ValueError(
            f"data type {dt.name!r} at {resolution!r} does not accept {', '.join(unknown)}; "
            f"accepted: {', '.join(sorted(accepted)) or 'none'}"
        )
    required = {o.name for o in dt.options if o.required}
    if missing := sorted(required - set(options)):
        raise ValueError(f"data type {dt.name!r} requires {', '.join(missing)}")


def request_params(dt: DataType, resolution: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """The job parameters of a request: the options given (None and False are not given),
    with each required option's default filled in. ValueError naming the first bad one."""
    by_name = {o.name: o for o in dt.options}
    params: dict[str, Any] = {}
    for name, value in given.items():
        if value is None or value is False:
            continue
        option = by_name.get(name)
        if option is None:  # check_options names it, with what is accepted
            params[name] = value
            continue
        params[name] = option.parse(value)
    for option in dt.options:
        if option.required and option.name not in params:
            params[option.name] = option.default
    check_options(dt, resolution, params)
    return params


def query_pairs(dt: DataType, params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The export query's option parameters for a job's parameters, in the type's order."""
    pairs = []
    for option in dt.options:
        if option.name in params:
            value = option.query_value(params[option.name])
            if value is not None:
                pairs.append((option.name, value))
    return pairs
