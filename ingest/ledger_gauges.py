"""What the metrics read from the job ledger at each scrape: every statement is here.

Read from the table, not from the process, so the figures survive restarts and agree
across replicas.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any, TypeAlias

import asyncpg

from ingest.db import Connection

# A pool or one of its connections (a connection in a transaction reads one snapshot).
Reader: TypeAlias = "Connection | asyncpg.Pool[Any]"

# The export places' rule of the ledger's reserve_export: an export holds a place while
# one of its jobs is pending or running and its reservation is not stale.
_EXPORTS_IN_FLIGHT = """
SELECT count(DISTINCT export_query) FROM ingest.jobs
WHERE vendor = 'vidicenter' AND export_query IS NOT NULL
  AND status IN ('pending', 'running')
  AND export_reserved_at > now() - make_interval(secs => $1)
"""


async def count_jobs(conn: Reader) -> dict[tuple[str, str], int]:
    """Jobs by (vendor, status); a pair with no job is absent."""
    rows = await conn.fetch(
        "SELECT vendor, status, count(*) AS n FROM ingest.jobs GROUP BY vendor, status"
    )
    return {(r["vendor"], r["status"]): int(r["n"]) for r in rows}


async def count_exports_in_flight(conn: Reader, *, stale_after_s: float) -> int:
    """VidiCenter exports holding one of the account's places, counted as the cap counts."""
    return int(await conn.fetchval(_EXPORTS_IN_FLIGHT, float(stale_after_s)))


async def last_success(conn: Reader) -> dict[str, float]:
    """Per vendor, when its most recent done job finished (Unix seconds); no done job: absent."""
    rows = await conn.fetch(
        "SELECT vendor, max(finished_at) AS at FROM ingest.jobs"
        " WHERE status = 'done' AND finished_at IS NOT NULL GROUP BY vendor"
    )
    return {r["vendor"]: r["at"].timestamp() for r in rows}


async def newest_complete_days(conn: Reader) -> dict[tuple[str, str], date]:
    """Per (vendor, data type), the newest day all of whose jobs are done.

    A day with one job pending, running or dead is not complete; a data type without a
    complete day is absent.
    """
    rows = await conn.fetch(
        """
        SELECT vendor, data_type, max(day) AS day FROM (
            SELECT vendor, data_type, day FROM ingest.jobs
            GROUP BY vendor, data_type, day
            HAVING bool_and(status = 'done')
        ) complete
        GROUP BY vendor, data_type
        """
    )
    return {(r["vendor"], r["data_type"]): r["day"] for r in rows}


def day_start_timestamp(day: date) -> float:
    """The Unix time of the day's UTC midnight."""
    return datetime.combine(day, time(), tzinfo=UTC).timestamp()
