"""Prometheus metrics of one worker process (a registry of its own, no globals)."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import aiohttp
import asyncpg
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from ingest.pipeline import Outcome


class Metrics:
    """The worker's metrics; the ledger's gauges are refreshed at each scrape."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.jobs = Gauge(
            "ingest_jobs", "Jobs in the ledger by status.", ["vendor", "status"], registry=r
        )
        self.exports_in_flight = Gauge(
            "ingest_exports_in_flight", "VidiCenter exports out at the vendor.", registry=r
        )
        self.rows = Counter("ingest_rows_loaded", "Rows loaded, by table.", ["table"], registry=r)
        self.outcomes = Counter(
            "ingest_job_outcomes",
            "Jobs finished by this process.",
            ["vendor", "outcome"],
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
        self.last_success = Gauge(
            "ingest_last_success_timestamp_seconds",
            "When this process last committed a job, per vendor.",
            ["vendor"],
            registry=r,
        )

    def record(self, vendor: str, outcome: Outcome) -> None:
        if outcome.done:
            self.outcomes.labels(vendor, "done").inc(outcome.done)
            self.last_success.labels(vendor).set(time.time())
        if outcome.failed:
            self.outcomes.labels(vendor, "retry").inc(outcome.failed)
        if outcome.dead:
            self.outcomes.labels(vendor, "dead").inc(outcome.dead)
        if outcome.released:
            self.outcomes.labels(vendor, "handed_back").inc(outcome.released)
        if outcome.table:
            self.rows.labels(outcome.table).inc(outcome.rows)

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
        rows = await pool.fetch(
            "SELECT vendor, status, count(*) AS n FROM ingest.jobs GROUP BY 1, 2"
        )
        self.jobs.clear()
        for row in rows:
            self.jobs.labels(row["vendor"], row["status"]).set(row["n"])
        out = await pool.fetchval(
            "SELECT count(DISTINCT export_query) FROM ingest.jobs"
            " WHERE export_query IS NOT NULL AND status IN ('pending', 'running')"
        )
        self.exports_in_flight.set(out)

    def render(self) -> bytes:
        return generate_latest(self.registry)
