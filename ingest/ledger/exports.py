"""Each VidiCenter account's export places: counted from the ledger, so the cap holds
across processes and restarts."""

from __future__ import annotations

from collections.abc import Sequence

from ingest.db import Connection
from ingest.domain import Job
from ingest.ledger.jobs import Executor, update_leased
from ingest.ledger.presence import ALIVE_S


def stale_after_s(export_deadline_s: float) -> float:
    """How long an export reservation holds a place: past twice the polling deadline (and
    ten minutes), the export has long finished or been forgotten by the vendor."""
    return 2 * export_deadline_s + 600


# An export is out at the vendor while its jobs are open and it was reserved recently
# enough: past `stale_after_s` it has finished or been forgotten by the vendor.
_OUT = """
    vendor = 'vidicenter' AND export_query IS NOT NULL
    AND status IN ('pending', 'running')
    AND export_reserved_at > now() - make_interval(secs => $1)
    AND ($2::text IS NULL OR account = $2)
"""


async def exports_out(conn: Executor, *, stale_after_s: float, account: str | None = None) -> int:
    """Exports out at the vendor for the account (None: all accounts together), by the
    rule the cap counts them with."""
    n = await conn.fetchval(
        f"SELECT count(DISTINCT (account, export_query)) FROM ingest.jobs WHERE {_OUT}",
        stale_after_s,
        account,
    )
    return int(n)


async def reserve_export(
    conn: Connection,
    jobs: Sequence[Job],
    query: str,
    *,
    owner: str,
    max_exports: int,
    stale_after_s: float,
) -> bool:
    """Take one of the jobs' account's export places for `query`; False when all are out.

    Counted under an advisory lock of the account: an export whose jobs are pending or
    running still runs at the vendor.
    """
    account = jobs[0].account
    async with conn.transaction():
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext('ingest.vidicenter.exports:' || $1))", account
        )
        if await exports_out(conn, stale_after_s=stale_after_s, account=account) >= max_exports:
            return False
        await update_leased(
            conn,
            """
            UPDATE ingest.jobs SET export_query = $3, export_reserved_at = now(),
                export_started_at = NULL, updated_at = now()
            WHERE id = ANY($1) AND lease_owner = $2 AND status = 'running'
            """,
            [j.id for j in jobs],
            query,
            owner=owner,
        )
        return True


async def mark_export_started(conn: Executor, jobs: Sequence[Job]) -> None:
    """The vendor acknowledged the export: a resume must not send force_rebuild again."""
    await conn.execute(
        "UPDATE ingest.jobs SET export_started_at = now() WHERE id = ANY($1)"
        " AND export_started_at IS NULL",
        [j.id for j in jobs],
    )


async def orphaned_exports(
    conn: Executor, *, stale_after_s: float, alive_s: float = ALIVE_S
) -> dict[str, int]:
    """Export places held by running jobs whose lease owner is not alive (no presence beat
    for `alive_s`), by owner: they stay taken until the leases run out."""
    rows = await conn.fetch(
        """
        SELECT lease_owner AS owner, count(DISTINCT (account, export_query)) AS places
        FROM ingest.jobs j
        -- out at the vendor by the cap's rule (_OUT), and held by a lease
        WHERE vendor = 'vidicenter' AND export_query IS NOT NULL AND status = 'running'
          AND export_reserved_at > now() - make_interval(secs => $1)
          AND NOT EXISTS (
              SELECT 1 FROM ingest.workers w
              WHERE w.owner = j.lease_owner AND w.seen_at > now() - make_interval(secs => $2))
        GROUP BY lease_owner ORDER BY lease_owner
        """,
        stale_after_s,
        alive_s,
    )
    return {r["owner"]: int(r["places"]) for r in rows}
