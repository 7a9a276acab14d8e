"""Pure: packing jobs into VidiCenter exports, and splitting a failed export in two.

Jobs are kept per (scope, day); an export carries a block of them: some scopes of one
group (vendor account, data type, resolution, parameters) times consecutive days (or
buckets, for `7d`, `30d`, `1M`). A block is bounded by

- the vendor's row caps (3 million raw rows, 20 million aggregated), with a margin, and by
  the rows the worker takes in one export (`INGEST_VIDICENTER_MAX_ROWS_PER_EXPORT`). Rows are
  estimated per scope and job: from the resolution and the demographic split, or, for raw
  and proof-of-play types and gates, from the most rows seen for that scope, with a
  cautious default until one is seen;
- a request line that HTTP servers accept (`INGEST_VIDICENTER_MAX_REQUEST_LINE`), counted
  as it will be sent: a site whose every active location is in the block is named
  (`sites=ID`) instead of its locations being listed (see `Sites`);
- the scopes one export may hold (`INGEST_VIDICENTER_LOCATIONS_PER_EXPORT`).

The ledger claims with `first_cut` and `full_block` (the SQL around them is in
`ingest.ledger`); `plan_exports` runs the same two steps over a whole set of jobs, for
`ingest backfill --plan` and the property tests.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any, Final

from ingest.buckets import COARSE, PERIOD_SECONDS, bucket_end, bucket_index
from ingest.datatypes import FINEST, DataType
from ingest.domain import Job, JobSpec, Scope, ScopeKind, Vendor, export_sources

FINEST_CAP: Final = 3_000_000  # the vendor's rows in one raw export
AGGREGATED_CAP: Final = 20_000_000  # ... in one aggregated export
CAP_MARGIN: Final = 0.8  # of the vendor's caps: the estimates may be short
SEEN_MARGIN: Final = 1.25  # over the most rows seen for a scope: days differ
DEFAULT_FINEST_ROWS: Final = 20_000  # raw rows of a location-day never seen yet (cautious)
DEFAULT_CONTENTS: Final = 50  # contents played per period, proof of play never seen yet
DEFAULT_GATES: Final = 4  # gates of a location never seen yet
DEMOGRAPHICS: Final = 15  # group_by_demographics rows per period: 3 genders x 5 age groups
MAX_DAYS: Final = 366  # days (or buckets) in one export


def params_key(params: Mapping[str, Any]) -> str:
    """A job's request parameters as canonical JSON: equal parameters, equal text."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True, order=True)
class Group:
    """What jobs must share to ride on one export. Extend it here (and in the ledger's
    `_SAME_GROUP`) when jobs gain a new dimension; the account is one: two accounts never
    share an export."""

    vendor: Vendor
    data_type: str
    resolution: str
    params: str  # params_key of the job's parameters
    force: bool
    kind: ScopeKind
    account: str = ""


def group_of(job: Job | JobSpec, *, force: bool | None = None) -> Group:
    """The group of a claimed job, or of a spec about to be enqueued with `force`."""
    forced = job.force if isinstance(job, Job) else bool(force)
    return Group(
        job.vendor,
        job.data_type,
        job.time_resolution,
        params_key(job.params),
        forced,
        job.scope.kind,
        job.account,
    )


@dataclass(frozen=True)
class Limits:
    """The bounds of one export."""

    max_rows: int = 1_000_000  # rows the worker takes in one export
    max_line: int = 4096  # bytes of the request line
    max_scopes: int = 1000  # locations (or sites) in one export, listed or named by site
    max_days: int = MAX_DAYS

    def row_cap(self, resolution: str) -> int:
        vendor = FINEST_CAP if resolution == FINEST else AGGREGATED_CAP
        return max(1, min(self.max_rows, int(vendor * CAP_MARGIN)))


@dataclass(frozen=True)
class Sites:
    """The account's sites as VidiCenter last listed its locations: the active locations of
    each site, and the site of every location, active or not.

    An export of location-scoped jobs names a site (`sites=ID`) instead of listing its
    locations when it holds every active location of that site, at least two of them, and
    no inactive one: its request line is shorter, and the vendor sends the rows of the
    site's locations. An empty `Sites` names none: every location is listed.
    """

    active: Mapping[str, frozenset[str]] = field(default_factory=dict)
    site_of: Mapping[str, str] = field(default_factory=dict)

    def named(self, locations: Collection[str]) -> list[str]:
        """The sites an export holding exactly these locations names, in id order."""
        held: dict[str, set[str]] = {}
        for loc in locations:
            site = self.site_of.get(loc)
            if site is not None:
                held.setdefault(site, set()).add(loc)
        return sorted(
            (
                site
                for site, locs in held.items()
                if len(locs) >= 2 and locs == self.active.get(site, frozenset())
            ),
            key=_id_order,
        )


