"""Open days: the days whose jobs loaded what the vendor had, before it had all of it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from ingest.ledger.jobs import Executor


@dataclass(frozen=True)
class OpenDays:
    """The open days of one data type of one account (`ingest run` refreshes them)."""

    vendor: str
    account: str
    data_type: str
    count: int
    days: list[date]  # the oldest ones, at most the limit asked for

    def as_json(self) -> dict[str, object]:
        return {
            "vendor": self.vendor,
            "account": self.account,
            "data_type": self.data_type,
            "count": self.count,
            "days": [d.isoformat() for d in self.days],
        }


async def open_days(conn: Executor, *, limit: int = 7) -> list[OpenDays]:
    """Per vendor, account and data type, the days with a job done but not complete."""
    rows = await conn.fetch(
        """
        SELECT vendor, account, data_type, count(DISTINCT day) AS n,
               (array_agg(DISTINCT day ORDER BY day))[1:$1] AS days
        FROM ingest.jobs WHERE status = 'done' AND NOT complete
        GROUP BY vendor, account, data_type
        ORDER BY vendor, account, data_type
        """,
        limit,
    )
    return [
        OpenDays(r["vendor"], r["account"], r["data_type"], int(r["n"]), list(r["days"]))
        for r in rows
    ]
