"""Recording a job's failure in tests as the pipeline does: the policy decides, the ledger
records."""

from __future__ import annotations

from collections.abc import Sequence

from ingest import ledger
from ingest.db import Connection
from ingest.domain import Job
from ingest.planner import Block, Limits, Sites
from ingest.policy import Action, RetryPolicy, decide


def packing(
    max_scopes: int = 1000, *, sites: dict[str, Sites] | None = None, **limits: int
) -> ledger.Packing:
    """How a claim packs jobs: at most `max_scopes` locations, a short request line (each
    location listed, or site named, costs 5 bytes); `sites` by account."""
    return ledger.Packing(
        limits=Limits(max_scopes=max_scopes, **limits),
        line_length=_line_length,
        sites=sites or {},
    )


def _line_length(block: Block) -> int:
    return 100 + 5 * sum(len(ids) for ids in block.sources.values())


async def fail(
    conn: Connection, jobs: Sequence[Job], error: Exception, *, owner: str, max_attempts: int
) -> str:
    """The status the jobs are left in: `pending` (tried again) or `dead`."""
    policy = RetryPolicy(max_attempts=max_attempts, base_s=0, max_s=0, rebuilds_after_failure=2)
    decision = decide(error, max(jobs, key=lambda j: j.attempts), policy)
    await ledger.record_decision(conn, jobs, decision, owner=owner)
    return "dead" if decision.action is Action.dead else "pending"
