"""The simulated network: locations, sites and their tags, derived from the config (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

FIRST_LOCATION_ID = 1001
FIRST_SITE_ID = 501
# UTC offsets in seconds, as `last_timezone` reports them; one per site, in turn
SITE_TIMEZONES = (3600, -18000, 0, 19800, 32400)
SCOPE_KEYS = ("locations", "sites", "location_tags", "site_tags")


@dataclass(frozen=True)
class Location:
    """One camera placement."""

    id: int
    site_id: int
    label: str
    active: bool
    last_timezone: int
    expert: bool  # expert licence: the expert keys carry values, else null
    tag_ids: tuple[int, ...]


@dataclass(frozen=True)
class Site:
    """A venue holding locations."""

    id: int
    label: str
    active: bool
    last_timezone: int
    tag_ids: tuple[int, ...]


@dataclass(frozen=True)
class Tag:
    """A user-defined group of locations or of sites."""

    id: int
    label: str
    member_ids: tuple[int, ...]


@dataclass(frozen=True)
class Topology:
    """Everything the account can see."""

    locations: tuple[Location, ...]
    sites: tuple[Site, ...]
    location_tags: tuple[Tag, ...]
    site_tags: tuple[Tag, ...]

    def location(self, location_id: int) -> Location | None:
        """The location with this id, if any."""
        return next((loc for loc in self.locations if loc.id == location_id), None)

    def site(self, site_id: int) -> Site | None:
        """The site with this id, if any."""
        return next((s for s in self.sites if s.id == site_id), None)

    def site_locations(self, site_id: int) -> list[Location]:
        """Locations of one site, active or not."""
        return [loc for loc in self.locations if loc.site_id == site_id]

    def resolve_scope(self, sources: dict[str, str]) -> list[Location]:
        """Locations named by the export's sources, each once; ValueError for unknown ids.

        A site (`sites=`, or a site tag) stands for every location it holds when the
        export's build starts, inactive ones included; the rows of a per-location type
        name their `location_id` whatever the source, as the vendor's examples do (the
        docs show `sites=` only with proof_of_play_by_site, whose rows name `site_id`).
        """
        chosen: dict[int, Location] = {}
        for key in SCOPE_KEYS:
            if key not in sources:
                continue
            for ident in _parse_ids(key, sources[key]):
                for loc in self._members(key, ident):
                    chosen.setdefault(loc.id, loc)
        return sorted(chosen.values(), key=lambda loc: loc.id)

    def _members(self, key: str, ident: int) -> list[Location]:
        if key == "locations":
            loc = self.location(ident)
            found = [loc] if loc else None
        elif key == "sites":
            found = self.site_locations(ident) if self.site(ident) else None
        else:
            tags = self.location_tags if key == "location_tags" else self.site_tags
            tag = next((t for t in tags if t.id == ident), None)
            if tag is None:
                found = None
            elif key == "location_tags":
                found = [loc for loc in self.locations if loc.id in tag.member_ids]
            else:
                found = [loc for loc in self.locations if loc.site_id in tag.member_ids]
        if found is None:
            raise ValueError(f"Unknown id {ident} in {key}")
        return found


def _parse_ids(key: str, text: str) -> list[int]:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts or not all(p.isdigit() for p in parts):
        raise ValueError(f"Invalid value for {key}: expected comma separated ids, got {text!r}")
    return [int(p) for p in parts]


def build_topology(
    location_count: int,
    site_count: int,
    inactive_count: int,
    *,
    moves: Mapping[int, int] | None = None,
) -> Topology:
    """Active locations in contiguous blocks per site, then the inactive ones in the last site;
    `moves` puts some locations in another site (location id -> site id)."""
    site_ids = [FIRST_SITE_ID + i for i in range(site_count)]
    sites_tz = {sid: SITE_TIMEZONES[i % len(SITE_TIMEZONES)] for i, sid in enumerate(site_ids)}
    locations = []
    for i in range(location_count + inactive_count):
        active = i < location_count
        loc_id = FIRST_LOCATION_ID + i
        site_id = site_ids[i * site_count // location_count] if active else site_ids[-1]
        site_id = (moves or {}).get(loc_id, site_id)
        locations.append(
            Location(
                id=loc_id,
                site_id=site_id,
                label=f"Screen {loc_id}",
                active=active,
                last_timezone=sites_tz.get(site_id, 0),
                expert=i % 3 != 2,
                tag_ids=(301,) if loc_id % 2 else (302,),
            )
        )
    sites = tuple(
        Site(
            id=sid,
            label=f"Site {sid}",
            active=any(loc.active for loc in locations if loc.site_id == sid),
            last_timezone=sites_tz[sid],
            tag_ids=(401, 402) if sid == site_ids[0] else (402,),
        )
        for sid in site_ids
    )
    location_tags = (
        Tag(301, "entrance", tuple(loc.id for loc in locations if loc.id % 2)),
        Tag(302, "window", tuple(loc.id for loc in locations if not loc.id % 2)),
    )
    site_tags = (Tag(401, "flagship", (site_ids[0],)), Tag(402, "all sites", tuple(site_ids)))
    return Topology(tuple(locations), sites, location_tags, site_tags)
