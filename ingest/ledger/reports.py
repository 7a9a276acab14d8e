"""Read-only views of the ledger: counts, a run's summary, the status report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from ingest.domain import JobStatus
from ingest.ledger.jobs import Executor


async def job_counts(conn: Executor, ids: Sequence[int]) -> dict[str, int]:
    """How many of the given jobs are in each status (every status, zeros included)."""
    rows = await conn.fetch(
        "SELECT status, count(*) AS n FROM ingest.jobs WHERE id = ANY($1) GROUP BY status",
        list(ids),
    )
    counts = {s.value: 0 for s in JobStatus}
    counts.update({r["status"]: r["n"] for r in rows})
    return counts


@dataclass(frozen=True)
class DeadJob:
    id: int
    scope: str
    day: date
    reason: str


async def rows_loaded(conn: Executor, ids: Sequence[int]) -> int:
    """Rows the given jobs loaded, as the ledger last recorded them."""
    n = await conn.fetchval(
        "SELECT coalesce(sum(rows_loaded), 0) FROM ingest.jobs WHERE id = ANY($1)", list(ids)
    )
    return int(n)


async def dead_jobs(conn: Executor, ids: Sequence[int], *, limit: int = 50) -> list[DeadJob]:
    """The given jobs that are dead, with their reasons, oldest id first."""
    rows = await conn.fetch(
        "SELECT id, scope, day, last_error FROM ingest.jobs"
        " WHERE id = ANY($1) AND status = 'dead' ORDER BY id LIMIT $2",
        list(ids),
        limit,
    )
    return [DeadJob(r["id"], r["scope"], r["day"], r["last_error"] or "") for r in rows]


async def outcome_by_type(conn: Executor, ids: Sequence[int]) -> list[dict[str, Any]]:
    """The given jobs by data type, resolution and status: jobs, rows and one reason."""
    rows = await conn.fetch(
        """
        SELECT data_type, time_resolution, status, count(*) AS jobs,
               coalesce(sum(rows_loaded), 0) AS rows, max(last_error) AS error
        FROM ingest.jobs WHERE id = ANY($1)
        GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        """,
        list(ids),
    )
    return [dict(r) for r in rows]


async def status_counts(conn: Executor) -> dict[str, int]:
    """Every job by status, zeros included."""
    counts = {s.value: 0 for s in JobStatus}
    for r in await conn.fetch("SELECT status, count(*) AS n FROM ingest.jobs GROUP BY status"):
        counts[r["status"]] = r["n"]
    return counts


async def counts_by_type(conn: Executor) -> list[dict[str, Any]]:
    """Jobs and rows by vendor, data type, resolution and status."""
    rows = await conn.fetch(
        """
        SELECT vendor, data_type, time_resolution, status, count(*) AS count,
               coalesce(sum(rows_loaded), 0)::bigint AS rows_loaded
        FROM ingest.jobs GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        """
    )
    return [dict(r) for r in rows]


async def oldest_pending(conn: Executor) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        """
        SELECT id, vendor, data_type, scope, day, created_at, run_after, attempts
        FROM ingest.jobs WHERE status = 'pending' ORDER BY created_at, id LIMIT 1
        """
    )
    return dict(row) if row else None


async def recent_failures(conn: Executor, *, limit: int) -> list[dict[str, Any]]:
    """Pending or dead jobs whose last try failed, the most recent first."""
    rows = await conn.fetch(
        """
        SELECT id, vendor, data_type, time_resolution, scope, day, status, attempts,
               last_error, updated_at
        FROM ingest.jobs WHERE last_error IS NOT NULL AND status IN ('pending', 'dead')
        ORDER BY updated_at DESC LIMIT $1
        """,
        limit,
    )
    return [dict(r) for r in rows]


def plain(row: dict[str, Any]) -> dict[str, Any]:
    """A row with its dates and times as ISO text, for JSON."""
    return {k: (v.isoformat() if isinstance(v, date | datetime) else v) for k, v in row.items()}
