"""Pure: the words of the ledger (vendors, statuses, scopes, job specs and jobs).

Nothing here does I/O; every other layer speaks these types.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any


class Vendor(StrEnum):
    vidicenter = "vidicenter"  # Quividi VidiCenter data export API
    angus = "angus"  # Angus.ai Data API


class JobStatus(StrEnum):
    pending = "pending"  # waiting to be claimed once run_after has passed
    running = "running"  # claimed by a worker that holds its lease
    done = "done"  # its rows are committed
    dead = "dead"  # failed for good; last_error says why


class ScopeKind(StrEnum):
    """What a job's rows are attributed to, which decides how jobs are cut."""

    location = "location"  # rows carry location_id: one job per location per day
    site = "site"  # rows carry site_id: one job per site per day
    extrapolated = "extrapolated"  # rows carry no scope id: one job per day for the request
    stream = "stream"  # an Angus stream: one job per stream per day


# The ways a request names VidiCenter scopes, in the order the export query lists them.
SOURCE_KINDS = ("locations", "sites", "location_tags", "site_tags")
_SINGLE = {ScopeKind.location, ScopeKind.site, ScopeKind.stream}


@dataclass(frozen=True, order=True, slots=True)
class Scope:
    """What one job covers: a location, a site, a stream, or, for the extrapolated types,
    the whole request (`sources`: ids by kind, e.g. locations 1,2,3 and site 9).

    Stored in the ledger as text: `location:1056`, `site:178`, `stream:<client_id>`,
    `locations:1,2,3;sites:9`. `encode` and `parse` are the only two places that know it.
    """

    kind: ScopeKind
    id: str = ""
    sources: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def __post_init__(self) -> None:
        if self.kind in _SINGLE and (not self.id or self.sources):
            raise ValueError(f"a {self.kind} scope has one id")
        if self.kind is ScopeKind.extrapolated:
            if self.id or not self.sources or not all(ids for _, ids in self.sources):
                raise ValueError("an extrapolated scope names its sources")
            if unknown := {k for k, _ in self.sources} - set(SOURCE_KINDS):
                raise ValueError(f"unknown scope sources {sorted(unknown)}")

    @classmethod
    def location(cls, location_id: str | int) -> Scope:
        return cls(ScopeKind.location, str(location_id))

    @classmethod
    def site(cls, site_id: str | int) -> Scope:
        return cls(ScopeKind.site, str(site_id))

    @classmethod
    def stream(cls, client_id: str) -> Scope:
        return cls(ScopeKind.stream, client_id)

    @classmethod
    def request(cls, sources: Mapping[str, Sequence[str]]) -> Scope:
        """The scope of an extrapolated job: every source of the request, in query order."""
        parts = tuple(
            (kind, tuple(str(i) for i in sources[kind]))
            for kind in SOURCE_KINDS
            if sources.get(kind)
        )
        return cls(ScopeKind.extrapolated, sources=parts)

    def encode(self) -> str:
        if self.kind is ScopeKind.extrapolated:
            return ";".join(f"{kind}:{','.join(ids)}" for kind, ids in self.sources)
        return f"{self.kind}:{self.id}"

    @classmethod
    def parse(cls, text: str) -> Scope:
        """The scope a ledger's text stands for; ValueError when it is not one."""
        head, sep, rest = text.partition(":")
        if not sep:
            raise ValueError(f"not a scope: {text!r}")
        if head in _SINGLE:
            return cls(ScopeKind(head), rest)
        parts: dict[str, list[str]] = {}
        for part in text.split(";"):
            kind, _, ids = part.partition(":")
            parts[kind] = ids.split(",")
        if set(parts) - set(SOURCE_KINDS):
            raise ValueError(f"not a scope: {text!r}")
        return cls.request(parts)

    def __str__(self) -> str:
        return self.encode()


def export_sources(scopes: Sequence[Scope]) -> dict[str, list[str]]:
    """The query's scope parameters for scopes that ride on one export: their ids by kind."""
    if not scopes:
        return {}
    first = scopes[0]
    if first.kind is ScopeKind.location:
        return {"locations": [s.id for s in scopes]}
    if first.kind is ScopeKind.site:
        return {"sites": [s.id for s in scopes]}
    if first.kind is ScopeKind.extrapolated and len(scopes) == 1:
        return {kind: list(ids) for kind, ids in first.sources}
    raise ValueError(f"{len(scopes)} {first.kind} scopes cannot share one export")


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What a job asks for: one scope, one day, of one account.

    The account is a VidiCenter account's `host/user`, or the Angus stream (its client_id,
    which is what an Angus spec takes when given none).
    """

    vendor: Vendor
    data_type: str
    time_resolution: str
    scope: Scope
    day: date
    params: dict[str, Any] = field(default_factory=dict)
    account: str = ""

    def __post_init__(self) -> None:
        if self.vendor is Vendor.angus:
            if self.account and self.account != self.scope.id:
                raise ValueError(f"an Angus job's account is its stream, not {self.account!r}")
            object.__setattr__(self, "account", self.scope.id)
        elif not self.account:
            raise ValueError("a VidiCenter job names its account")


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed job, as the ledger holds it."""

    id: int
    vendor: Vendor
    data_type: str
    time_resolution: str
    params: dict[str, Any]
    scope: Scope
    day: date
    attempts: int
    force: bool
    export_query: str | None
    export_started: bool
    export_rebuilds: int = 0
    account: str = ""  # the VidiCenter account's host/user, or the Angus stream
    export_plan: str | None = None  # the half of a split export this job goes out in
