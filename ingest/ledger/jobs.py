"""The job queue: enqueue, schedule, claim (SKIP LOCKED + lease), heartbeat, finish,
record a failure's decision, hand back."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg

from ingest.db import Connection
from ingest.domain import Job, JobSpec, JobStatus, Scope, ScopeKind, Vendor
from ingest.errors import LeaseLost
from ingest.policy import Action, Decision

# Statements that need no transaction of their own run on a pool or a connection.
Executor: TypeAlias = "Connection | asyncpg.Pool[Any]"


_JOB_COLUMNS = """id, vendor, account, data_type, time_resolution, params, scope, day, attempts,
    force, export_query, export_started_at IS NOT NULL AS export_started, export_rebuilds"""


def _job(row: asyncpg.Record) -> Job:
    params = row["params"]
    return Job(
        id=row["id"],
        vendor=Vendor(row["vendor"]),
        data_type=row["data_type"],
        time_resolution=row["time_resolution"],
        params=json.loads(params) if isinstance(params, str) else dict(params),
        scope=Scope.parse(row["scope"]),
        day=row["day"],
        attempts=row["attempts"],
        force=row["force"],
        export_query=row["export_query"],
        export_started=row["export_started"],
        export_rebuilds=row["export_rebuilds"],
        account=row["account"],
    )


def params_json(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, separators=(",", ":"))


async def enqueue_jobs(conn: Connection, specs: Sequence[JobSpec], *, force: bool) -> list[int]:
    """Create the jobs that do not exist yet; return the ids of all of them, in order.

    A job already `done` stays done unless `force` or its day was still open (then it is
    fetched again, rebuilt); a `dead` one is given a fresh start; a running one is left
    to its worker.
    """
    if not specs:
        return []
    rows = await conn.fetch(
        """
        INSERT INTO ingest.jobs AS j
            (vendor, data_type, time_resolution, params, scope, day, force, account)
        SELECT v, d, r, p::jsonb, s, day, $7, a
        FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::date[],
                    $8::text[])
             AS t(v, d, r, p, s, day, a)
        ON CONFLICT (vendor, account, data_type, time_resolution, params, scope, day)
        DO UPDATE SET
            status = CASE
                WHEN j.status = 'dead' OR (j.status = 'done' AND ($7 OR NOT j.complete))
                THEN 'pending' ELSE j.status END,
            attempts = CASE
                WHEN j.status = 'dead' OR (j.status = 'done' AND ($7 OR NOT j.complete))
                THEN 0 ELSE j.attempts END,
            run_after = CASE
                WHEN j.status = 'dead' OR (j.status = 'done' AND ($7 OR NOT j.complete))
                THEN now() ELSE j.run_after END,
            force = CASE
                WHEN j.status = 'running' THEN j.force
                WHEN j.status = 'done' AND NOT j.complete THEN true
                ELSE j.force OR $7 END,
            updated_at = now()
        RETURNING id
        """,
        [s.vendor.value for s in specs],
        [s.data_type for s in specs],
        [s.time_resolution for s in specs],
        [params_json(s.params) for s in specs],
        [s.scope.encode() for s in specs],
        [s.day for s in specs],
        force,
        [s.account for s in specs],
    )
    return [r["id"] for r in rows]


_CLAIMABLE = """(
    (status = 'pending' AND run_after <= now())
    OR (status = 'running' AND lease_expires_at < now())
)"""


async def claim_batch(
    conn: Connection,
    vendor: Vendor,
    *,
    owner: str,
    lease_s: float,
    max_batch: int = 1,
    only_ids: Sequence[int] | None = None,
    accounts: Sequence[str] | None = None,
) -> list[Job]:
    """Claim one due job of the given accounts (None: any) and, for a per-location or
    per-site VidiCenter job, its batch mates.

    Batch mates share account, data type, resolution, parameters and day (and the export,
    when the leader already has one out), so they can ride on one export. Jobs whose
    export is already out at the vendor come first, so that a restart resumes them.
    """
    ids = list(only_ids) if only_ids is not None else None
    async with conn.transaction():
        # one claimer at a time: concurrent ones would skip each other's locks and split a batch
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('ingest.claim:' || $1))", vendor)
        leader = await _claimable_leader(
            conn, vendor, ids, list(accounts) if accounts is not None else None
        )
        if leader is None:
            return []
        claimed = [leader["id"]]
        if max_batch > 1 and Scope.parse(leader["scope"]).kind in _BATCHED:
            claimed += await _claimable_mates(conn, leader, ids, limit=max_batch - 1)
        rows = await conn.fetch(
            f"""
            UPDATE ingest.jobs SET
                status = 'running', attempts = attempts + 1, lease_owner = $2,
                lease_expires_at = now() + make_interval(secs => $3), updated_at = now()
            WHERE id = ANY($1)
            RETURNING {_JOB_COLUMNS}
            """,
            claimed,
            owner,
            lease_s,
        )
    return sorted((_job(r) for r in rows), key=lambda j: j.id)


_BATCHED = (ScopeKind.location, ScopeKind.site)


async def _claimable_leader(
    conn: Connection, vendor: Vendor, ids: list[int] | None, accounts: list[str] | None
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"""
        SELECT {_JOB_COLUMNS}, params::text AS params_text FROM ingest.jobs
        WHERE vendor = $1 AND {_CLAIMABLE} AND ($2::bigint[] IS NULL OR id = ANY($2))
          AND ($3::text[] IS NULL OR account = ANY($3))
        ORDER BY export_query IS NULL, run_after, id
        LIMIT 1
        FOR UPDATE SKIP LOCKED
        """,
        vendor.value,
        ids,
        accounts,
    )


async def _claimable_mates(
    conn: Connection, leader: asyncpg.Record, ids: list[int] | None, *, limit: int
) -> list[int]:
    """Due jobs of the leader's kind that can share its export."""
    rows = await conn.fetch(
        f"""
        SELECT id FROM ingest.jobs
        WHERE vendor = $1 AND {_CLAIMABLE} AND id <> $2
          AND data_type = $3 AND time_resolution = $4 AND params = $5::jsonb
          AND day = $6 AND scope LIKE $11 || ':%'
          AND export_query IS NOT DISTINCT FROM $7
          AND force = $8
          AND ($9::bigint[] IS NULL OR id = ANY($9))
          AND account = $12
        ORDER BY id
        LIMIT $10
        FOR UPDATE SKIP LOCKED
        """,
        leader["vendor"],
        leader["id"],
        leader["data_type"],
        leader["time_resolution"],
        leader["params_text"],  # compared as jsonb, as stored
        leader["day"],
        leader["export_query"],
        leader["force"],
        ids,
        limit,
        Scope.parse(leader["scope"]).kind.value,
        leader["account"],
    )
    return [r["id"] for r in rows]


