"""`ingest jobs list|retry|cancel`: the ledger's jobs by filter, for operators."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ingest.commands import EXIT_OK
from ingest.config import Settings
from ingest.domain import JobStatus
from ingest.errors import UsageError
from ingest.ledger import admin, reports
from ingest.ledger.admin import JobFilter
from ingest.wiring import open_pool, require_migrated


async def main(args: argparse.Namespace, settings: Settings) -> int:
    where = job_filter(args)
    async with open_pool(settings) as pool:
        await require_migrated(pool)
        if args.action == "list":
            total, rows = await admin.list_jobs(pool, where, limit=args.limit or None)
            print(to_json(total, rows) if args.json else format_jobs(rows))
            if total > len(rows) and not args.json:
                print(f"{total} jobs match, {len(rows)} shown (--limit 0: all)", file=sys.stderr)
        elif args.action == "retry":
            n = await admin.retry_dead(pool, where)
            print(f"{n} dead job(s) back to pending: `ingest run` works them")
        else:
            cancelled = await admin.cancel_jobs(pool, where)
            print(format_cancelled(cancelled))
    return EXIT_OK


def job_filter(args: argparse.Namespace) -> JobFilter:
    """The command's filter; UsageError for one that cannot match what the action acts on."""
    status = JobStatus(args.status) if args.status else None
    if args.first and args.last and args.first > args.last:
        raise UsageError(f"--from {args.first} is after --to {args.last}")
    if args.action == "retry" and status not in (None, JobStatus.dead):
        raise UsageError("--status: retry acts on dead jobs only")
    if args.action == "cancel":
        if status in (JobStatus.running, JobStatus.done):
            raise UsageError(
                "--status: cancel acts on pending and dead jobs (a running job belongs to a "
                "worker; a done one has its rows)"
            )
        if not any((status, args.vendor, args.data_type, args.first, args.last)):
            raise UsageError(
                "cancel needs a filter (--status, --vendor, --data-type, --from, --to)"
            )
    return JobFilter(
        status=status,
        vendor=args.vendor,
        data_type=args.data_type,
        first=args.first,
        last=args.last,
    )


def format_jobs(rows: list[dict[str, Any]]) -> str:
    """A table of jobs, one a line."""
    lines = [
        f"{'id':>8} {'vendor':<10} {'data type':<24} {'res':<7} {'scope':<18} {'day':<10} "
        f"{'status':<7} {'tries':>5} {'rows':>8}  last error"
    ]
    for r in rows:
        error = (r["last_error"] or "").splitlines()[0][:80] if r["last_error"] else ""
        rows_loaded = "" if r["rows_loaded"] is None else str(r["rows_loaded"])
        lines.append(
            f"{r['id']:>8} {r['vendor']:<10} {r['data_type']:<24} {r['time_resolution']:<7} "
            f"{r['scope']:<18} {r['day'].isoformat():<10} {r['status']:<7} "
            f"{r['attempts']:>5} {rows_loaded:>8}  {error}"
        )
    return "\n".join(lines) if rows else "no job matches"


def to_json(total: int, rows: list[dict[str, Any]]) -> str:
    jobs = [reports.plain({**r, "params": _params(r["params"])}) for r in rows]
    return json.dumps({"total": total, "jobs": jobs}, sort_keys=True)


def _params(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def format_cancelled(cancelled: admin.Cancelled) -> str:
    text = f"{cancelled.deleted} pending or dead job(s) cancelled (removed from the ledger)"
    if cancelled.kept_exports:
        text += (
            f"; {cancelled.kept_exports} pending job(s) kept: their export is out at the "
            "vendor and holds an export place until they finish"
        )
    return text
