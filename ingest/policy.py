"""Pure: what a job's failure leads to. The ledger only records the decision."""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

from ingest.delays import backoff
from ingest.domain import Job, Vendor
from ingest.errors import (
    AuthError,
    BodyUnreadable,
    ExportFailed,
    ExportPending,
    LeaseLost,
    RateLimited,
    RetryableError,
    RowError,
    TerminalError,
    VendorRejected,
    VendorUnavailable,
)

# A body that cannot be read is read again this many times before its export is cut in two.
REREADS_BEFORE_SPLIT = 1


class Action(StrEnum):
    retry = "retry"  # pending again after `delay_s`; one more try used
    rebuild = "rebuild"  # pending again, and the export is rebuilt with force_rebuild
    dead = "dead"  # failed for good; the reason is kept
    hand_back = "hand_back"  # pending again untried: the vendor's work stops for now
    abandon = "abandon"  # nothing to record: another worker holds the jobs now
    split_export = "split"  # the export is cut in two halves, each pending again; not a try


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    delay_s: float = 0.0
    keep_export: bool = False  # the export may still run at the vendor: resume it later


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int  # tries of a job before it is dead
    base_s: float  # first wait before a failed job is tried again (doubles each try)
    max_s: float  # longest wait
    rebuilds_after_failure: int  # rebuilds of an export the vendor failed, before dead


def reason_of(error: BaseException) -> str:
    """The reason kept in `last_error`: the error's type and message."""
    return f"{type(error).__name__}: {error}"[:4000]


def decide(
    error: Exception,
    job: Job,
    policy: RetryPolicy,
    rng: random.Random | None = None,
    *,
    splittable: bool = False,
) -> Decision:
    """What a failure of `job` (for a batch: its mates' most tried) leads to.

    Credentials refused hand VidiCenter's jobs back untried (the account's work stops),
    and fail an Angus stream's job for good (that stream alone). An export of several
    scope-days (`splittable`) that the vendor fails, or whose request line is too long, is
    cut in two; so is one whose body stays unreadable when read again. A single scope-day's
    failed export is rebuilt a few times; a TerminalError is final at once; anything else, a
    dropped connection or a payload that broke the code, gets the job's remaining tries.
    """
    reason = reason_of(error)
    if isinstance(error, LeaseLost):
        return Decision(Action.abandon, reason)
    if isinstance(error, AuthError):
        if job.vendor is Vendor.vidicenter:
            return Decision(Action.hand_back, reason)
        return Decision(Action.dead, reason)
    if splittable and _splits(error, job):
        return Decision(Action.split_export, reason)
    out_of_tries = job.attempts >= policy.max_attempts
    if isinstance(error, BodyUnreadable) and not out_of_tries:
        # the same export, read again: the vendor keeps a finished export for a while
        return Decision(Action.retry, reason, delay_s=error.delay or 0.0, keep_export=True)
    if isinstance(error, ExportFailed):
        if out_of_tries or job.export_rebuilds >= policy.rebuilds_after_failure:
            return Decision(Action.dead, reason)
        return Decision(Action.rebuild, reason, delay_s=error.delay or 0.0)
    if isinstance(error, TerminalError) or out_of_tries:
        return Decision(Action.dead, reason)
    hinted = error.delay if isinstance(error, RetryableError) else None
    delay = (
        hinted
        if hinted is not None
        else backoff(job.attempts - 1, base_s=policy.base_s, max_s=policy.max_s, rng=rng)
    )
    keep = isinstance(error, VendorUnavailable | RateLimited | ExportPending)
    return Decision(Action.retry, reason, delay_s=delay, keep_export=keep)


def _splits(error: Exception, job: Job) -> bool:
    if isinstance(error, ExportFailed):
        return True
    if isinstance(error, VendorRejected):
        return error.status == 414  # the request line is too long for the vendor's server
    if isinstance(error, RowError):
        return True  # a bad row that names no location and day: cut until it is alone
    return isinstance(error, BodyUnreadable) and job.attempts > REREADS_BEFORE_SPLIT
