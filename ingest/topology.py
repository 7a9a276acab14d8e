"""VidiCenter's topology: which locations and sites a scope stands for.

The one place that reads `/api/v1/locations/`, the tag lists and a site's locations, for
`backfill` (a scope given on the command line), `run` (the scheduled locations, refreshed
on an interval) and the demo.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from ingest.domain import ScopeKind
from ingest.errors import UsageError

log = structlog.get_logger(__name__)


class TopologySource(Protocol):
    async def list_locations(self) -> list[dict[str, Any]]: ...
    async def list_location_tags(self) -> list[dict[str, Any]]: ...
    async def list_site_tags(self) -> list[dict[str, Any]]: ...
    async def list_site_locations(self, site_id: str) -> list[dict[str, Any]]: ...


class LocationSource(Protocol):
    async def list_locations(self) -> list[dict[str, Any]]: ...


def _by_id(ids: set[str]) -> list[str]:
    return sorted(ids, key=int)


def is_active(location: Mapping[str, Any]) -> bool:
    """A location is active unless VidiCenter says it is not (`active` may be left out)."""
    return location.get("active", True) is not False


@dataclass(frozen=True)
class Fleet:
    """The account's locations: the active ones, and the site of each."""

    locations: list[str]  # the active ones
    site_of: dict[str, str]  # every location id -> its site id

    def sites_of(self, locations: Sequence[str], *, active_only: bool = False) -> list[str]:
        wanted = set(locations) & set(self.locations) if active_only else set(locations)
        return _by_id({s for loc, s in self.site_of.items() if loc in wanted})


async def fleet_of(client: LocationSource) -> Fleet:
    """The account's locations as `/api/v1/locations/` lists them."""
    found = await client.list_locations()
    return Fleet(
        locations=_by_id({str(x["id"]) for x in found if is_active(x)}),
        site_of={str(x["id"]): str(x["site_id"]) for x in found if x.get("site_id") is not None},
    )


def _ids(items: list[Any], key: str = "id") -> set[str]:
    """Ids of API objects (or of bare ids, as tag members may be given)."""
    return {str(x[key]) if isinstance(x, dict) else str(x) for x in items}


def _members(tags: list[dict[str, Any]], wanted: Sequence[str], key: str) -> set[str]:
    found = {str(t.get("id")): t for t in tags}
    unknown = _by_id(set(wanted) - set(found))
    if unknown:
        raise UsageError(f"--{key[:-1].replace('_', '-')}-tags: no such tag {', '.join(unknown)}")
    return {m for tag_id in wanted for m in _ids(found[tag_id].get(key) or [])}


async def resolve_scope(
    client: TopologySource,
    sources: Mapping[str, Sequence[str]],
    kind: ScopeKind,
    *,
    default_locations: Sequence[str] | None,
) -> list[str]:
    """The location ids (or site ids, for a per-site type) that a command's scope stands
    for: `sources` by kind (locations, sites, location_tags, site_tags); without any, the
    configured locations (None: every active location)."""
    locations: set[str] = set(sources.get("locations") or [])
    sites: set[str] = set(sources.get("sites") or [])
    if sources.get("location_tags"):
        tags = await client.list_location_tags()
        locations |= _members(tags, sources["location_tags"], "locations")
    if sources.get("site_tags"):
        sites |= _members(await client.list_site_tags(), sources["site_tags"], "sites")
    if not any(sources.values()):
        if default_locations is None:
            locations = set((await fleet_of(client)).locations)
        else:
            locations = set(default_locations)
    if kind is ScopeKind.site:
        if locations:  # the sites of the named locations
            sites |= set((await fleet_of(client)).sites_of(list(locations)))
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