async def update_leased(
    conn: Executor, sql: str, ids: Sequence[int], *args: Any, owner: str
) -> None:
    """Run `UPDATE ingest.jobs ... WHERE id = ANY($1) AND lease_owner = $2 ...` (the
    statement's own further parameters from $3 on); LeaseLost unless every job was ours."""
    ids = list(ids)
    n = await conn.fetchval(
        f"WITH u AS ({sql} RETURNING 1) SELECT count(*) FROM u", ids, owner, *args
    )
    if n != len(ids):
        raise LeaseLost(f"jobs {ids} are no longer ours")


async def extend_lease(conn: Executor, jobs: Sequence[Job], *, owner: str, lease_s: float) -> None:
    """Heartbeat: push the lease forward; raises LeaseLost when another worker took over."""
    await update_leased(
        conn,
        """
        UPDATE ingest.jobs SET lease_expires_at = now() + make_interval(secs => $3)
        WHERE id = ANY($1) AND lease_owner = $2 AND status = 'running'
        """,
        [j.id for j in jobs],
        lease_s,
        owner=owner,
    )


async def mark_done(
    conn: Connection,
    rows_by_job: dict[int, int],
    *,
    owner: str,
    open_ids: Collection[int] = (),
) -> None:
    """Mark jobs done with their row counts; run it in the loader's transaction.

    The jobs of `open_ids` loaded a day the vendor did not have whole yet: they are done
    but not complete, and `ingest run` refreshes them.
    """
    await update_leased(
        conn,
        """
        UPDATE ingest.jobs j SET status = 'done', rows_loaded = t.n, last_error = NULL,
            export_query = NULL, export_reserved_at = NULL, export_started_at = NULL,
            lease_owner = NULL, lease_expires_at = NULL, force = false,
            export_rebuilds = 0, finished_at = now(), updated_at = now(),
            complete = NOT (j.id = ANY($4::bigint[]))
        FROM unnest($1::bigint[], $3::bigint[]) AS t(id, n)
        WHERE j.id = t.id AND j.lease_owner = $2 AND j.status = 'running'
        """,
        list(rows_by_job),
        list(rows_by_job.values()),
        list(open_ids),
        owner=owner,
    )


