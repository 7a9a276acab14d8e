"""Which workers are alive (a presence row each, beaten every few seconds), the leases a
worker holds without knowing it, and the due work a worker's health is judged against."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Final

from ingest.domain import Vendor
from ingest.ledger.jobs import Executor

BEAT_S: Final = 5.0  # how often a working process says it is alive
ALIVE_S: Final = 3 * BEAT_S + 5  # a process silent for longer is gone
FORGET_AFTER_S: Final = 86400.0  # presence rows of processes gone this long are deleted


async def beat(conn: Executor, owner: str) -> None:
    """`owner` is alive now; rows of processes long gone are dropped."""
    await conn.execute(
        """
        INSERT INTO ingest.workers (owner) VALUES ($1)
        ON CONFLICT (owner) DO UPDATE SET seen_at = now()
        """,
        owner,
    )
    await conn.execute(
        "DELETE FROM ingest.workers WHERE seen_at < now() - make_interval(secs => $1)",
        FORGET_AFTER_S,
    )


async def live_workers(conn: Executor, *, alive_s: float = ALIVE_S) -> list[str]:
    """The owners seen in the last `alive_s` seconds."""
    rows = await conn.fetch(
        "SELECT owner FROM ingest.workers WHERE seen_at > now() - make_interval(secs => $1)"
        " ORDER BY owner",
        alive_s,
    )
    return [r["owner"] for r in rows]


async def hand_back_unheld(
    conn: Executor,
    vendor: Vendor,
    owner: str,
    held: Collection[int],
    *,
    accounts: Sequence[str] | None = None,
) -> list[int]:
    """Hand back, untried, the vendor's running jobs (of the given accounts; None: any)
    leased to `owner` but not in `held`: a claim that committed while its answer was lost.
    Their export, if out, stays recorded for the next claim to resume. Returns their ids.

    The accounts matter: a process works each account in a group of its own, which must
    not hand back the jobs another group holds."""
    rows = await conn.fetch(
        """
        UPDATE ingest.jobs SET status = 'pending', attempts = greatest(attempts - 1, 0),
            run_after = now(), lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
        WHERE vendor = $1 AND lease_owner = $2 AND status = 'running'
          AND NOT (id = ANY($3::bigint[])) AND ($4::text[] IS NULL OR account = ANY($4))
        RETURNING id
        """,
        vendor.value,
        owner,
        list(held),
        list(accounts) if accounts is not None else None,
    )
    return sorted(r["id"] for r in rows)


# Jobs released for want of an export place come back after a few seconds: they count as
# due, or a worker that keeps finding no place would never look stalled.
DUE_SLACK_S: Final = 10.0


async def jobs_due(conn: Executor, vendors: Sequence[str]) -> int:
    """Jobs of the vendors that may be claimed now (or within a few seconds): pending ones
    whose time has come, and running ones whose lease ran out."""
    n = await conn.fetchval(
        """
        SELECT count(*) FROM ingest.jobs
        WHERE vendor = ANY($1::text[]) AND (
            (status = 'pending' AND run_after <= now() + make_interval(secs => $2))
            OR (status = 'running' AND lease_expires_at < now()))
        """,
        list(vendors),
        DUE_SLACK_S,
    )
    return int(n)
