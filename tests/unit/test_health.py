"""The health state /readyz reports: pauses, a stalled worker, the database's outages."""

from __future__ import annotations

import logging

from structlog.testing import capture_logs

from ingest.db import PoolFloorNoise, route_pool_warnings
from ingest.health import DatabaseWatch, Health


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_worker_with_due_jobs_and_nothing_moving_past_the_stall_time_is_stalled() -> None:
    clock = Clock()
    health = Health(stall_s=600, vendors=["vidicenter"], clock=clock)
    clock.now += 599
    assert health.reasons(due=3) == []
    clock.now += 2
    (reason,) = health.reasons(due=3)
    assert reason.startswith("stalled: 3 job(s) due and none moved for 601 s")
    assert "INGEST_STALL_S=600" in reason


def test_a_worker_with_nothing_due_is_never_stalled() -> None:
    clock = Clock()
    health = Health(stall_s=600, clock=clock)
    clock.now += 10_000
    assert health.stalled(due=0) is None


def test_a_job_moving_starts_the_stall_time_again() -> None:
    clock = Clock()
    health = Health(stall_s=600, clock=clock)
    clock.now += 500
    health.progressed()
    clock.now += 500
    assert health.stalled(due=1) is None
    clock.now += 101
    assert health.stalled(due=1) is not None


def test_a_batch_being_worked_is_not_a_stall_however_long_it_takes() -> None:
    # a long export being polled is work: the stall is loops that find nothing to do
    clock = Clock()
    health = Health(stall_s=600, clock=clock)
    with health.working():
        clock.now += 3600
        assert health.stalled(due=5) is None
    assert health.stalled(due=5) is not None


def test_a_stall_time_of_0_turns_the_check_off() -> None:
    clock = Clock()
    health = Health(stall_s=0, clock=clock)
    clock.now += 10_000
    assert health.stalled(due=5) is None


def test_a_paused_vendor_is_a_reason_with_its_why_and_its_jobs_do_not_count_as_due() -> None:
    health = Health(stall_s=600, vendors=["vidicenter", "angus"])
    health.pause("vidicenter", "credentials refused: vidicenter answered 401")
    assert health.paused == {"vidicenter": "credentials refused: vidicenter answered 401"}
    assert health.reasons(due=0) == [
        "vidicenter paused: credentials refused: vidicenter answered 401"
    ]
    assert health.working_vendors() == ["angus"]
    health.resume("vidicenter")
    assert (health.paused, health.reasons(due=0)) == ({}, [])
    assert health.working_vendors() == ["vidicenter", "angus"]


def test_an_outage_seen_by_many_loops_is_logged_once_lost_and_once_back_with_its_length() -> None:
    clock = Clock()
    watch = DatabaseWatch(clock)
    with capture_logs() as logs:
        watch.answered()  # nothing to say while it answers
        for _ in range(24):  # every loop, every retry
            watch.lost(ConnectionRefusedError(111, "Connect call failed"))
            clock.now += 0.625
        watch.answered()
        watch.answered()
    events = [(e["event"], e["log_level"]) for e in logs]
    assert events == [("db.lost", "warning")] + [("db.unavailable", "debug")] * 23 + [
        ("db.back", "info")
    ]
    assert logs[0]["error"] == "ConnectionRefusedError: [Errno 111] Connect call failed"
    assert logs[-1]["outage_s"] == 15.0
    assert not watch.down


def test_asyncpgs_pool_floor_warning_becomes_one_debug_event_of_ours() -> None:
    pool_log = logging.getLogger("asyncpg.pool")
    seen: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = seen.append  # type: ignore[method-assign]
    pool_log.addHandler(handler)
    try:
        route_pool_warnings()
        route_pool_warnings()  # once per process, however many pools
        with capture_logs() as logs:
            try:
                raise ConnectionRefusedError(111, "Connect call failed")
            except ConnectionRefusedError:
                pool_log.warning(
                    "Failed to restore the pool connection floor; retrying", exc_info=True
                )
            pool_log.warning("something else")
    finally:
        pool_log.removeHandler(handler)
    assert sum(isinstance(f, PoolFloorNoise) for f in pool_log.filters) == 1
    assert logs == [
        {
            "event": "db.pool_reconnect_failed",
            "log_level": "debug",
            "error": "ConnectionRefusedError: [Errno 111] Connect call failed",
        }
    ]
    assert [r.getMessage() for r in seen] == ["something else"]  # other records pass