async def record_decision(
    conn: Executor, jobs: Sequence[Job], decision: Decision, *, owner: str
) -> None:
    """Record what a failure leads to (the policy decided it): pending again after a delay,
    rebuilt, dead with its reason, or handed back untried."""
    if decision.action is Action.abandon:
        return
    if decision.action is Action.hand_back:
        await release_jobs(conn, jobs, owner=owner)
        return
    dead = decision.action is Action.dead
    status = JobStatus.dead if dead else JobStatus.pending
    await conn.execute(
        """
        UPDATE ingest.jobs SET status = $2, last_error = $3,
            run_after = now() + make_interval(secs => $4),
            lease_owner = NULL, lease_expires_at = NULL,
            export_query = CASE WHEN $5 AND $2 <> 'dead' THEN export_query END,
            export_reserved_at = CASE WHEN $5 AND $2 <> 'dead' THEN export_reserved_at END,
            export_started_at = CASE WHEN $5 AND $2 <> 'dead' THEN export_started_at END,
            export_rebuilds = export_rebuilds + CASE WHEN $6 THEN 1 ELSE 0 END,
            -- a forced export the vendor acknowledged has been rebuilt: a retry for
            -- another reason asks for the plain query, not for a second rebuild
            force = (force AND export_started_at IS NULL) OR $6,
            finished_at = CASE WHEN $2 = 'dead' THEN now() END,
            updated_at = now()
        WHERE id = ANY($1) AND lease_owner = $7
        """,
        [j.id for j in jobs],
        status.value,
        decision.reason,
        decision.delay_s,
        decision.keep_export,
        decision.action is Action.rebuild,
        owner,
    )


async def release_jobs(
    conn: Executor, jobs: Sequence[Job], *, owner: str, delay_s: float = 0.0
) -> None:
    """Hand jobs back to the queue untried (shutdown, no export place): the try is not counted.

    Their export, if one is out, stays recorded so the next worker resumes it.
    """
    await conn.execute(
        """
        UPDATE ingest.jobs SET status = 'pending', attempts = greatest(attempts - 1, 0),
            run_after = now() + make_interval(secs => $3),
            lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
        WHERE id = ANY($1) AND lease_owner = $2 AND status = 'running'
        """,
        [j.id for j in jobs],
        owner,
        delay_s,
    )