NO_SITES: Final = Sites()


def _id_order(ident: str) -> tuple[int, str]:
    return (int(ident), "") if ident.isdigit() else (-1, ident)


@dataclass(frozen=True)
class Block:
    """One export: `scopes` (in query order) times the consecutive jobs' days `days`;
    `sites` is the account's site membership the export's query is written with."""

    group: Group
    scopes: tuple[Scope, ...]
    days: tuple[date, ...]
    sites: Sites = field(default=NO_SITES, compare=False, repr=False)

    @property
    def sources(self) -> dict[str, list[str]]:
        """The query's scope parameters: the locations listed, and the sites named instead
        of their locations (location-scoped jobs only); the scopes' ids otherwise."""
        if self.group.kind is not ScopeKind.location or not self.sites.active:
            return export_sources(self.scopes)
        named = self.sites.named([s.id for s in self.scopes])
        covered = {loc for site in named for loc in self.sites.active[site]}
        out: dict[str, list[str]] = {}
        if listed := [s.id for s in self.scopes if s.id not in covered]:
            out["locations"] = listed
        if named:
            out["sites"] = named
        return out

    @property
    def start(self) -> date:
        return self.days[0]

    @property
    def end(self) -> date:
        """The day after the block's last day (exclusive), a bucket's end for 7d/30d/1M."""
        return bucket_end(self.group.resolution, self.days[-1])

    @property
    def jobs(self) -> int:
        return len(self.scopes) * len(self.days)


# The request line of a block's export, as the vendor client would send it.
LineLength = Callable[[Block], int]
# Rows one scope's job is expected to bring.
Estimate = Callable[[Scope], int]


def periods_per_job(resolution: str) -> int:
    """Aggregated periods a scope has in one job: 24 at 1h, 1 at 1d and coarser."""
    if resolution in COARSE:
        return 1
    return 86400 // PERIOD_SECONDS.get(resolution, 86400)


def observed(dt: DataType, resolution: str) -> bool:
    """Whether a scope's rows are estimated from the rows seen (raw rows, contents, gates)."""
    return resolution == FINEST or dt.name.startswith("proof_of_play") or dt.name == "gate"


def estimator(
    dt: DataType, resolution: str, params: Mapping[str, Any], seen: Mapping[str, int]
) -> Estimate:
    """Rows per job of a scope: `seen` holds the most rows a job of each scope id loaded."""
    periods = periods_per_job(resolution)
    from_seen = observed(dt, resolution)
    if resolution == FINEST:
        default = DEFAULT_FINEST_ROWS
    elif dt.name.startswith("proof_of_play"):
        ids = [c for c in str(params.get("content_ids") or "").split(",") if c.strip()]
        default = periods * (len(ids) or DEFAULT_CONTENTS)
    elif dt.name == "gate":
        default = periods * DEFAULT_GATES
    elif params.get("group_by_demographics"):
        default = periods * DEMOGRAPHICS
    else:
        default = periods

    def estimate(scope: Scope) -> int:
        rows = seen.get(scope.id) if from_seen else None
        if rows is None:
            return default
        return max(1, math.ceil(rows * SEEN_MARGIN))

    return estimate


def _order(scope: Scope) -> tuple[int, str]:
    return _id_order(scope.id)


def _by_site(leader: Scope, sites: Sites) -> Callable[[Scope], tuple[object, ...]]:
    """The order the leader's export mates are taken in: the leader's site first, then site
    by site, then the locations of no known site; by id within each. A cut then holds
    whole sites, which it can name."""
    home = sites.site_of.get(leader.id)

    def key(scope: Scope) -> tuple[object, ...]:
        site = sites.site_of.get(scope.id)
        if site is None:
            return (2, (0, ""), _order(scope))
        return (0 if site == home else 1, _id_order(site), _order(scope))

    return key


def consecutive_run(resolution: str, first: date, days: Iterable[date]) -> int:
    """How many consecutive jobs' days from `first` are among `days`."""
    wanted = {bucket_index(resolution, d) for d in days}
    start = bucket_index(resolution, first)
    n = 0
    while start + n in wanted:
        n += 1
    return n


