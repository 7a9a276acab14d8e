"""VidiCenter's topology: which locations and sites a scope stands for, and when each
location last uploaded.

The one place that reads `/api/v1/locations/`, the tag lists and a site's locations, for
`backfill` (a scope given on the command line), `run` (the scheduled locations, refreshed
on an interval), the pipeline (is a day final?) and the demo.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any, Protocol

import anyio
import structlog

from ingest.domain import Scope, ScopeKind
from ingest.errors import UsageError
from ingest.planner import Sites
from ingest.schedule import is_silent

log = structlog.get_logger(__name__)


class TopologySource(Protocol):
    async def list_locations(self) -> list[dict[str, Any]]: ...
    async def list_location_tags(self) -> list[dict[str, Any]]: ...
    async def list_site_tags(self) -> list[dict[str, Any]]: ...
    async def list_site_locations(self, site_id: str) -> list[dict[str, Any]]: ...


class LocationSource(Protocol):
    async def list_locations(self) -> list[dict[str, Any]]: ...


class FleetStore(Protocol):
    """Where processes share an account's listed locations (the database)."""

    async def load(self, account: str, max_age_s: float) -> list[dict[str, Any]] | None: ...
    async def save(self, account: str, locations: Sequence[dict[str, Any]]) -> None: ...


def _by_id(ids: set[str]) -> list[str]:
    return sorted(ids, key=int)


def is_active(location: Mapping[str, Any]) -> bool:
    """A location is active unless VidiCenter says it is not (`active` may be left out)."""
    return location.get("active", True) is not False


def parse_upload(value: Any) -> datetime | None:
    """A `last_upload_timestamp` as a naive datetime, as delivered (one with an offset is
    taken in UTC); None when absent or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo is None else when.astimezone(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class Fleet:
    """The account's locations: the active ones, the site of each, and when each last
    uploaded."""

    locations: list[str]  # the active ones
    site_of: dict[str, str]  # every location id -> its site id
    uploads: dict[str, datetime | None] = field(default_factory=dict)  # every location id
    west_s: dict[str, int] = field(default_factory=dict)  # seconds behind UTC (last_timezone)

    @cached_property
    def sites(self) -> Sites:
        """Each site's active locations and the site of every location, for the planner: an
        export naming a site stands for its active locations as listed here."""
        active: dict[str, set[str]] = {}
        for loc in self.locations:
            if (site := self.site_of.get(loc)) is not None:
                active.setdefault(site, set()).add(loc)
        return Sites({s: frozenset(locs) for s, locs in active.items()}, dict(self.site_of))

    def holds(self, site: str, location: str) -> bool:
        """Whether the location is an active location of the site, as listed."""
        return location in self.sites.active.get(site, frozenset())

    def sites_of(self, locations: Sequence[str], *, active_only: bool = False) -> list[str]:
        wanted = set(locations) & set(self.locations) if active_only else set(locations)
        return _by_id({s for loc, s in self.site_of.items() if loc in wanted})

    def covered(self, scope: Scope) -> list[str]:
        """The locations a job's rows come from (for a request naming tags: all of them)."""
        if scope.kind is ScopeKind.location:
            return [scope.id]
        if scope.kind is ScopeKind.site:
            return [loc for loc, site in self.site_of.items() if site == scope.id]
        sources = dict(scope.sources)
        if sources.get("location_tags") or sources.get("site_tags"):
            return list(self.uploads)
        sites = set(sources.get("sites", ()))
        named = {loc for loc, site in self.site_of.items() if site in sites}
        return _by_id(named | set(sources.get("locations", ())))

    def last_uploads(self, locations: Sequence[str]) -> list[datetime | None]:
        """When each location last uploaded (None: unknown, or never), as far as a day's
        end can be compared with it: a location west of UTC counts as that much earlier.

        The vendor does not say in which time zone `last_upload_timestamp` and
        `period_start` are: if the first is UTC and the second local time, a location
        behind UTC ends its day that much later. Moving its uploads back by its offset
        is right in that case and only waits longer in the others.
        """
        out = []
        for loc in locations:
            up = self.uploads.get(loc)
            out.append(None if up is None else up - timedelta(seconds=self.west_s.get(loc, 0)))
        return out

    def silent(self, now: datetime, *, silence_s: float) -> dict[str, datetime | None]:
        """The locations that stopped uploading, with their last upload."""
        return {
            loc: up for loc, up in self.uploads.items() if is_silent(up, now, silence_s=silence_s)
        }


