"""The metrics: ledger gauges read from a real database, and the counters callers feed."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest

from ingest import ledger
from ingest.domain import JobSpec, Scope, Vendor
from ingest.metrics import JOB_STATUSES, VENDORS, Metrics
from ingest.pipeline import Outcome

DAY = date(2026, 3, 10)
ALICE = "vidicenter.example.com/alice"


def sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


async def add_job(
    pool: asyncpg.Pool,
    *,
    status: str,
    vendor: str = "vidicenter",
    data_type: str = "viewers",
    scope: str = "location:1",
    day: date = DAY,
    export_query: str | None = None,
    reserved_s_ago: float | None = None,
    finished_at: datetime | None = None,
    account: str | None = None,
    complete: bool = True,
) -> None:
    if account is None:
        account = scope.removeprefix("stream:") if vendor == "angus" else ALICE
    await pool.execute(
        """
        INSERT INTO ingest.jobs (vendor, data_type, time_resolution, scope, day, status,
                                 export_query, export_reserved_at, finished_at, account,
                                 complete)
        VALUES ($1, $2, '1h', $3, $4, $5, $6,
                now() - make_interval(secs => $7::double precision), $8, $9, $10)
        """,
        vendor,
        data_type,
        scope,
        day,
        status,
        export_query,
        reserved_s_ago,
        finished_at,
        account,
        complete,
    )


async def test_every_vendor_and_status_is_exported_as_zero_on_an_empty_ledger(
    pool: asyncpg.Pool,
) -> None:
    metrics = Metrics()
    await metrics.refresh(pool)

    for vendor in VENDORS:
        for status in JOB_STATUSES:
            assert sample(metrics, "ingest_jobs", vendor=vendor, status=status) == 0
    assert sample(metrics, "ingest_exports_in_flight") == 0


async def test_job_counts_follow_the_ledger_and_return_to_zero_when_jobs_go(
    pool: asyncpg.Pool,
) -> None:
    for i in range(2):
        await add_job(pool, status="done", scope=f"location:{i}")
    await add_job(pool, status="dead", vendor="angus", data_type="entities", scope="stream:s")
    metrics = Metrics()

    await metrics.refresh(pool)
    assert sample(metrics, "ingest_jobs", vendor="vidicenter", status="done") == 2
    assert sample(metrics, "ingest_jobs", vendor="angus", status="dead") == 1
    assert sample(metrics, "ingest_jobs", vendor="angus", status="pending") == 0

    await pool.execute("DELETE FROM ingest.jobs")
    await metrics.refresh(pool)
    assert sample(metrics, "ingest_jobs", vendor="vidicenter", status="done") == 0
    assert sample(metrics, "ingest_jobs", vendor="angus", status="dead") == 0


async def test_exports_in_flight_count_distinct_fresh_queries_of_open_vidicenter_jobs(
    pool: asyncpg.Pool,
) -> None:
    # two jobs riding on one export hold one place
    await add_job(pool, status="running", scope="location:1", export_query="q1", reserved_s_ago=5)
    await add_job(pool, status="running", scope="location:2", export_query="q1", reserved_s_ago=5)
    # handed back: the export still runs at the vendor
    await add_job(pool, status="pending", scope="location:3", export_query="q2", reserved_s_ago=5)
    # no place: finished, or reserved too long ago, or another vendor
    await add_job(pool, status="done", scope="location:4", export_query="q3", reserved_s_ago=5)
    await add_job(
        pool, status="running", scope="location:5", export_query="q4", reserved_s_ago=8000
    )
    await add_job(
        pool,
        status="running",
        vendor="angus",
        data_type="entities",
        scope="stream:s",
        export_query="q5",
        reserved_s_ago=5,
    )
    metrics = Metrics()  # stale after 2 * 3600 + 600 s, the default export deadline's rule

    await metrics.refresh(pool)

    assert sample(metrics, "ingest_exports_in_flight") == 2


async def test_exports_in_flight_agree_with_the_export_cap(pool: asyncpg.Pool) -> None:
    stale_after_s = 900.0
    await add_job(pool, status="pending", scope="location:1", export_query="q1", reserved_s_ago=5)
    await add_job(pool, status="running", scope="location:2", export_query="q2", reserved_s_ago=60)
    # stale under this deadline (not under the default one): its place is free again
    await add_job(pool, status="pending", scope="location:3", export_query="q3", reserved_s_ago=950)
    metrics = Metrics(export_stale_after_s=stale_after_s)
    await metrics.refresh(pool)
    in_flight = sample(metrics, "ingest_exports_in_flight")
    assert in_flight == 2

    spec = JobSpec(
        Vendor.vidicenter, "viewers", "1h", Scope.location(9), DAY + timedelta(days=1), {}, ALICE
    )
    async with pool.acquire() as conn:
        ids = await ledger.enqueue_jobs(conn, [spec], force=False)
        (job,) = await ledger.claim_batch(
            conn, Vendor.vidicenter, owner="w", lease_s=60, only_ids=ids
        )
        full = await ledger.reserve_export(
            conn, [job], "q9", owner="w", max_exports=2, stale_after_s=stale_after_s
        )
        room = await ledger.reserve_export(
            conn, [job], "q9", owner="w", max_exports=3, stale_after_s=stale_after_s
        )
    assert (full, room) == (False, True)


async def test_newest_complete_day_is_per_account_the_newest_day_whose_every_job_is_final(
    pool: asyncpg.Pool,
) -> None:
    yesterday, today = DAY - timedelta(days=1), DAY
    bob = "vidicenter.example.com/bob"
    await add_job(pool, status="done", scope="location:1", day=yesterday)
    await add_job(pool, status="done", scope="location:2", day=yesterday)
    await add_job(pool, status="done", scope="location:1", day=today)
    await add_job(pool, status="pending", scope="location:2", day=today)
    await add_job(pool, status="done", data_type="ots", day=today)
    # bob's today is done, but the vendor did not have all of it yet: not complete
    await add_job(pool, status="done", account=bob, day=yesterday)
    await add_job(pool, status="done", account=bob, day=today, complete=False)
    # a dead job keeps its day open; no complete day at all: no sample
    await add_job(pool, status="dead", vendor="angus", data_type="entities", scope="stream:s")
    metrics = Metrics()

    await metrics.refresh(pool)

    def day_start(day: date) -> float:
        return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()

    name = "ingest_newest_complete_day_timestamp_seconds"
    alice = {"vendor": "vidicenter", "account": ALICE}
    assert sample(metrics, name, **alice, data_type="viewers") == day_start(yesterday)
    assert sample(metrics, name, **alice, data_type="ots") == day_start(today)
    labels = {"vendor": "vidicenter", "account": bob, "data_type": "viewers"}
    assert sample(metrics, name, **labels) == day_start(yesterday)
    assert sample(metrics, name, vendor="angus", account="s", data_type="entities") is None


async def test_last_success_comes_from_the_ledger_so_a_new_process_sees_it(
    pool: asyncpg.Pool,
) -> None:
    older = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)
    newer = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
    await add_job(pool, status="done", scope="location:1", finished_at=older)
    await add_job(pool, status="done", scope="location:2", finished_at=newer)
    # a dead job's end is no success
    await add_job(pool, status="dead", scope="location:3", finished_at=newer + timedelta(minutes=5))
    metrics = Metrics()  # a fresh process: nothing recorded in memory

    await metrics.refresh(pool)

    name = "ingest_last_success_timestamp_seconds"
    assert sample(metrics, name, vendor="vidicenter") == newer.timestamp()
    assert sample(metrics, name, vendor="angus") is None


# --- what callers feed ------------------------------------------------------------------


def test_a_vendor_accounts_pause_is_counted_once_per_transition_to_paused() -> None:
    bob = "vidicenter.example.com/bob"
    metrics = Metrics(accounts={"vidicenter": [ALICE, bob]})
    alice = {"vendor": "vidicenter", "account": ALICE}
    assert sample(metrics, "ingest_vendor_paused", **alice) == 0
    assert sample(metrics, "ingest_vendor_pauses_total", **alice) == 0

    metrics.vendor_paused("vidicenter", True, ALICE)
    metrics.vendor_paused("vidicenter", True, ALICE)
    assert sample(metrics, "ingest_vendor_paused", **alice) == 1
    assert sample(metrics, "ingest_vendor_pauses_total", **alice) == 1

    metrics.vendor_paused("vidicenter", False, ALICE)
    metrics.vendor_paused("vidicenter", True, ALICE)
    assert sample(metrics, "ingest_vendor_pauses_total", **alice) == 2
    assert sample(metrics, "ingest_vendor_paused", vendor="vidicenter", account=bob) == 0
    assert sample(metrics, "ingest_vendor_pauses_total", vendor="vidicenter", account=bob) == 0


def test_failures_are_counted_by_vendor_outcome_and_error_class() -> None:
    metrics = Metrics()
    metrics.failure("vidicenter", "retry", "VendorUnavailable", 3)
    metrics.failure("vidicenter", "dead", "BadPayload")
    name = "ingest_job_failures_total"
    assert (
        sample(metrics, name, vendor="vidicenter", outcome="retry", reason="VendorUnavailable") == 3
    )
    assert sample(metrics, name, vendor="vidicenter", outcome="dead", reason="BadPayload") == 1
    with pytest.raises(ValueError, match="expected one of"):
        metrics.failure("vidicenter", "done", "BadPayload")


def test_job_durations_and_budget_waits_accumulate() -> None:
    metrics = Metrics()
    metrics.observe_job("angus", 12.5)
    metrics.observe_job("angus", 0.5)
    metrics.budget_waited("vidicenter:alice", 1.5)
    metrics.budget_waited("vidicenter:alice", 2.0)
    assert sample(metrics, "ingest_job_duration_seconds_count", vendor="angus") == 2
    assert sample(metrics, "ingest_job_duration_seconds_sum", vendor="angus") == 13
    assert sample(metrics, "ingest_job_duration_seconds_bucket", vendor="angus", le="1.0") == 1
    assert sample(metrics, "ingest_job_duration_seconds_count", vendor="vidicenter") == 0
    assert sample(metrics, "ingest_budget_wait_seconds_total", account="vidicenter:alice") == 3.5


def test_record_counts_outcomes_and_rows() -> None:
    metrics = Metrics()
    metrics.record("vidicenter", Outcome(done=2, failed=1, rows=48, table="vidicenter.viewers"))
    assert sample(metrics, "ingest_job_outcomes_total", vendor="vidicenter", outcome="done") == 2
    assert sample(metrics, "ingest_job_outcomes_total", vendor="vidicenter", outcome="retry") == 1
    assert sample(metrics, "ingest_rows_loaded_total", table="vidicenter.viewers") == 48


def test_a_batchs_outcome_feeds_failures_by_reason_and_the_duration_histogram() -> None:
    metrics = Metrics()
    metrics.record("vidicenter", Outcome(failed=2, reason="BadPayload", seconds=1.5))
    metrics.record("vidicenter", Outcome(dead=1, reason="VendorRejected", seconds=0.5))
    metrics.record("vidicenter", Outcome(done=3, rows=10, table="vidicenter.ots", seconds=2.0))
    metrics.record("vidicenter", Outcome(released=3))  # no place: not a job's duration
    metrics.record("vidicenter", Outcome(split=4, reason="ExportFailed"))  # not one either

    failures = "ingest_job_failures_total"
    labels = {"vendor": "vidicenter"}
    assert sample(metrics, failures, **labels, outcome="retry", reason="BadPayload") == 2
    assert sample(metrics, failures, **labels, outcome="dead", reason="VendorRejected") == 1
    assert sample(metrics, failures, **labels, outcome="split", reason="ExportFailed") == 4
    assert sample(metrics, "ingest_job_outcomes_total", **labels, outcome="split") == 4
    assert sample(metrics, "ingest_job_outcomes_total", **labels, outcome="handed_back") == 3
    assert sample(metrics, "ingest_job_duration_seconds_count", **labels) == 3
    assert sample(metrics, "ingest_job_duration_seconds_sum", **labels) == 4.0
