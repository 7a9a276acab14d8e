"""Job administration from the command line: list, retry and cancel jobs by filter."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from ingest.domain import JobStatus
from ingest.ledger.jobs import Executor


@dataclass(frozen=True)
class JobFilter:
    """Which jobs a command is about; a field left None does not filter."""

    status: JobStatus | None = None
    vendor: str | None = None
    data_type: str | None = None
    first: date | None = None  # the first day, inclusive
    last: date | None = None  # the last day, inclusive

    def where(self, start: int = 1) -> tuple[str, list[Any]]:
        """The SQL condition and its arguments, numbered from `$start`."""
        parts: list[str] = []
        args: list[Any] = []
        for sql, value in (
            ("status = ${}", None if self.status is None else self.status.value),
            ("vendor = ${}", self.vendor),
            ("data_type = ${}", self.data_type),
            ("day >= ${}", self.first),
            ("day <= ${}", self.last),
        ):
            if value is not None:
                args.append(value)
                parts.append(sql.format(start + len(args) - 1))
        return (" AND ".join(parts) or "true"), args


_LISTED = """id, vendor, data_type, time_resolution, params, scope, day, status, attempts,
    rows_loaded, last_error, run_after, created_at, updated_at, finished_at"""


async def list_jobs(
    conn: Executor, where: JobFilter, *, limit: int | None
) -> tuple[int, list[dict[str, Any]]]:
    """How many jobs match, and the first `limit` of them (all when None), by day then id."""
    condition, args = where.where()
    total = await conn.fetchval(f"SELECT count(*) FROM ingest.jobs WHERE {condition}", *args)
    rows = await conn.fetch(
        f"""
        SELECT {_LISTED} FROM ingest.jobs WHERE {condition}
        ORDER BY day, id LIMIT ${len(args) + 1}
        """,
        *args,
        limit,
    )
    return int(total), [dict(r) for r in rows]


async def retry_dead(conn: Executor, where: JobFilter) -> int:
    """Give the matching dead jobs a fresh start: pending now, their tries and export
    rebuilds counted from zero; `last_error` stays until they run. Returns how many."""
    condition, args = where.where(start=1)
    n = await conn.fetchval(
        f"""
        WITH u AS (
            UPDATE ingest.jobs SET status = 'pending', attempts = 0, export_rebuilds = 0,
                run_after = now(), finished_at = NULL, updated_at = now()
            WHERE status = 'dead' AND {condition}
            RETURNING 1)
        SELECT count(*) FROM u
        """,
        *args,
    )
    return int(n)


@dataclass(frozen=True)
class Cancelled:
    """What `cancel_jobs` did."""

    deleted: int  # pending and dead jobs removed from the ledger
    kept_exports: int  # pending jobs left alone: their export is out at the vendor


async def cancel_jobs(conn: Executor, where: JobFilter) -> Cancelled:
    """Delete the matching pending and dead jobs, except pending ones whose export is out
    at the vendor (it holds one of the account's export places until the job finishes).

    Running and done jobs are never touched.
    """
    condition, args = where.where(start=1)
    row = await conn.fetchrow(
        f"""
        WITH d AS (
            DELETE FROM ingest.jobs
            WHERE (status = 'dead' OR (status = 'pending' AND export_query IS NULL))
              AND {condition}
            RETURNING 1)
        SELECT (SELECT count(*) FROM d) AS deleted,
               (SELECT count(*) FROM ingest.jobs
                WHERE status = 'pending' AND export_query IS NOT NULL AND {condition})
                   AS kept_exports
        """,
        *args,
    )
    assert row is not None
    return Cancelled(int(row["deleted"]), int(row["kept_exports"]))