async def fleet_of(client: LocationSource) -> Fleet:
    """The account's locations as `/api/v1/locations/` lists them."""
    return fleet_from(await client.list_locations())


def fleet_from(found: Sequence[dict[str, Any]]) -> Fleet:
    """The fleet of a `/api/v1/locations/` answer."""
    return Fleet(
        locations=_by_id({str(x["id"]) for x in found if is_active(x)}),
        site_of={str(x["id"]): str(x["site_id"]) for x in found if x.get("site_id") is not None},
        uploads={str(x["id"]): parse_upload(x.get("last_upload_timestamp")) for x in found},
        west_s={str(x["id"]): _west_s(x.get("last_timezone")) for x in found},
    )


def _west_s(offset: Any) -> int:
    """Seconds a location's time zone is behind UTC (0 when ahead, or not said)."""
    return -offset if isinstance(offset, int) and not isinstance(offset, bool) and offset < 0 else 0


class UploadWatch:
    """The account's fleet with each location's last upload, asked again when older than
    `max_age_s` (from the store, where other processes share it, else from the vendor);
    silent locations are logged at each fetch from the vendor.

    An older answer only errs one way: a location has uploaded at least that far, so a
    day it makes final is final.
    """

    def __init__(
        self,
        client: LocationSource,
        *,
        account: str,
        max_age_s: float,
        silence_s: float,
        store: FleetStore | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._client = client
        self._account = account
        self._max_age_s = max_age_s
        self._silence_s = silence_s
        self._store = store
        self._clock = clock
        self._wall = wall
        self._fleet: Fleet | None = None
        self._at = 0.0
        self._lock = anyio.Lock()

    async def fleet(self, *, fresh: bool = False) -> Fleet:
        """The fleet, fetched again when the one held is too old (`fresh`: from the vendor,
        now)."""
        async with self._lock:
            if fresh or self._fleet is None or self._clock() - self._at >= self._max_age_s:
                self._fleet = fleet_from(await self._listed(fresh))
                self._at = self._clock()
            return self._fleet

    async def _listed(self, fresh: bool) -> Sequence[dict[str, Any]]:
        if self._store is not None and not fresh:
            shared = await self._store.load(self._account, self._max_age_s)
            if shared is not None:
                return shared
        found = await self._client.list_locations()
        if self._store is not None:
            await self._store.save(self._account, found)
        self._report_silent(fleet_from(found))
        return found

    def _report_silent(self, fleet: Fleet) -> None:
        active = set(fleet.locations)
        silent = {
            loc: up
            for loc, up in fleet.silent(self._wall(), silence_s=self._silence_s).items()
            if loc in active  # an inactive location is expected to be silent
        }
        if silent:
            log.warning(
                "completeness.locations_silent",
                account=self._account,
                locations=_by_id(set(silent)),
                last_uploads={k: v.isoformat() if v else None for k, v in silent.items()},
                hint="their days are not waited on; backfill with --force once they upload",
            )


def _ids(items: list[Any], key: str = "id") -> set[str]:
    """Ids of API objects (or of bare ids, as tag members may be given)."""
    return {str(x[key]) if isinstance(x, dict) else str(x) for x in items}


def _members(tags: list[dict[str, Any]], wanted: Sequence[str], key: str, account: str) -> set[str]:
    found = {str(t.get("id")): t for t in tags}
    unknown = _by_id(set(wanted) - set(found))
    if unknown:
        raise UsageError(
            f"--{key[:-1].replace('_', '-')}-tags: no such tag {', '.join(unknown)}" + _in(account)
        )
    return {m for tag_id in wanted for m in _ids(found[tag_id].get(key) or [])}


def _in(account: str) -> str:
    return f" in VidiCenter account {account}" if account else ""


def check_named(
    fleet: Fleet, locations: Sequence[str], sites: Sequence[str], *, account: str, option: str
) -> None:
    """UsageError naming the locations or sites the account does not have."""
    if unknown := _by_id(set(locations) - set(fleet.uploads) - set(fleet.site_of)):
        raise UsageError(f"{option}: no such location {', '.join(unknown)}{_in(account)}")
    if unknown := _by_id(set(sites) - set(fleet.site_of.values())):
        raise UsageError(f"--sites: no such site {', '.join(unknown)}{_in(account)}")


async def _known_fleet(
    client: TopologySource, watch: UploadWatch | None, named: Sequence[str], sites: Sequence[str]
) -> Fleet:
    """The fleet, asked of the vendor again when a shared one lacks a name given."""
    if watch is None:
        return await fleet_of(client)
    fleet = await watch.fleet()
    if set(named) - set(fleet.uploads) or set(sites) - set(fleet.site_of.values()):
        fleet = await watch.fleet(fresh=True)  # made since it was listed?
    return fleet


async def resolve_scope(
    client: TopologySource,
    sources: Mapping[str, Sequence[str]],
    kind: ScopeKind,
    *,
    default_locations: Sequence[str] | None,
    account: str = "",
    default_from: str = "INGEST_VIDICENTER_LOCATIONS",
    watch: UploadWatch | None = None,
) -> list[str]:
    """The location ids (or site ids, for a per-site type) that a command's scope stands
    for: `sources` by kind (locations, sites, location_tags, site_tags); without any, the
    configured locations (None: every active location). A location, site or tag the
    account does not have is a UsageError naming it (and the option, or `default_from`).
    The fleet comes from `watch` when given (shared with other processes)."""
    locations: set[str] = set(sources.get("locations") or [])
    sites: set[str] = set(sources.get("sites") or [])
    named = list(locations)
    if not any(sources.values()):
        named += default_locations or []
    fleet = await _known_fleet(client, watch, named, list(sites))
    check_named(fleet, list(locations), list(sites), account=account, option="--locations")
    if sources.get("location_tags"):
        tags = await client.list_location_tags()
        locations |= _members(tags, sources["location_tags"], "locations", account)
    if sources.get("site_tags"):
        sites |= _members(await client.list_site_tags(), sources["site_tags"], "sites", account)
    if not any(sources.values()):
        if default_locations is None:
            locations = set(fleet.locations)
        else:
            locations = set(default_locations)
            check_named(fleet, list(locations), [], account=account, option=default_from)
    if kind is ScopeKind.site:
        if locations:  # the sites of the named locations
            sites |= set(fleet.sites_of(list(locations)))
        return _by_id(sites)
    for site in _by_id(sites):
        locations |= _ids(await client.list_site_locations(site))
    return _by_id(locations)


class ScheduledTopology:
    """The locations and sites `ingest run` schedules: the configured list, or every
    active location (LOCATIONS=all), asked again every `refresh_s`."""

    def __init__(
        self,
        locations: Sequence[str] | None,
        *,
        needs_sites: bool,
        refresh_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._all = locations is None
        self._needs_sites = needs_sites
        self._refresh_s = refresh_s
        self._clock = clock
        self._refreshed_at: float | None = None
        self.locations: list[str] = [] if locations is None else list(locations)
        self.sites: list[str] = []

    async def refresh(self, client: LocationSource | None) -> None:
        """Ask VidiCenter again when the refresh interval has passed (no call otherwise)."""
        due = self._refreshed_at is None or self._clock() - self._refreshed_at >= self._refresh_s
        if client is None or not (self._all or self._needs_sites) or not due:
            return
        fleet = await fleet_of(client)
        if self._all:
            new = _by_id(set(fleet.locations) - set(self.locations))
            if new:
                log.info("topology.locations_found", new=len(new), total=len(fleet.locations))
            self.locations = fleet.locations
        self.sites = fleet.sites_of(self.locations, active_only=True)
        self._refreshed_at = self._clock()
