"""The planner: packing jobs into exports within every bound, and cutting a failed one in two."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest import planner
from ingest.buckets import bucket_index, bucket_start
from ingest.datatypes import get_data_type
from ingest.domain import Job, JobSpec, Scope, Vendor
from ingest.planner import NO_SITES, Block, Group, Limits, Sites, plan_exports

DAY = date(2024, 3, 1)
ACCOUNT = "vidicenter.example.com/alice"


def spec(location: int | str, day: date, data_type: str = "viewers", res: str = "1h") -> JobSpec:
    return JobSpec(Vendor.vidicenter, data_type, res, Scope.location(location), day, {}, ACCOUNT)


def line_length(block: Block) -> int:
    """About what the vendor client sends: a fixed part and, for each kind of source
    (`&locations=`, `&sites=`), its name and ids, comma-separated."""
    return 150 + sum(len(kind) + 2 + len(",".join(ids)) for kind, ids in block.sources.items())


def estimate_for(rows: int) -> planner.Estimate:
    return lambda scope: rows


def plan(
    specs: list[JobSpec], limits: Limits, rows: int = 24, sites: Sites = NO_SITES
) -> list[Block]:
    return plan_exports(
        specs,
        estimate_for=lambda _: estimate_for(rows),
        limits=limits,
        line_length=line_length,
        sites=sites,
    )


def fleet(locations: int, days: int, **kw: str) -> list[JobSpec]:
    return [
        spec(1001 + i, DAY + timedelta(days=d), **kw) for d in range(days) for i in range(locations)
    ]


def test_a_month_of_a_thousand_locations_goes_out_in_a_few_balanced_exports() -> None:
    blocks = plan(fleet(1000, 30), Limits(max_rows=1_000_000, max_line=4096))
    # 720,000 rows fit one export; the request line takes about 790 ids: two of 500
    assert [(len(b.scopes), len(b.days)) for b in blocks] == [(500, 30), (500, 30)]
    assert all(line_length(b) <= 4096 for b in blocks)


def test_rows_bound_the_days_of_an_export() -> None:
    blocks = plan(fleet(10, 30), Limits(max_rows=24 * 10 * 7), rows=24)
    # a week of ten locations per export, balanced over the 30 days: 5 exports of 6 days
    assert [len(b.days) for b in blocks] == [6] * 5
    assert all(len(b.scopes) == 10 for b in blocks)


def test_a_single_scope_day_over_the_cap_goes_out_alone() -> None:
    blocks = plan(fleet(3, 2), Limits(max_rows=10), rows=100)
    assert len(blocks) == 6 and all(b.jobs == 1 for b in blocks)


def test_jobs_of_different_groups_never_share_an_export() -> None:
    specs = fleet(3, 2) + fleet(3, 2, data_type="ots") + fleet(3, 2, res="1d")
    blocks = plan(specs, Limits())
    assert len(blocks) == 3
    assert {(b.group.data_type, b.group.resolution) for b in blocks} == {
        ("viewers", "1h"),
        ("ots", "1h"),
        ("viewers", "1d"),
    }


def test_days_of_an_export_are_consecutive() -> None:
    days = [DAY, DAY + timedelta(days=1), DAY + timedelta(days=5)]
    blocks = plan([spec(1, d) for d in days], Limits())
    assert [b.days for b in blocks] == [tuple(days[:2]), (days[2],)]


def test_weekly_jobs_pack_consecutive_weeks_and_end_with_the_last_week() -> None:
    mondays = [date(2024, 3, 4) + timedelta(weeks=i) for i in range(3)]
    (block,) = plan([spec(1, d, res="7d") for d in mondays], Limits())
    assert block.days == tuple(mondays)
    assert (block.start, block.end) == (date(2024, 3, 4), date(2024, 3, 25))


def test_an_extrapolated_jobs_export_carries_its_one_scope_over_many_days() -> None:
    scope = Scope.request({"locations": ["1", "2"]})
    specs = [
        JobSpec(
            Vendor.vidicenter, "extrapolated_ots", "1h", scope, DAY + timedelta(days=d), {}, ACCOUNT
        )
        for d in range(5)
    ]
    (block,) = plan(specs, Limits())
    assert block.scopes == (scope,) and len(block.days) == 5


# --- sites named instead of their locations ------------------------------------------------


def sites_in(sizes: list[int], inactive: frozenset[int] = frozenset()) -> Sites:
    """Sites from 501 holding consecutive locations from 1001, `sizes` of them each."""
    active: dict[str, set[str]] = {}
    site_of: dict[str, str] = {}
    location = 1001
    for i, size in enumerate(sizes):
        site = str(501 + i)
        for _ in range(size):
            site_of[str(location)] = site
            if location not in inactive:
                active.setdefault(site, set()).add(str(location))
            location += 1
    return Sites({k: frozenset(v) for k, v in active.items()}, site_of)


def block(locations: range, sites: Sites) -> Block:
    group = planner.group_of(spec(1, DAY))
    return Block(group, tuple(Scope.location(i) for i in locations), (DAY,), sites)


def test_an_export_holding_every_active_location_of_a_site_names_the_site() -> None:
    sites = sites_in([4, 6])
    assert block(range(1001, 1011), sites).sources == {"sites": ["501", "502"]}
    # site 502 only in part: its locations are listed
    assert block(range(1001, 1008), sites).sources == {
        "locations": ["1005", "1006", "1007"],
        "sites": ["501"],
    }
    # without a listing, every location is listed
    assert block(range(1001, 1005), NO_SITES).sources == {
        "locations": ["1001", "1002", "1003", "1004"]
    }


def test_a_site_with_an_inactive_location_in_the_export_or_a_single_location_is_listed() -> None:
    sites = sites_in([3, 1], inactive=frozenset({1003}))
    # 1003 is inactive: 1001 and 1002 are all of site 501 that is wanted
    assert block(range(1001, 1003), sites).sources == {"sites": ["501"]}
    # a job of the inactive 1003 too: whether sites=501 would bring its rows is not known
    assert block(range(1001, 1004), sites).sources == {"locations": ["1001", "1002", "1003"]}
    # site 502 has one location: nothing to gain
    assert block(range(1004, 1005), sites).sources == {"locations": ["1004"]}


def realistic_fleet(locations: int, seed: int = 7) -> Sites:
    """Sites of 5 to 20 locations."""
    rng = random.Random(seed)
    sizes = []
    while sum(sizes) < locations:
        sizes.append(min(rng.randint(5, 20), locations - sum(sizes)))
    return sites_in(sizes)


def test_a_thousand_locations_in_whole_sites_go_out_in_one_export_instead_of_two() -> None:
    sites = realistic_fleet(1000)
    limits = Limits(max_rows=1_000_000, max_line=4096)
    listed = plan(fleet(1000, 30), limits)
    named = plan(fleet(1000, 30), limits, sites=sites)
    # listed, about 790 ids fit the line: two exports of 500
    assert [(len(b.scopes), len(b.days)) for b in listed] == [(500, 30), (500, 30)]
    # named, the 82 sites take a few hundred bytes: one export of every location, the most
    # an export may hold (INGEST_VIDICENTER_LOCATIONS_PER_EXPORT)
    (whole,) = named
    assert (len(whole.scopes), len(whole.days)) == (1000, 30)
    assert whole.sources == {"sites": sorted(sites.active, key=int)}
    assert len(sites.active) == 82 and line_length(whole) < 600


def test_the_leaders_export_mates_are_taken_site_by_site() -> None:
    # ids interleave across two sites: the export of 1001 takes its site, 1003 and 1005
    sites = Sites(
        {"501": frozenset({"1001", "1003", "1005"}), "502": frozenset({"1002", "1004", "1006"})},
        {str(i): "501" if i % 2 else "502" for i in range(1001, 1007)},
    )
    blocks = plan(fleet(6, 1), Limits(max_scopes=3), sites=sites)
    assert [b.sources for b in blocks] == [{"sites": ["501"]}, {"sites": ["502"]}]


def test_a_line_too_short_for_the_listed_locations_takes_them_named_by_their_sites() -> None:
    sites = sites_in([10, 10])
    limits = Limits(max_line=200)  # 150 + about 7 ids listed, or two sites named
    assert len(plan(fleet(20, 1), limits)) == 3
    (both,) = plan(fleet(20, 1), limits, sites=sites)
    assert both.sources == {"sites": ["501", "502"]}
    assert (
        planner.within_bounds(
            both, estimate=estimate_for(24), limits=limits, line_length=line_length
        )
        == []
    )


# --- properties -----------------------------------------------------------------------------


@st.composite
def job_sets(draw: st.DrawFn) -> list[JobSpec]:
    """Jobs of a few groups, over scattered locations and days (with holes)."""
    locations = draw(st.lists(st.integers(1, 99_999), min_size=1, max_size=40, unique=True))
    days = draw(st.integers(1, 40))
    groups = draw(
        st.lists(
            st.sampled_from(
                [("viewers", "1h"), ("ots", "1h"), ("viewers", "1d"), ("viewers", "7d")]
            ),
            min_size=1,
            max_size=3,
            unique=True,
        )
    )
    specs = []
    for data_type, res in groups:
        for location in locations:
            for d in range(days):
                if draw(st.booleans()) or d < 2:
                    day = bucket_start(res, DAY + timedelta(days=d))
                    specs.append(spec(location, day, data_type, res))
    return list({(s.data_type, s.time_resolution, s.scope, s.day): s for s in specs}.values())


@st.composite
def memberships(draw: st.DrawFn, specs: list[JobSpec]) -> Sites:
    """Sites over the jobs' locations and a few without a job; some locations inactive,
    some in no site."""
    ids = sorted({s.scope.id for s in specs}, key=int)
    ids += [str(100_000 + i) for i in range(draw(st.integers(0, 5)))]
    active: dict[str, set[str]] = {}
    site_of: dict[str, str] = {}
    for location in ids:
        site = draw(st.sampled_from([None, "7", "42", "501", "502", "12345"]))
        if site is None:
            continue
        site_of[location] = site
        if draw(st.integers(0, 9)):  # one in ten inactive
            active.setdefault(site, set()).add(location)
    return Sites({k: frozenset(v) for k, v in active.items()}, site_of)


@st.composite
def job_sets_and_sites(draw: st.DrawFn) -> tuple[list[JobSpec], Sites]:
    specs = draw(job_sets())
    return specs, draw(st.one_of(st.just(NO_SITES), memberships(specs)))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    jobs=job_sets_and_sites(),
    max_rows=st.integers(1, 5_000),
    max_line=st.integers(150, 600),
    max_scopes=st.integers(1, 50),
    max_days=st.integers(1, 20),
    rows=st.integers(1, 500),
)
def test_every_job_is_in_exactly_one_export_and_no_export_exceeds_a_bound(
    jobs: tuple[list[JobSpec], Sites],
    max_rows: int,
    max_line: int,
    max_scopes: int,
    max_days: int,
    rows: int,
) -> None:
    specs, sites = jobs
    limits = Limits(max_rows=max_rows, max_line=max_line, max_scopes=max_scopes, max_days=max_days)
    blocks = plan(specs, limits, rows=rows, sites=sites)
    wanted = Counter((planner.group_of(s, force=False), s.scope, s.day) for s in specs)
    packed = Counter((b.group, scope, day) for b in blocks for scope in b.scopes for day in b.days)
    assert packed == wanted  # each job once, and no export carries a job not asked for
    for block in blocks:
        problems = planner.within_bounds(
            block, estimate=estimate_for(rows), limits=limits, line_length=line_length
        )
        assert problems == [], (block.scopes, block.days, problems)
        indexes = [bucket_index(block.group.resolution, d) for d in block.days]
        assert indexes == list(range(indexes[0], indexes[0] + len(indexes)))  # consecutive
        assert_sources_stand_for_the_block(block, sites)


def assert_sources_stand_for_the_block(block: Block, sites: Sites) -> None:
    """The query's sources stand for the block's locations exactly: a site is named only
    when every active location of it, and no inactive one, is in the block."""
    held = {s.id for s in block.scopes}
    sources = block.sources
    listed = sources.get("locations", [])
    named = sources.get("sites", [])
    assert len(listed) == len(set(listed))
    covered: set[str] = set()
    for site in named:
        members = sites.active[site]
        assert len(members) >= 2 and members <= held
        assert {loc for loc in held if sites.site_of.get(loc) == site} == members
        covered |= members
    assert covered.isdisjoint(listed) and covered | set(listed) == held


@settings(max_examples=60, deadline=None)
@given(
    locations=st.integers(1, 30),
    days=st.integers(1, 30),
    seed=st.randoms(use_true_random=False),
)
def test_a_failed_export_is_cut_in_two_by_days_first_then_by_scopes_down_to_one_job(
    locations: int, days: int, seed: object
) -> None:
    jobs = [
        Job(
            id=i,
            vendor=Vendor.vidicenter,
            data_type="viewers",
            time_resolution="1h",
            params={},
            scope=Scope.location(1001 + i % locations),
            day=DAY + timedelta(days=i // locations),
            attempts=1,
            force=False,
            export_query="q",
            export_started=True,
        )
        for i in range(locations * days)
    ]
    pending = [jobs]
    cuts = 0
    while pending:
        part = pending.pop()
        halves = planner.halves(part)
        if len(part) == 1:
            assert halves is None
            continue
        assert halves is not None
        first, second = halves
        assert sorted(j.id for j in first + second) == sorted(j.id for j in part)
        assert first and second
        part_days = {j.day for j in part}
        if len(part_days) > 1:  # days first: each half keeps every scope of its days
            assert {j.day for j in first}.isdisjoint({j.day for j in second})
        else:
            assert {j.scope for j in first}.isdisjoint({j.scope for j in second})
        pending += [first, second]
        cuts += 1
    assert cuts == locations * days - 1


def test_a_line_too_long_is_cut_by_locations_first_keeping_every_day() -> None:
    jobs = [
        Job(
            i,
            Vendor.vidicenter,
            "viewers",
            "1h",
            {},
            Scope.location(1001 + i % 4),
            DAY + timedelta(days=i // 4),
            1,
            False,
            None,
            False,
        )
        for i in range(12)
    ]
    halves = planner.halves(jobs, scopes_first=True)
    assert halves is not None
    assert [sorted({j.scope.id for j in h}) for h in halves] == [["1001", "1002"], ["1003", "1004"]]
    assert all(len({j.day for j in h}) == 3 for h in halves)
    one = [j for j in jobs if j.scope.id == "1001"]
    by_days = planner.halves(one, scopes_first=True)  # one location: by days, as ever
    assert by_days is not None and [len(h) for h in by_days] == [2, 1]


def test_an_estimate_of_raw_rows_comes_from_the_rows_seen_with_a_margin() -> None:
    estimate = planner.estimator(get_data_type("viewers"), "finest", {}, {"7": 1000})
    assert estimate(Scope.location(7)) == 1250
    assert estimate(Scope.location(8)) == planner.DEFAULT_FINEST_ROWS


@pytest.mark.parametrize(
    ("data_type", "res", "params", "rows"),
    [
        ("viewers", "1h", {}, 24),
        ("viewers", "1h", {"group_by_demographics": True}, 24 * 15),
        ("viewers", "15m", {}, 96),
        ("ots", "1d", {}, 1),
        ("viewers", "1M", {}, 1),
        ("gate", "1h", {}, 24 * planner.DEFAULT_GATES),
        ("proof_of_play_by_location", "1h", {"content_ids": "a,b"}, 48),
    ],
)
def test_an_estimate_of_aggregated_rows_comes_from_the_resolution_and_split(
    data_type: str, res: str, params: dict[str, object], rows: int
) -> None:
    estimate = planner.estimator(get_data_type(data_type), res, params, {})
    assert estimate(Scope.location(1)) == rows


def test_the_group_of_a_job_is_what_it_shares_with_its_export_mates() -> None:
    a = spec(1, DAY)
    assert planner.group_of(a) == planner.group_of(replace(a, scope=Scope.location(2)))
    assert planner.group_of(a) != planner.group_of(replace(a, params={"x": 1}))
    assert planner.group_of(a) != planner.group_of(a, force=True)
    assert isinstance(planner.group_of(a), Group)
