"""The failure policy: one decision per error class, made without I/O."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date

import asyncpg
import pytest

from ingest.domain import Job, Scope, Vendor
from ingest.errors import (
    AuthError,
    BadPayload,
    BodyUnreadable,
    ConfigError,
    ExportFailed,
    ExportPending,
    LeaseLost,
    RateLimited,
    RowError,
    TerminalError,
    VendorRejected,
    VendorUnavailable,
)
from ingest.policy import Action, RetryPolicy, decide

POLICY = RetryPolicy(max_attempts=5, base_s=30.0, max_s=3600.0, rebuilds_after_failure=2)
JOB = Job(
    id=1,
    vendor=Vendor.vidicenter,
    data_type="viewers",
    time_resolution="1h",
    params={},
    scope=Scope.location(7),
    day=date(2024, 3, 5),
    attempts=1,
    force=False,
    export_query="data_type=viewers",
    export_started=True,
)
ANGUS_JOB = replace(JOB, vendor=Vendor.angus, scope=Scope.stream("s1"), export_query=None)


def test_lease_lost_records_nothing() -> None:
    assert decide(LeaseLost(), JOB, POLICY).action is Action.abandon


def test_refused_vidicenter_credentials_hand_the_jobs_back_untried() -> None:
    decision = decide(AuthError("vidicenter answered 401: bad token"), JOB, POLICY)
    assert decision.action is Action.hand_back
    assert decision.reason == "AuthError: vidicenter answered 401: bad token"


def test_refused_angus_credentials_kill_that_streams_job_alone() -> None:
    assert decide(AuthError("no"), ANGUS_JOB, POLICY).action is Action.dead


@pytest.mark.parametrize(
    "error", [VendorRejected("bad parameter", status=400), TerminalError("stream gone")]
)
def test_a_terminal_error_is_dead_at_once_with_its_type_in_the_reason(
    error: TerminalError,
) -> None:
    decision = decide(error, JOB, POLICY)
    assert decision.action is Action.dead
    assert decision.reason.startswith(f"{type(error).__name__}: ")


def test_a_failed_export_is_rebuilt_until_the_rebuilds_are_spent() -> None:
    failed = ExportFailed("VidiCenter export failed: timeout", delay=0)
    assert decide(failed, replace(JOB, export_rebuilds=1), POLICY).action is Action.rebuild
    assert decide(failed, replace(JOB, export_rebuilds=2), POLICY).action is Action.dead


def test_a_failed_export_on_the_last_try_is_dead() -> None:
    failed = ExportFailed("failed", delay=0)
    assert decide(failed, replace(JOB, attempts=5), POLICY).action is Action.dead


@pytest.mark.parametrize(
    "error",
    [VendorUnavailable("502"), RateLimited("429"), ExportPending("still building")],
)
def test_a_passing_vendor_failure_is_retried_and_keeps_the_export_to_resume(
    error: Exception,
) -> None:
    decision = decide(error, JOB, POLICY, random.Random(1))
    assert decision.action is Action.retry
    assert decision.keep_export
    assert 15.0 <= decision.delay_s <= 30.0  # the first backoff: half to all of the base


@pytest.mark.parametrize(
    "error",
    [
        BadPayload("row 3: key 'x'"),
        OSError("connection reset"),
        asyncpg.PostgresError("deadlock"),
        KeyError("location_id"),
        ValueError("bad date"),
        TypeError("not a list"),
        ConfigError("INGEST_X"),
    ],
)
def test_any_other_failure_is_retried_with_a_fresh_export(error: Exception) -> None:
    decision = decide(error, JOB, POLICY, random.Random(1))
    assert decision.action is Action.retry
    assert not decision.keep_export


def test_a_vendor_hint_sets_the_delay() -> None:
    decision = decide(RateLimited("429", delay=42.0), JOB, POLICY)
    assert decision.delay_s == 42.0


def test_the_delay_doubles_with_each_try_up_to_the_cap() -> None:
    delays = [
        decide(BadPayload("x"), replace(JOB, attempts=n), POLICY, random.Random(0)).delay_s
        for n in (1, 2, 3)
    ]
    assert delays[0] < delays[1] < delays[2]
    many = replace(JOB, attempts=4)
    capped = RetryPolicy(max_attempts=9, base_s=30.0, max_s=40.0, rebuilds_after_failure=2)
    assert decide(BadPayload("x"), many, capped).delay_s <= 40.0


def test_the_last_try_is_dead_whatever_the_error() -> None:
    for error in (BadPayload("x"), VendorUnavailable("502"), OSError("reset")):
        assert decide(error, replace(JOB, attempts=5), POLICY).action is Action.dead


# --- exports of many scope-days -----------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        ExportFailed("VidiCenter export failed: The export is too large"),
        VendorRejected("vidicenter answered 414: Request-URI Too Long", status=414),
        RowError("row 3: key 'x' (no location, no day)"),
    ],
    ids=["failed", "414", "row-naming-no-slice"],
)
def test_an_export_of_several_scope_days_that_fails_is_cut_in_two_and_not_a_try(
    error: Exception,
) -> None:
    worn = replace(JOB, attempts=5, export_rebuilds=2)  # no tries, no rebuilds left
    assert decide(error, worn, POLICY, splittable=True).action is Action.split_export


def test_a_single_scope_days_failed_export_is_rebuilt_not_cut() -> None:
    decision = decide(ExportFailed("failed"), JOB, POLICY, splittable=False)
    assert decision.action is Action.rebuild


def test_a_single_scope_days_414_is_dead() -> None:
    error = VendorRejected("vidicenter answered 414", status=414)
    assert decide(error, JOB, POLICY, splittable=False).action is Action.dead


def test_an_unreadable_body_is_read_again_from_the_same_export_then_cut_in_two() -> None:
    error = BodyUnreadable("not JSON")
    first = decide(error, replace(JOB, attempts=1), POLICY, splittable=True)
    assert (first.action, first.keep_export) == (Action.retry, True)
    again = decide(error, replace(JOB, attempts=2), POLICY, splittable=True)
    assert again.action is Action.split_export


def test_an_unreadable_body_of_one_scope_day_is_read_again_until_out_of_tries() -> None:
    error = BodyUnreadable("not JSON")
    assert decide(error, replace(JOB, attempts=4), POLICY).action is Action.retry
    assert decide(error, replace(JOB, attempts=5), POLICY).action is Action.dead