async def schedule_jobs(conn: Connection, jobs: Sequence[tuple[JobSpec, datetime | None]]) -> int:
    """Create missing jobs, and re-open done ones whose day was still open (not complete)
    and that were finished before their `refresh_before` (with force, so VidiCenter
    rebuilds the export). Returns how many became pending."""
    if not jobs:
        return 0
    specs = [j[0] for j in jobs]
    async with conn.transaction():
        await conn.execute(
            """
            CREATE TEMP TABLE _wanted ON COMMIT DROP AS
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::text[],
                                 $6::date[], $7::timestamptz[], $8::text[])
                AS t(vendor, data_type, time_resolution, params, scope, day, stale, account)
            """,
            [s.vendor.value for s in specs],
            [s.data_type for s in specs],
            [s.time_resolution for s in specs],
            [params_json(s.params) for s in specs],
            [s.scope.encode() for s in specs],
            [s.day for s in specs],
            [j[1] for j in jobs],
            [s.account for s in specs],
        )
        created = await conn.fetchval(
            """
            WITH i AS (
                INSERT INTO ingest.jobs
                    (vendor, account, data_type, time_resolution, params, scope, day)
                SELECT vendor, account, data_type, time_resolution, params, scope, day
                FROM _wanted
                ON CONFLICT DO NOTHING
                RETURNING 1)
            SELECT count(*) FROM i
            """
        )
        reopened = await conn.fetchval(
            """
            WITH u AS (
                UPDATE ingest.jobs j SET status = 'pending', attempts = 0, force = true,
                    run_after = now(), updated_at = now()
                FROM _wanted w
                WHERE j.vendor = w.vendor AND j.account = w.account
                  AND j.data_type = w.data_type
                  AND j.time_resolution = w.time_resolution AND j.params = w.params
                  AND j.scope = w.scope AND j.day = w.day
                  AND j.status = 'done' AND NOT j.complete AND j.finished_at < w.stale
                RETURNING 1)
            SELECT count(*) FROM u
            """
        )
        await conn.execute("DROP TABLE _wanted")
    return int(created) + int(reopened)


async def reopen_open_jobs(
    conn: Executor, vendor: Vendor, accounts: Sequence[str], *, stale_before: datetime
) -> int:
    """Re-open (with force) the accounts' done jobs whose day was still open when they were
    fetched and that were finished before `stale_before`; how many became pending."""
    n = await conn.fetchval(
        """
        WITH u AS (
            UPDATE ingest.jobs SET status = 'pending', attempts = 0, force = true,
                run_after = now(), updated_at = now()
            WHERE vendor = $1 AND account = ANY($2) AND status = 'done' AND NOT complete
              AND finished_at < $3
            RETURNING 1)
        SELECT count(*) FROM u
        """,
        vendor.value,
        list(accounts),
        stale_before,
    )
    return int(n)


async def due_job_ids(
    conn: Executor, vendor: Vendor, accounts: Sequence[str] | None = None
) -> list[int]:
    """The vendor's pending jobs (of the given accounts; None: any) that may be claimed now."""
    rows = await conn.fetch(
        "SELECT id FROM ingest.jobs WHERE vendor = $1 AND status = 'pending'"
        " AND run_after <= now() AND ($2::text[] IS NULL OR account = ANY($2))",
        vendor.value,
        list(accounts) if accounts is not None else None,
    )
    return [r["id"] for r in rows]


async def next_claimable_in(
    conn: Executor,
    vendor: Vendor,
    only_ids: Sequence[int] | None,
    accounts: Sequence[str] | None = None,
) -> tuple[int, float | None]:
    """How many of the jobs (all the vendor's of the given accounts, or `only_ids`) are
    still open, and the seconds until one of them may be claimed (None when none is
    waiting)."""
    row = await conn.fetchrow(
        """
        SELECT count(*) AS open,
               extract(epoch FROM least(
                   min(run_after) FILTER (WHERE status = 'pending'),
                   min(lease_expires_at) FILTER (WHERE status = 'running')) - now()) AS wait
        FROM ingest.jobs
        WHERE vendor = $1 AND ($2::bigint[] IS NULL OR id = ANY($2))
          AND ($3::text[] IS NULL OR account = ANY($3))
          AND status IN ('pending', 'running')
        """,
        vendor.value,
        list(only_ids) if only_ids is not None else None,
        list(accounts) if accounts is not None else None,
    )
    assert row is not None
    return int(row["open"]), None if row["wait"] is None else float(row["wait"])


async def give_up_untried(conn: Executor, ids: Sequence[int], reason: str) -> None:
    """Mark the given jobs that are still pending dead without trying them (a backfill
    whose credentials were refused), with the reason."""
    await conn.execute(
        """
        UPDATE ingest.jobs SET status = 'dead', last_error = $2, finished_at = now(),
            updated_at = now()
        WHERE id = ANY($1) AND status = 'pending'
        """,
        list(ids),
        reason,
    )
