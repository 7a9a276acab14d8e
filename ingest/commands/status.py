"""`ingest status`: what the ledger holds, for people and for scripts."""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from operator import attrgetter
from typing import Any

from ingest.commands import EXIT_DEAD, EXIT_OK
from ingest.config import Settings
from ingest.ledger import reports
from ingest.ledger.jobs import Executor
from ingest.wiring import open_pool, require_migrated


async def main(args: argparse.Namespace, settings: Settings) -> int:
    async with open_pool(settings) as pool:
        await require_migrated(pool)
        status = await collect_status(pool)
    print(to_json(status) if args.json else format_status(status))
    return EXIT_DEAD if status["jobs"]["dead"] else EXIT_OK


async def collect_status(conn: Executor, *, failures: int = 10) -> dict[str, Any]:
    """Job counts by status and by (vendor, data type, status), the oldest pending job,
    the most recent failures with their reasons, and each data type's days by state."""
    oldest = await reports.oldest_pending(conn)
    return {
        "coverage": coverage_of(await reports.coverage(conn)),
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
    if status["coverage"]:
        lines.append("")
        lines += format_coverage(status["coverage"])
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


STATES = ("done", "open", "dead", "missing")


def coverage_of(days: Sequence[reports.CoverageDay]) -> list[dict[str, Any]]:
    """Per data type (vendor, data type, resolution): its first and last day, how many
    days are in each state, and every day that is not done with its jobs by state."""
    out = []
    key = attrgetter("vendor", "data_type", "time_resolution")
    for (vendor, data_type, resolution), group in itertools.groupby(days, key=key):
        spans = list(group)
        out.append(
            {
                "vendor": vendor,
                "data_type": data_type,
                "time_resolution": resolution,
                "first_day": spans[0].day.isoformat(),
                "last_day": spans[-1].day.isoformat(),
                "days": {s: sum(d.state == s for d in spans) for s in STATES},
                "not_done": [
                    {
                        "day": d.day.isoformat(),
                        "state": d.state,
                        "done": d.done,
                        "open": d.open,
                        "dead": d.dead,
                    }
                    for d in spans
                    if d.state != "done"
                ],
            }
        )
    return out


def format_coverage(coverage: Iterable[dict[str, Any]], *, most: int = 6) -> list[str]:
    """Per data type, its days by state, then the days not done as ranges of one state."""
    lines = ["days by data type (a day is dead if one job is, open if one is pending or running):"]
    for c in coverage:
        counts = ", ".join(f"{n} {s}" for s, n in c["days"].items() if n)
        lines.append(
            f"  {c['vendor']} {c['data_type']} {c['time_resolution']}, "
            f"{c['first_day']}..{c['last_day']}: {counts}"
        )
        ranges = day_ranges((date.fromisoformat(d["day"]), d["state"]) for d in c["not_done"])
        for first, last, state in ranges[:most]:
            span = first.isoformat() if first == last else f"{first}..{last}"
            lines.append(f"    {state:<8} {span}")
        if len(ranges) > most:
            lines.append(f"    ... {len(ranges) - most} more (--json lists every day)")
    return lines


def day_ranges(days: Iterable[tuple[date, str]]) -> list[tuple[date, date, str]]:
    """Consecutive days of the same state as (first, last, state), in order."""
    ranges: list[tuple[date, date, str]] = []
    for day, state in days:
        if ranges and ranges[-1][2] == state and ranges[-1][1] + timedelta(days=1) == day:
            ranges[-1] = (ranges[-1][0], day, state)
        else:
            ranges.append((day, day, state))
    return ranges
