"""Each VidiCenter account's locations as last listed by the vendor, shared by every
process through the database: a backfill, a replica or the pipeline asking again within
minutes costs no vendor call."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from ingest.ledger.jobs import Executor

# what is kept of each location: what scopes and completeness are decided from
_KEPT = ("id", "site_id", "active", "last_timezone", "last_upload_timestamp")


async def load_fleet(
    conn: Executor, account: str, *, max_age_s: float
) -> list[dict[str, Any]] | None:
    """The account's locations as listed less than `max_age_s` ago; None when older or never."""
    text = await conn.fetchval(
        "SELECT locations::text FROM ingest.fleets WHERE account = $1"
        " AND fetched_at > now() - make_interval(secs => $2)",
        account,
        max_age_s,
    )
    return None if text is None else list(json.loads(text))


async def stored_fleet(
    conn: Executor, account: str
) -> tuple[list[dict[str, Any]], datetime] | None:
    """The account's locations as last listed, however long ago, and when; None if never."""
    row = await conn.fetchrow(
        "SELECT locations::text AS locations, fetched_at FROM ingest.fleets WHERE account = $1",
        account,
    )
    return None if row is None else (list(json.loads(row["locations"])), row["fetched_at"])


async def save_fleet(conn: Executor, account: str, locations: Sequence[dict[str, Any]]) -> None:
    """Keep the account's locations as the vendor just listed them."""
    kept = [{k: x[k] for k in _KEPT if k in x} for x in locations]
    await conn.execute(
        """
        INSERT INTO ingest.fleets (account, locations, fetched_at) VALUES ($1, $2::jsonb, now())
        ON CONFLICT (account) DO UPDATE SET locations = EXCLUDED.locations, fetched_at = now()
        """,
        account,
        json.dumps(kept),
    )


class FleetStore:
    """`load_fleet` and `save_fleet` on a pool, for the topology's upload watch."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def load(self, account: str, max_age_s: float) -> list[dict[str, Any]] | None:
        return await load_fleet(self._pool, account, max_age_s=max_age_s)

    async def save(self, account: str, locations: Sequence[dict[str, Any]]) -> None:
        await save_fleet(self._pool, account, locations)
