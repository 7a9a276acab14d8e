"""The job ledger, `ingest.jobs`: every statement on it lives in this package.

- `jobs`: enqueue, schedule, claim (SKIP LOCKED + lease), heartbeat, finish, record a
  failure's decision, hand back;
- `exports`: each account's export places, counted from the ledger;
- `accounts`: jobs and rows from before accounts, and another account's data;
- `days`: the open days, not final yet;
- `fleets`: each account's listed locations, shared by every process;
- `builds`: each account's export build times, shared by every process;
- `reports`: read-only counts and summaries for commands, status and metrics.
"""

from ingest.errors import LeaseLost
from ingest.ledger.exports import exports_out, mark_export_started, reserve_export
from ingest.ledger.jobs import (
    Executor,
    Packing,
    claim_batch,
    done_specs,
    due_job_ids,
    enqueue_jobs,
    extend_lease,
    mark_done,
    next_claimable_in,
    params_json,
    record_decision,
    record_split,
    release_jobs,
    reopen_open_jobs,
    rows_seen,
    schedule_jobs,
)
from ingest.ledger.reports import job_counts

__all__ = [
    "Executor",
    "LeaseLost",
    "Packing",
    "claim_batch",
    "done_specs",
    "due_job_ids",
    "enqueue_jobs",
    "exports_out",
    "extend_lease",
    "job_counts",
    "mark_done",
    "mark_export_started",
    "next_claimable_in",
    "params_json",
    "record_decision",
    "record_split",
    "release_jobs",
    "reopen_open_jobs",
    "reserve_export",
    "rows_seen",
    "schedule_jobs",
]
