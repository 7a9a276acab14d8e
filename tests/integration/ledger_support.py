"""Recording a job's failure in tests as the pipeline does: the policy decides, the ledger
records."""

from __future__ import annotations

from collections.abc import Sequence

from ingest import ledger
from ingest.db import Connection
from ingest.domain import Job
from ingest.planner import Limits
from ingest.policy import Action, RetryPolicy, decide


def packing(max_scopes: int = 1000, **limits: int) -> ledger.Packing:
    """How a claim packs jobs: at most `max_scopes` locations, a short request line."""
    return ledger.Packing(
        limits=Limits(max_scopes=max_scopes, **limits),
        line_length=lambda block: 100 + 5 * len(block.scopes),
    )


async def fail(
    conn: Connection, jobs: Sequence[Job], error: Exception, *, owner: str, max_attempts: int
) -> str:
    """The status the jobs are left in: `pending` (tried again) or `dead`."""
    policy = RetryPolicy(max_attempts=max_attempts, base_s=0, max_s=0, rebuilds_after_failure=2)
    decision = decide(error, max(jobs, key=lambda j: j.attempts), policy)
    await ledger.record_decision(conn, jobs, decision, owner=owner)
    return "dead" if decision.action is Action.dead else "pending"
