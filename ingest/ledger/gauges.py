"""What the metrics read from the job ledger at each scrape: every statement is here.

Read from the table, not from the process, so the figures survive restarts and agree
across replicas.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from ingest.ledger.jobs import Executor as Reader


async def count_jobs(conn: Reader) -> dict[tuple[str, str], int]:
    """Jobs by (vendor, status); a pair with no job is absent."""
    rows = await conn.fetch(
        "SELECT vendor, status, count(*) AS n FROM ingest.jobs GROUP BY vendor, status"
    )
    return {(r["vendor"], r["status"]): int(r["n"]) for r in rows}


async def last_success(conn: Reader) -> dict[str, float]:
    """Per vendor, when its most recent done job finished (Unix seconds); no done job: absent."""
    rows = await conn.fetch(
        "SELECT vendor, max(finished_at) AS at FROM ingest.jobs"
        " WHERE status = 'done' AND finished_at IS NOT NULL GROUP BY vendor"
    )
    return {r["vendor"]: r["at"].timestamp() for r in rows}


async def newest_complete_days(conn: Reader) -> dict[tuple[str, str, str], date]:
    """Per (vendor, account, data type), the newest day all of whose jobs are done and
    final (the vendor had the whole day when it was fetched).

    A day with one job pending, running, dead or still open is not complete; a data type
    without a complete day is absent.
    """
    rows = await conn.fetch(
        """
        SELECT vendor, account, data_type, max(day) AS day FROM (
            SELECT vendor, account, data_type, day FROM ingest.jobs
            GROUP BY vendor, account, data_type, day
            HAVING bool_and(status = 'done' AND complete)
        ) complete
        GROUP BY vendor, account, data_type
        """
    )
    return {(r["vendor"], r["account"], r["data_type"]): r["day"] for r in rows}


def day_start_timestamp(day: date) -> float:
    """The Unix time of the day's UTC midnight."""
    return datetime.combine(day, time(), tzinfo=UTC).timestamp()
