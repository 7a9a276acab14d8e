"""`ingest status`: what the ledger holds, for people and for scripts."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import Any

from ingest.commands import EXIT_OK
from ingest.config import Settings
from ingest.ledger import exports, reports
from ingest.ledger.jobs import Executor
from ingest.wiring import open_pool, require_migrated


async def main(args: argparse.Namespace, settings: Settings) -> int:
    async with open_pool(settings) as pool:
        await require_migrated(pool)
        stale_after_s = exports.stale_after_s(settings.vidicenter_export_deadline_s)
        status = await collect_status(pool, export_stale_after_s=stale_after_s)
    print(to_json(status) if args.json else format_status(status))
    return EXIT_OK


async def collect_status(
    conn: Executor,
    *,
    failures: int = 10,
    export_stale_after_s: float = exports.stale_after_s(3600.0),
) -> dict[str, Any]:
    """Job counts by status and by (vendor, data type, status), the oldest pending job,
    the most recent failures with their reasons, and the export places held by workers
    that are gone (by worker)."""
    oldest = await reports.oldest_pending(conn)
    return {
        "orphaned_exports": await exports.orphaned_exports(
            conn, stale_after_s=export_stale_after_s
        ),
        "jobs": await reports.status_counts(conn),
        "by_type": await reports.counts_by_type(conn),
        "oldest_pending": reports.plain(oldest) if oldest else None,
        "recent_failures": [
            reports.plain(r) for r in await reports.recent_failures(conn, limit=failures)
        ],
    }


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
    if orphaned := status["orphaned_exports"]:
        lines.append("")
        lines.append(
            f"export places held by workers that are gone: {sum(orphaned.values())} "
            f"({', '.join(f'{w}: {n}' for w, n in orphaned.items())}); "
            "taken until their jobs' leases run out"
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