@dataclass(frozen=True)
class Cut:
    """The first step of a claim: which scopes go together, and at most how many days."""

    scopes: tuple[Scope, ...]
    days: int


def first_cut(
    leader: Job | JobSpec,
    group: Group,
    at_first_day: Iterable[Scope],
    leader_days: Iterable[date],
    *,
    estimate: Estimate,
    limits: Limits,
    line_length: LineLength,
    sites: Sites = NO_SITES,
) -> Cut:
    """The scopes of the leader's export and its most days, from the scopes that have a job
    on the leader's day and the leader's own days ahead.

    Of the ways to cut N scopes by D days into blocks within the bounds, the one with the
    fewest exports; blocks are balanced (500 and 500 scopes rather than 790 and 210), so
    that exports that run side by side end together. Scopes are taken site by site, and
    the request line of each cut is measured as it will be sent, its whole sites named.
    """
    res = group.resolution
    d_leader = min(limits.max_days, max(1, consecutive_run(res, leader.day, leader_days)))
    if group.kind is ScopeKind.extrapolated:
        scopes: list[Scope] = [leader.scope]
    else:
        others = sorted(
            {s for s in at_first_day if s != leader.scope}, key=_by_site(leader.scope, sites)
        )
        scopes = [leader.scope, *others]
    total = len(scopes)
    most = min(total, limits.max_scopes)
    lines: dict[int, bool] = {1: True}  # a single scope cannot be cut

    def fits(n: int) -> bool:
        """Whether the request line of the first n scopes is within the bound; lines are
        measured once each (a cut's line is not monotonic in n: a site's last location
        replaces its listed ones by the site's id)."""
        if n not in lines:
            block = Block(group, tuple(scopes[:n]), (leader.day,), sites)
            lines[n] = line_length(block) <= limits.max_line
        return lines[n]

    per_day = [0]
    for scope in scopes[:most]:
        per_day.append(per_day[-1] + estimate(scope))
    cap = limits.row_cap(res)
    best: tuple[int, int, int] | None = None  # (exports, -jobs, -n) with the days
    best_days = 1
    for k in range(math.ceil(total / most), total + 1):
        n = math.ceil(total / k)
        if n > most or not fits(n):
            continue
        days = min(d_leader, cap // max(1, per_day[n]))
        if days < 1:
            continue
        exports = math.ceil(total / n) * math.ceil(d_leader / days)
        key = (exports, -n * days, -n)
        if best is None or key < best:
            best, best_days = key, days
        if n == 1:
            break
    if best is None:  # one scope-day alone is over the cap: it goes out alone
        return Cut((leader.scope,), 1)
    n = -best[2]
    days = math.ceil(d_leader / math.ceil(d_leader / best_days))  # balanced too
    return Cut(tuple(scopes[:n]), days)


def full_block(
    leader: Job | JobSpec,
    group: Group,
    cut: Cut,
    have: Mapping[date, Iterable[Scope]],
    sites: Sites = NO_SITES,
) -> Block:
    """The block: the cut's scopes over the consecutive days from the leader's on which every
    one of them has a job to claim (`have`: scopes with a claimable job, by day)."""
    res = group.resolution
    by_index = {bucket_index(res, d): (d, set(s)) for d, s in have.items()}
    wanted = set(cut.scopes)
    start = bucket_index(res, leader.day)
    days = [leader.day]
    while len(days) < cut.days:
        found = by_index.get(start + len(days))
        if found is None or not wanted <= found[1]:
            break
        days.append(found[0])
    return Block(group, tuple(sorted(cut.scopes, key=_order)), tuple(days), sites)


def within_bounds(
    block: Block, *, estimate: Estimate, limits: Limits, line_length: LineLength
) -> list[str]:
    """The bounds the block exceeds (a single scope-day may exceed them: it cannot be cut)."""
    if block.jobs == 1:
        return []
    problems = []
    rows = sum(estimate(s) for s in block.scopes) * len(block.days)
    if rows > limits.row_cap(block.group.resolution):
        problems.append(f"{rows} rows")
    if len(block.scopes) > 1 and line_length(block) > limits.max_line:
        problems.append(f"a request line of {line_length(block)} bytes")
    if len(block.scopes) > limits.max_scopes:
        problems.append(f"{len(block.scopes)} scopes")
    if len(block.days) > limits.max_days:
        problems.append(f"{len(block.days)} days")
    return problems


def plan_exports(
    specs: Sequence[JobSpec],
    *,
    estimate_for: Callable[[Group], Estimate],
    limits: Limits,
    line_length: LineLength,
    force: bool = False,
    sites: Sites = NO_SITES,
) -> list[Block]:
    """The exports a set of jobs would go out in, claimed in order (day, then scope);
    `sites` is the account's site membership."""
    # A backfill's jobs share one parameters object: grouped by it first, the parameters'
    # canonical JSON is made once a group, not once a job (1.8 million times for a year of
    # 5,000 screens)
    by_params: dict[tuple[object, ...], list[JobSpec]] = {}
    for spec in specs:
        key = (spec.vendor, spec.data_type, spec.time_resolution, id(spec.params))
        by_params.setdefault((*key, spec.scope.kind, spec.account), []).append(spec)
    by_group: dict[Group, list[JobSpec]] = {}
    for members in by_params.values():
        by_group.setdefault(group_of(members[0], force=force), []).extend(members)
    blocks: list[Block] = []
    for group, members in sorted(by_group.items()):
        blocks += _plan_group(group, members, estimate_for(group), limits, line_length, sites)
    return blocks


@dataclass
class _Remaining:
    """The jobs of a group not packed yet, indexed both ways."""

    by_day: dict[date, set[Scope]] = field(default_factory=dict)
    by_scope: dict[Scope, set[date]] = field(default_factory=dict)

    def add(self, scope: Scope, day: date) -> None:
        self.by_day.setdefault(day, set()).add(scope)
        self.by_scope.setdefault(scope, set()).add(day)

    def take(self, block: Block) -> None:
        for day in block.days:
            self.by_day[day] -= set(block.scopes)
        for scope in block.scopes:
            self.by_scope[scope] -= set(block.days)

    def has(self, scope: Scope, day: date) -> bool:
        return scope in self.by_day.get(day, ())


def _plan_group(
    group: Group,
    specs: Sequence[JobSpec],
    estimate: Estimate,
    limits: Limits,
    line_length: LineLength,
    sites: Sites,
) -> list[Block]:
    order = sorted({(s.day, _order(s.scope), s.scope) for s in specs})
    left = _Remaining()
    for day, _, scope in order:
        left.add(scope, day)
    example = specs[0]
    blocks = []
    for day, _, scope in order:
        if not left.has(scope, day):
            continue
        leader = replace(example, scope=scope, day=day)
        cut = first_cut(
            leader,
            group,
            left.by_day[day],
            {d for d in left.by_scope[scope] if d >= day},
            estimate=estimate,
            limits=limits,
            line_length=line_length,
            sites=sites,
        )
        have = {
            d: {s for s in cut.scopes if left.has(s, d)}
            for d in sorted({d for s in cut.scopes for d in left.by_scope[s] if d >= day})
        }
        block = full_block(leader, group, cut, have, sites)
        left.take(block)
        blocks.append(block)
    return blocks


def halves(
    jobs: Sequence[Job], *, scopes_first: bool = False
) -> tuple[list[Job], list[Job]] | None:
    """A failed export's jobs cut in two: by days while it spans several, then by scopes
    (`scopes_first`: by scopes while there are several, for a request line too long);
    None for a single scope-day, which cannot be cut."""
    days = sorted({j.day for j in jobs})
    several_scopes = len({j.scope for j in jobs}) > 1
    if len(days) > 1 and not (scopes_first and several_scopes):
        first = set(days[: math.ceil(len(days) / 2)])
        return [j for j in jobs if j.day in first], [j for j in jobs if j.day not in first]
    scopes = sorted({j.scope for j in jobs}, key=_order)
    if len(scopes) > 1:
        first_scopes = set(scopes[: math.ceil(len(scopes) / 2)])
        return (
            [j for j in jobs if j.scope in first_scopes],
            [j for j in jobs if j.scope not in first_scopes],
        )
    return None


def block_of(jobs: Sequence[Job], sites: Sites = NO_SITES) -> Block:
    """The block a claimed batch of jobs forms (their scopes and days)."""
    first = jobs[0]
    return Block(
        group_of(first),
        tuple(sorted({j.scope for j in jobs}, key=_order)),
        tuple(sorted({j.day for j in jobs})),
        sites,
    )


@dataclass(frozen=True)
class Cost:
    """What a plan costs at the vendor."""

    exports: int
    calls: int  # two an export (start, then the finished answer), the fewest there can be
    minutes: float  # the calls at the configured calls a minute


def cost(blocks: Sequence[Block], *, calls_per_minute: int) -> Cost:
    calls = 2 * len(blocks)
    return Cost(len(blocks), calls, calls / calls_per_minute)
