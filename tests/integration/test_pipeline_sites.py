"""Exports that name whole sites (`sites=ID`): the claim and the query read the same
listing, the rows are split back per location, a location the vendor's site holds but no
job does is left out and counted, and one the site no longer holds is asked for again."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import asyncpg
import msgspec
from structlog.testing import capture_logs

from ingest import ledger
from ingest.config import load_settings
from ingest.domain import JobSpec, Scope, Vendor
from ingest.errors import ExportPending
from ingest.pipeline import Context, Outcome, packing, work_batch
from ingest.topology import Fleet, fleet_from
from ingest.vendors.body import ExportAnswer, from_bytes
from ingest.wiring import retry_policy

ACCOUNT = "v.example/alice"
DAY = date(2024, 3, 1)
NOW = datetime(2026, 11, 25, 10, 30, tzinfo=UTC)  # DAY is long final


class SiteVendor:
    """VidiCenter as far as the export goes: `sites` is its own membership when it builds
    (site -> locations, inactive ones included), which may differ from its listing. Each
    location has one row an hour, but `quiet` ones, which have none."""

    def __init__(self, sites: Mapping[int, list[int]], quiet: frozenset[int] = frozenset()):
        self.sites = sites
        self.quiet = quiet
        self.queries: list[str] = []
        self.pending_once = False

    async def run_export(
        self,
        query: str,
        *,
        force: bool = False,
        on_started: Callable[[], Awaitable[None]] | None = None,
        expected_rows: int = 0,
    ) -> ExportAnswer:
        self.queries.append(query)
        if on_started is not None:
            await on_started()
        if self.pending_once:
            self.pending_once = False
            raise ExportPending("still building", delay=0)
        asked = dict(parse_qsl(query))
        locations = [int(i) for i in asked.get("locations", "").split(",") if i]
        for site in asked.get("sites", "").split(","):
            locations += self.sites[int(site)] if site else []
        first = date.fromisoformat(asked["start"][:10])
        days = [
            first + timedelta(d)
            for d in range((date.fromisoformat(asked["end"][:10]) - first).days)
        ]
        rows = [
            {"location_id": loc, "period_start": f"{day} {h:02d}:00:00", "ots_count": loc}
            for loc in sorted(set(locations) - self.quiet)
            for day in days
            for h in range(24)
        ]
        return from_bytes(msgspec.json.encode({"state": "finished", "data": rows}))


class Listing:
    """The account's locations as `/api/v1/locations/` lists them; `fresh` lists `then`
    from its first fresh call on (the vendor changed meanwhile)."""

    def __init__(self, now: list[dict[str, Any]], then: list[dict[str, Any]] | None = None):
        self.now = now
        self.then = then
        self.fresh_calls = 0

    async def fleet(self, *, fresh: bool = False) -> Fleet:
        if fresh:
            self.fresh_calls += 1
            if self.then is not None:
                self.now = self.then
        return fleet_from(self.now)


def listed(sites: Mapping[int, list[int]], inactive: frozenset[int] = frozenset()) -> list[Any]:
    return [
        {"id": loc, "site_id": site, "active": loc not in inactive}
        for site, locations in sites.items()
        for loc in locations
    ]


def context(pool: asyncpg.Pool, vendor: SiteVendor, listing: Listing, **settings: Any) -> Context:
    s = load_settings(vidicenter_username="alice", vidicenter_token="t", **settings)
    return Context(
        pool=pool,
        settings=s,
        owner="test",
        policy=retry_policy(s),
        vidicenter={ACCOUNT: vendor},
        fleets={ACCOUNT: listing},
        now=lambda: NOW,
    )


async def enqueue(pool: asyncpg.Pool, locations: list[int], days: int = 1) -> None:
    specs = [
        JobSpec(Vendor.vidicenter, "ots", "1h", Scope.location(i), DAY + timedelta(d), {}, ACCOUNT)
        for i in locations
        for d in range(days)
    ]
    async with pool.acquire() as conn:
        await ledger.enqueue_jobs(conn, specs, force=False)


async def work_all(ctx: Context) -> list[Outcome]:
    """Claim and work batches as a worker does, until none is left."""
    outcomes = []
    while True:
        packed = await packing(ctx, Vendor.vidicenter)
        async with ctx.pool.acquire() as conn:
            jobs = await ledger.claim_batch(
                conn, Vendor.vidicenter, owner=ctx.owner, lease_s=60, packing=packed
            )
        if not jobs:
            return outcomes
        outcomes.append(await work_batch(ctx, jobs))


async def rows_per_location(pool: asyncpg.Pool) -> dict[int, int]:
    rows = await pool.fetch(
        "SELECT location_id, count(*) AS n FROM vidicenter.ots GROUP BY 1 ORDER BY 1"
    )
    return {r["location_id"]: r["n"] for r in rows}


async def jobs_by_location(pool: asyncpg.Pool) -> dict[str, tuple[str, int | None]]:
    rows = await pool.fetch("SELECT scope, status, rows_loaded FROM ingest.jobs ORDER BY id")
    return {r["scope"]: (r["status"], r["rows_loaded"]) for r in rows}


SITES = {501: [1, 2, 3], 502: [4, 5], 503: [6, 7]}


async def test_an_export_of_whole_sites_names_them_and_each_location_gets_its_own_rows(
    pool: asyncpg.Pool,
) -> None:
    # 8 is an inactive location of site 502: the vendor's sites=502 brings its rows
    vendor = SiteVendor(SITES | {502: [4, 5, 8]})
    listing = Listing(listed(SITES | {502: [4, 5, 8]}, inactive=frozenset({8})))
    await enqueue(pool, [1, 2, 3, 4, 5, 6])  # 7, of site 503, is not wanted
    with capture_logs() as logs:
        outcomes = await work_all(context(pool, vendor, listing))

    (query,) = vendor.queries
    asked = dict(parse_qsl(query))
    assert (asked["locations"], asked["sites"]) == ("6", "501,502")
    assert [(o.done, o.released) for o in outcomes] == [(6, 0)]
    assert await rows_per_location(pool) == {loc: 24 for loc in (1, 2, 3, 4, 5, 6)}
    assert set((await jobs_by_location(pool)).values()) == {("done", 24)}
    (stray,) = [e for e in logs if e["event"] == "export.rows_not_claimed"]
    assert (stray["rows"], stray["locations"], stray["sites"]) == (24, [8], ["501", "502"])
    assert listing.fresh_calls == 0  # every location asked for through a site had rows


async def test_a_location_moved_out_of_its_site_before_the_build_goes_out_again_on_its_own(
    pool: asyncpg.Pool,
) -> None:
    # listed when planned: 3 in site 501; when the vendor builds, 3 is in site 509 and 7
    # has moved into 501
    vendor = SiteVendor({501: [1, 2, 7], 502: [4, 5], 509: [3]})
    listing = Listing(listed(SITES), then=listed({501: [1, 2, 7], 502: [4, 5], 509: [3, 6]}))
    await enqueue(pool, [1, 2, 3, 4, 5])
    with capture_logs() as logs:
        outcomes = await work_all(context(pool, vendor, listing))

    assert [dict(parse_qsl(q)).get("sites") for q in vendor.queries] == ["501,502", None]
    assert dict(parse_qsl(vendor.queries[1]))["locations"] == "3"
    assert [(o.done, o.released) for o in outcomes] == [(4, 1), (1, 0)]
    # every location's own rows, once; 7 (no job) left out
    assert await rows_per_location(pool) == {loc: 24 for loc in (1, 2, 3, 4, 5)}
    jobs = await jobs_by_location(pool)
    assert set(jobs.values()) == {("done", 24)}
    (moved,) = [e for e in logs if e["event"] == "export.site_changed"]
    assert moved["locations"] == [3]
    assert [e["locations"] for e in logs if e["event"] == "export.rows_not_claimed"] == [[7]]
    assert listing.fresh_calls == 1
    split = await pool.fetchval("SELECT attempts FROM ingest.jobs WHERE scope = 'location:3'")
    assert split == 1  # the move was not a try of its job


async def test_a_location_of_a_named_site_without_rows_that_is_still_in_it_is_done_empty(
    pool: asyncpg.Pool,
) -> None:
    vendor = SiteVendor(SITES, quiet=frozenset({3}))  # a camera off all day
    listing = Listing(listed(SITES))
    await enqueue(pool, [1, 2, 3])
    outcomes = await work_all(context(pool, vendor, listing))

    assert len(vendor.queries) == 1 and listing.fresh_calls == 1
    assert [(o.done, o.released) for o in outcomes] == [(3, 0)]
    jobs = await jobs_by_location(pool)
    assert jobs == {
        "location:1": ("done", 24),
        "location:2": ("done", 24),
        "location:3": ("done", 0),
    }


async def test_a_resumed_export_is_sent_with_its_recorded_query_whatever_the_listing_says_now(
    pool: asyncpg.Pool,
) -> None:
    vendor = SiteVendor(SITES)
    listing = Listing(listed(SITES))
    await enqueue(pool, [1, 2, 3, 4, 5])
    vendor.pending_once = True  # the first try gives up while the vendor builds
    ctx = context(pool, vendor, listing)
    (first,) = await work_all_once(ctx)
    assert first.failed == 5
    # meanwhile a new active location 9 joins site 502: a new plan would list 4 and 5
    listing.now = listed(SITES | {502: [4, 5, 9]})
    vendor.sites = SITES | {502: [4, 5, 9]}
    await pool.execute("UPDATE ingest.jobs SET run_after = now()")
    outcomes = await work_all(ctx)

    assert vendor.queries[1] == vendor.queries[0]  # the same export, resumed
    assert dict(parse_qsl(vendor.queries[0]))["sites"] == "501,502"
    assert [o.done for o in outcomes] == [5]
    assert await rows_per_location(pool) == {loc: 24 for loc in (1, 2, 3, 4, 5)}


async def work_all_once(ctx: Context) -> list[Outcome]:
    packed = await packing(ctx, Vendor.vidicenter)
    async with ctx.pool.acquire() as conn:
        jobs = await ledger.claim_batch(
            conn, Vendor.vidicenter, owner=ctx.owner, lease_s=60, packing=packed
        )
    return [await work_batch(ctx, jobs)]


async def test_a_listing_changed_between_the_claim_and_the_query_never_sends_a_line_too_long(
    pool: asyncpg.Pool,
) -> None:
    sites = {501: list(range(1001, 1041))}
    vendor = SiteVendor(sites)
    listing = Listing(listed(sites))
    # 40 ids listed take 335 bytes, 20 take 235; site 501 named, 135
    ctx = context(pool, vendor, listing, vidicenter_max_request_line=256)
    await enqueue(pool, list(range(1001, 1041)), days=2)
    packed = await packing(ctx, Vendor.vidicenter)
    async with pool.acquire() as conn:
        jobs = await ledger.claim_batch(
            conn, Vendor.vidicenter, owner="test", lease_s=60, packing=packed
        )
    assert len(jobs) == 80
    # between the claim and the query, 1041 joins the site: 501 can no longer be named
    listing.now = listed({501: [*range(1001, 1042)]})
    outcome = await work_batch(ctx, jobs)

    assert outcome.released == 80 and vendor.queries == []
    plans = await pool.fetch(
        "SELECT export_plan, count(*) AS n, max(attempts) AS tries FROM ingest.jobs"
        " WHERE status = 'pending' GROUP BY 1"
    )
    # cut by locations, the line's cause, not by days: each half holds both days
    assert sorted(r["n"] for r in plans) == [40, 40] and {r["tries"] for r in plans} == {0}
    # each half goes out listed, within the bound
    await work_all(ctx)
    assert [len(dict(parse_qsl(q))["locations"].split(",")) for q in vendor.queries] == [20, 20]
    assert await rows_per_location(pool) == {loc: 48 for loc in range(1001, 1041)}
