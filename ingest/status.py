"""`ingest status`: what the ledger holds, for people and for scripts."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from ingest.db import Connection
from ingest.ledger import JobStatus


async def collect_status(conn: Connection, *, failures: int = 10) -> dict[str, Any]:
    """Job counts by status and by (vendor, data type, status), the oldest pending job,
    and the most recent failures with their reasons."""
    by_status = {s.value: 0 for s in JobStatus}
    for r in await conn.fetch("SELECT status, count(*) AS n FROM ingest.jobs GROUP BY status"):
        by_status[r["status"]] = r["n"]
    groups = [
        {
            "vendor": r["vendor"],
            "data_type": r["data_type"],
            "time_resolution": r["time_resolution"],
            "status": r["status"],
            "count": r["n"],
            "rows_loaded": int(r["rows"] or 0),
        }
        for r in await conn.fetch(
            """
            SELECT vendor, data_type, time_resolution, status, count(*) AS n,
                   sum(rows_loaded) AS rows
            FROM ingest.jobs GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
            """
        )
    ]
    oldest = await conn.fetchrow(
        """
        SELECT id, vendor, data_type, scope, day, created_at, run_after, attempts
        FROM ingest.jobs WHERE status = 'pending' ORDER BY created_at, id LIMIT 1
        """
    )
    recent = await conn.fetch(
        """
        SELECT id, vendor, data_type, time_resolution, scope, day, status, attempts,
               last_error, updated_at
        FROM ingest.jobs WHERE last_error IS NOT NULL AND status IN ('pending', 'dead')
        ORDER BY updated_at DESC LIMIT $1
        """,
        failures,
    )
    return {
        "jobs": by_status,
        "by_type": groups,
        "oldest_pending": _plain(dict(oldest)) if oldest else None,
        "recent_failures": [_plain(dict(r)) for r in recent],
    }


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}


def format_status(status: dict[str, Any]) -> str:
    """A short report for a terminal."""
    jobs = status["jobs"]
    lines = ["jobs: " + ", ".join(f"{k} {v}" for k, v in jobs.items())]
    if status["by_type"]:
        lines.append("")
        lines.append(
            f"{'vendor':<11} {'data type':<26} {'res':<8} {'status':<8} {'jobs':>6} {'rows':>10}"
        )
        for g in status["by_type"]:
            lines.append(
                f"{g['vendor']:<11} {g['data_type']:<26} {g['time_resolution']:<8} "
                f"{g['status']:<8} {g['count']:>6} {g['rows_loaded']:>10}"
            )
    oldest = status["oldest_pending"]
    if oldest:
        created = datetime.fromisoformat(oldest["created_at"])
        lines.append("")
        lines.append(
            f"oldest pending: job {oldest['id']} {oldest['vendor']} {oldest['data_type']} "
            f"{oldest['scope']} {oldest['day']} (queued {created:%Y-%m-%d %H:%M:%S}, "
            f"{oldest['attempts']} tries)"
        )
    if status["recent_failures"]:
        lines.append("")
        lines.append("recent failures:")
        for f in status["recent_failures"]:
            lines.append(
                f"  job {f['id']} {f['vendor']} {f['data_type']} {f['scope']} {f['day']} "
                f"[{f['status']}, {f['attempts']} tries]: {f['last_error']}"
            )
    return "\n".join(lines)


def to_json(status: dict[str, Any]) -> str:
    return json.dumps(status, sort_keys=True)
