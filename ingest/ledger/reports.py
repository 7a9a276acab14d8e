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


@dataclass(frozen=True)
class RunState:
    """Where a run's jobs stand: counts by status, and the failed ones waiting to retry."""

    counts: dict[str, int]
    retrying: int  # pending after a failure, their back-off not over
    next_retry_s: float | None  # seconds until the first of them is due; None if none
    held_back: int  # pending, never failed, handed back for a while (no export place free)


async def run_state(conn: Executor, ids: Sequence[int]) -> RunState:
    """The given jobs by status, and how many wait out a retry's back-off (and how long)."""
    row = await conn.fetchrow(
        """
        SELECT count(*) FILTER (WHERE status = 'pending') AS pending,
               count(*) FILTER (WHERE status = 'running') AS running,
               count(*) FILTER (WHERE status = 'done') AS done,
               count(*) FILTER (WHERE status = 'dead') AS dead,
               count(*) FILTER (WHERE status = 'pending' AND last_error IS NOT NULL
                                AND run_after > now()) AS retrying,
               extract(epoch FROM min(run_after) FILTER (
                   WHERE status = 'pending' AND last_error IS NOT NULL AND run_after > now())
                   - now()) AS next_retry_s,
               count(*) FILTER (WHERE status = 'pending' AND last_error IS NULL
                                AND run_after > now()) AS held_back
        FROM ingest.jobs WHERE id = ANY($1)
        """,
        list(ids),
    )
    assert row is not None
    wait = row["next_retry_s"]
    return RunState(
        counts={s.value: int(row[s.value]) for s in JobStatus},
        retrying=int(row["retrying"]),
        next_retry_s=None if wait is None else float(wait),
        held_back=int(row["held_back"]),
    )


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


@dataclass(frozen=True)
class CoverageDay:
    """One day of one data type (vendor, data type, resolution): its jobs by state."""

    vendor: str
    data_type: str
    time_resolution: str
    day: date
    state: str  # dead, open, done, or missing (no job, between the type's first and last day)
    done: int
    open: int
    dead: int


async def coverage(conn: Executor) -> list[CoverageDay]:
    """Every day from each data type's first to its last day in the ledger, with its jobs
    done, open (pending or running) and dead; a day is dead if one job is, else open if one
    is, else done; a day without any job is missing."""
    rows = await conn.fetch(
        """
        WITH per_day AS (
            SELECT vendor, data_type, time_resolution, day,
                   count(*) FILTER (WHERE status = 'done') AS done,
                   count(*) FILTER (WHERE status IN ('pending', 'running')) AS open,
                   count(*) FILTER (WHERE status = 'dead') AS dead
            FROM ingest.jobs GROUP BY vendor, data_type, time_resolution, day
        ), spans AS (
            SELECT vendor, data_type, time_resolution, min(day) AS first, max(day) AS last
            FROM per_day GROUP BY vendor, data_type, time_resolution
        )
        SELECT s.vendor, s.data_type, s.time_resolution, d.day,
               coalesce(p.done, 0) AS done, coalesce(p.open, 0) AS open,
               coalesce(p.dead, 0) AS dead,
               CASE WHEN p.dead > 0 THEN 'dead' WHEN p.open > 0 THEN 'open'
                    WHEN p.done > 0 THEN 'done' ELSE 'missing' END AS state
        FROM spans s
        CROSS JOIN LATERAL (
            SELECT g::date AS day FROM generate_series(s.first, s.last, interval '1 day') g
        ) d
        LEFT JOIN per_day p ON p.vendor = s.vendor AND p.data_type = s.data_type
            AND p.time_resolution = s.time_resolution AND p.day = d.day
        ORDER BY s.vendor, s.data_type, s.time_resolution, d.day
        """
    )
    return [
        CoverageDay(
            r["vendor"],
            r["data_type"],
            r["time_resolution"],
            r["day"],
            r["state"],
            int(r["done"]),
            int(r["open"]),
            int(r["dead"]),
        )
        for r in rows
    ]
