"""Prometheus metrics of one worker process (a registry of its own, no globals).

Two kinds: what this process saw (counters and histograms, fed by the methods below) and
what the job ledger says (gauges, read from the database at each scrape by `refresh`, so
they survive restarts and agree across replicas).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import SimpleNamespace
from typing import Any, Final

import aiohttp
import asyncpg
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from ingest.domain import JobStatus, Vendor
from ingest.ledger import exports, gauges
from ingest.pipeline import Outcome

VENDORS: Final = tuple(v.value for v in Vendor)
JOB_STATUSES: Final = tuple(s.value for s in JobStatus)
FAILURE_OUTCOMES: Final = ("retry", "dead", "split")

# with the default INGEST_VIDICENTER_EXPORT_DEADLINE_S
DEFAULT_EXPORT_STALE_AFTER_S: Final = exports.stale_after_s(3600.0)


class Metrics:
    """The worker's metrics; the ledger's gauges are refreshed at each scrape."""

    def __init__(
        self,
        *,
        export_stale_after_s: float = DEFAULT_EXPORT_STALE_AFTER_S,
        accounts: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        """`accounts`: each vendor's accounts, whose pause series start at zero."""
        self.export_stale_after_s = export_stale_after_s
        self.registry = CollectorRegistry()
        r = self.registry
        # --- read from the ledger at each scrape
        self.jobs = Gauge(
            "ingest_jobs", "Jobs in the ledger by status.", ["vendor", "status"], registry=r
        )
        self.exports_in_flight = Gauge(
            "ingest_exports_in_flight",
            "VidiCenter export places in use, counted as the export cap counts them.",
            registry=r,
        )
        self.export_places_orphaned = Gauge(
            "ingest_export_places_orphaned",
            "VidiCenter export places held by running jobs of workers that are gone (no"
            " presence beat); they stay taken until those jobs' leases run out.",
            registry=r,
        )
        self.last_success = Gauge(
            "ingest_last_success_timestamp_seconds",
            "When the vendor's most recent done job finished (from the ledger).",
            ["vendor"],
            registry=r,
        )
        self.newest_complete_day = Gauge(
            "ingest_newest_complete_day_timestamp_seconds",
            "UTC midnight starting the newest day all of whose jobs are done and final.",
            ["vendor", "account", "data_type"],
            registry=r,
        )
        # --- what this process saw
        self.rows = Counter("ingest_rows_loaded", "Rows loaded, by table.", ["table"], registry=r)
        self.outcomes = Counter(
            "ingest_job_outcomes",
            "Jobs finished by this process.",
            ["vendor", "outcome"],
            registry=r,
        )
        self.failures = Counter(
            "ingest_job_failures",
            "Job failures by what became of the job (retry or dead) and the error's class.",
            ["vendor", "outcome", "reason"],
            registry=r,
        )
        self.job_duration = Histogram(
            "ingest_job_duration_seconds",
            "Time from claiming a job to its end, export waits included.",
            ["vendor"],
            buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200),
            registry=r,
        )
        self.budget_wait = Counter(
            "ingest_budget_wait_seconds",
            "Seconds spent waiting for room in a vendor account's call budget.",
            ["account"],
            registry=r,
        )
        self.vendor_paused_gauge = Gauge(
            "ingest_vendor_paused",
            "1 while work for the vendor account is paused (credentials refused), else 0.",
            ["vendor", "account"],
            registry=r,
        )
        self.vendor_pauses = Counter(
            "ingest_vendor_pauses",
            "Times work for the vendor account was paused.",
            ["vendor", "account"],
            registry=r,
        )
        self.calls = Counter(
            "ingest_vendor_calls",
            "HTTP calls to the vendors by status code.",
            ["host", "status"],
            registry=r,
        )
        self.poll_wait = Histogram(
            "ingest_export_poll_wait_seconds",
            "Waits between polls of an export.",
            buckets=(1, 2, 5, 10, 20, 30, 60, 120),
            registry=r,
        )
        self._paused: dict[tuple[str, str], bool] = {}
        for vendor in VENDORS:
            # present from the start, so that dashboards and rate() see zeros, not gaps
            for account in (accounts or {}).get(vendor, ()):
                self.vendor_paused_gauge.labels(vendor, account).set(0)
                self.vendor_pauses.labels(vendor, account)
            self.job_duration.labels(vendor)
            for status in JOB_STATUSES:
                self.jobs.labels(vendor, status).set(0)

    def record(self, vendor: str, outcome: Outcome) -> None:
        """Count what became of a batch of jobs and the rows it loaded."""
        if outcome.done:
            self.outcomes.labels(vendor, "done").inc(outcome.done)
        if outcome.failed:
            self.outcomes.labels(vendor, "retry").inc(outcome.failed)
        if outcome.dead:
            self.outcomes.labels(vendor, "dead").inc(outcome.dead)
        if outcome.released:
            self.outcomes.labels(vendor, "handed_back").inc(outcome.released)
        if outcome.split:
            self.outcomes.labels(vendor, "split").inc(outcome.split)
        if outcome.table:
            self.rows.labels(outcome.table).inc(outcome.rows)
        if outcome.reason is not None:
            if outcome.failed:
                self.failure(vendor, "retry", outcome.reason, outcome.failed)
            if outcome.dead:
                self.failure(vendor, "dead", outcome.reason, outcome.dead)
            if outcome.split:
                self.failure(vendor, "split", outcome.reason, outcome.split)
        if outcome.done or outcome.failed or outcome.dead:
            self.observe_job(vendor, outcome.seconds)

    def observe_job(self, vendor: str, seconds: float) -> None:
        """One job's duration, whatever its end."""
        self.job_duration.labels(vendor).observe(seconds)

    def budget_waited(self, account: str, seconds: float) -> None:
        """Time spent waiting for the account's call budget."""
        self.budget_wait.labels(account).inc(seconds)

    def failure(self, vendor: str, outcome: str, reason: str, n: int = 1) -> None:
        """`n` jobs failed with error class `reason`; `outcome` is `retry`, `dead` or `split`."""
        if outcome not in FAILURE_OUTCOMES:
            raise ValueError(f"failure outcome {outcome!r}: expected one of {FAILURE_OUTCOMES}")
        self.failures.labels(vendor, outcome, reason).inc(n)

    def vendor_paused(self, vendor: str, paused: bool, account: str = "") -> None:
        """The vendor account's work is paused (or resumed); each pause is counted once."""
        if paused and not self._paused.get((vendor, account), False):
            self.vendor_pauses.labels(vendor, account).inc()
        self._paused[(vendor, account)] = paused
        self.vendor_paused_gauge.labels(vendor, account).set(1 if paused else 0)

    def trace_config(self) -> aiohttp.TraceConfig:
        """Counts every vendor call by host and status (or `error`)."""
        trace = aiohttp.TraceConfig()

        async def on_end(_s: Any, _c: SimpleNamespace, params: Any) -> None:
            self.calls.labels(params.url.host or "", str(params.response.status)).inc()

        async def on_error(_s: Any, _c: SimpleNamespace, params: Any) -> None:
            self.calls.labels(params.url.host or "", "error").inc()

        trace.on_request_end.append(on_end)
        trace.on_request_exception.append(on_error)
        return trace

    async def refresh(self, pool: asyncpg.Pool) -> None:
        """Read the ledger's gauges, all from one snapshot; on error the last values stay."""
        async with (
            pool.acquire(timeout=10) as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            jobs = await gauges.count_jobs(conn)
            out = await exports.exports_out(conn, stale_after_s=self.export_stale_after_s)
            orphaned = await exports.orphaned_exports(conn, stale_after_s=self.export_stale_after_s)
            success = await gauges.last_success(conn)
            complete = await gauges.newest_complete_days(conn)
        self.jobs.clear()
        for vendor in VENDORS:
            for status in JOB_STATUSES:
                self.jobs.labels(vendor, status).set(0)
        for (vendor, status), n in jobs.items():
            self.jobs.labels(vendor, status).set(n)
        self.exports_in_flight.set(out)
        self.export_places_orphaned.set(sum(orphaned.values()))
        self.last_success.clear()
        for vendor, at in success.items():
            self.last_success.labels(vendor).set(at)
        self.newest_complete_day.clear()
        for (vendor, account, data_type), day in complete.items():
            self.newest_complete_day.labels(vendor, account, data_type).set(
                gauges.day_start_timestamp(day)
            )

    def render(self) -> bytes:
        return generate_latest(self.registry)
