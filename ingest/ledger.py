"""The job ledger: enqueue, claim (SKIP LOCKED + lease), heartbeat, finish, fail, release."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, TypeAlias

import asyncpg

from ingest.db import Connection
from ingest.delays import backoff
from ingest.errors import IngestError, RetryableError, TerminalError

# Statements that need no transaction of their own run on a pool or a connection.
Executor: TypeAlias = "Connection | asyncpg.Pool[Any]"


class JobStatus(StrEnum):
    pending = "pending"  # waiting to be claimed once run_after has passed
    running = "running"  # claimed by a worker that holds its lease
    done = "done"  # its rows are committed
    dead = "dead"  # failed for good; last_error says why


class Vendor(StrEnum):
    vidicenter = "vidicenter"  # Quividi VidiCenter data export API
    angus = "angus"  # Angus.ai Data API


@dataclass(frozen=True)
class JobSpec:
    """What a job asks for: one scope, one day."""

    vendor: Vendor
    data_type: str
    time_resolution: str
    scope: str
    day: date
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Job:
    id: int
    vendor: str
    data_type: str
    time_resolution: str
    params: dict[str, Any]
    scope: str
    day: date
    attempts: int
    force: bool
    export_query: str | None
    export_started: bool

    @property
    def scope_kind(self) -> str:
        return self.scope.split(":", 1)[0]

    @property
    def scope_id(self) -> str:
        return self.scope.split(":", 1)[1]


class LeaseLost(IngestError):
    """Another worker took these jobs over after our lease ran out."""


_JOB_COLUMNS = """id, vendor, data_type, time_resolution, params, scope, day, attempts, force,
    export_query, export_started_at IS NOT NULL AS export_started"""


def _job(row: asyncpg.Record) -> Job:
    params = row["params"]
    return Job(
        id=row["id"],
        vendor=row["vendor"],
        data_type=row["data_type"],
        time_resolution=row["time_resolution"],
        params=json.loads(params) if isinstance(params, str) else dict(params),
        scope=row["scope"],
        day=row["day"],
        attempts=row["attempts"],
        force=row["force"],
        export_query=row["export_query"],
        export_started=row["export_started"],
    )


def params_json(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, separators=(",", ":"))


async def enqueue_jobs(conn: Connection, specs: Sequence[JobSpec], *, force: bool) -> list[int]:
    """Create the jobs that do not exist yet; return the ids of all of them, in order.

    A job already `done` stays done unless `force`; a `dead` one is given a fresh start; a
    running one is left to its worker.
    """
    if not specs:
        return []
    rows = await conn.fetch(
        """
        INSERT INTO ingest.jobs AS j (vendor, data_type, time_resolution, params, scope, day, force)
        SELECT v, d, r, p::jsonb, s, day, $7
        FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::date[])
             AS t(v, d, r, p, s, day)
        ON CONFLICT (vendor, data_type, time_resolution, params, scope, day) DO UPDATE SET
            status = CASE
                WHEN j.status = 'dead' OR (j.status = 'done' AND $7) THEN 'pending'
                ELSE j.status END,
            attempts = CASE
                WHEN j.status = 'dead' OR (j.status = 'done' AND $7) THEN 0
                ELSE j.attempts END,
            run_after = CASE
                WHEN j.status = 'dead' OR (j.status = 'done' AND $7) THEN now()
                ELSE j.run_after END,
            force = CASE WHEN j.status = 'running' THEN j.force ELSE j.force OR $7 END,
            updated_at = now()
        RETURNING id
        """,
        [s.vendor.value for s in specs],
        [s.data_type for s in specs],
        [s.time_resolution for s in specs],
        [params_json(s.params) for s in specs],
        [s.scope for s in specs],
        [s.day for s in specs],
        force,
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
) -> list[Job]:
    """Claim one due job and, for a per-location or per-site VidiCenter job, its batch mates.

    Batch mates share data type, resolution, parameters and day (and the export, when the
    leader already has one out), so they can ride on one export. Jobs whose export is
    already out at the vendor come first, so that a restart resumes them.
    """
    ids = list(only_ids) if only_ids is not None else None
    async with conn.transaction():
        # one claimer at a time: concurrent ones would skip each other's locks and split a batch
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('ingest.claim:' || $1))", vendor)
        leader = await conn.fetchrow(
            f"""
            SELECT {_JOB_COLUMNS} FROM ingest.jobs
            WHERE vendor = $1 AND {_CLAIMABLE} AND ($2::bigint[] IS NULL OR id = ANY($2))
            ORDER BY export_query IS NULL, run_after, id
            LIMIT 1
            FOR UPDATE SKIP LOCKED
            """,
            vendor.value,
            ids,
        )
        if leader is None:
            return []
        claimed = [leader["id"]]
        kind = leader["scope"].split(":", 1)[0]
        if max_batch > 1 and kind in ("location", "site"):
            mates = await conn.fetch(
                f"""
                SELECT id FROM ingest.jobs
                WHERE vendor = $1 AND {_CLAIMABLE} AND id <> $2
                  AND data_type = $3 AND time_resolution = $4 AND params = $5::jsonb
                  AND day = $6 AND scope LIKE $11 || ':%'
                  AND export_query IS NOT DISTINCT FROM $7
                  AND force = $8
                  AND ($9::bigint[] IS NULL OR id = ANY($9))
                ORDER BY id
                LIMIT $10
                FOR UPDATE SKIP LOCKED
                """,
                vendor.value,
                leader["id"],
                leader["data_type"],
                leader["time_resolution"],
                leader["params"],  # jsonb as text: compared as jsonb
                leader["day"],
                leader["export_query"],
                leader["force"],
                ids,
                max_batch - 1,
                kind,
            )
            claimed += [r["id"] for r in mates]
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
    jobs = [_job(r) for r in rows]
    jobs.sort(key=lambda j: j.id)
    return jobs


async def extend_lease(conn: Executor, jobs: Sequence[Job], *, owner: str, lease_s: float) -> None:
    """Heartbeat: push the lease forward; raises LeaseLost when another worker took over."""
    n = await conn.fetchval(
        """
        WITH u AS (
            UPDATE ingest.jobs SET lease_expires_at = now() + make_interval(secs => $3)
            WHERE id = ANY($1) AND status = 'running' AND lease_owner = $2
            RETURNING 1)
        SELECT count(*) FROM u
        """,
        [j.id for j in jobs],
        owner,
        lease_s,
    )
    if n != len(jobs):
        raise LeaseLost(jobs=[j.id for j in jobs])


async def reserve_export(
    conn: Connection,
    jobs: Sequence[Job],
    query: str,
    *,
    owner: str,
    max_exports: int,
    stale_after_s: float,
) -> bool:
    """Take one of the account's export places for `query`; False when all are out.

    Counted from the ledger under an advisory lock, so the cap holds across processes and
    restarts: an export whose jobs are pending or running still runs at the vendor.
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('ingest.vidicenter.exports'))")
        out = await conn.fetchval(
            """
            SELECT count(DISTINCT export_query) FROM ingest.jobs
            WHERE vendor = 'vidicenter' AND export_query IS NOT NULL
              AND status IN ('pending', 'running')
              AND export_reserved_at > now() - make_interval(secs => $1)
            """,
            stale_after_s,
        )
        if out >= max_exports:
            return False
        n = await conn.fetchval(
            """
            WITH u AS (
                UPDATE ingest.jobs SET export_query = $2, export_reserved_at = now(),
                    export_started_at = NULL, updated_at = now()
                WHERE id = ANY($1) AND lease_owner = $3 AND status = 'running'
                RETURNING 1)
            SELECT count(*) FROM u
            """,
            [j.id for j in jobs],
            query,
            owner,
        )
        if n != len(jobs):
            raise LeaseLost(jobs=[j.id for j in jobs])
        return True


async def mark_export_started(conn: Executor, jobs: Sequence[Job]) -> None:
    """The vendor acknowledged the export: a resume must not send force_rebuild again."""
    await conn.execute(
        "UPDATE ingest.jobs SET export_started_at = now() WHERE id = ANY($1)"
        " AND export_started_at IS NULL",
        [j.id for j in jobs],
    )


async def mark_done(conn: Connection, rows_by_job: dict[int, int], *, owner: str) -> None:
    """Mark jobs done with their row counts; run it in the loader's transaction."""
    ids = list(rows_by_job)
    n = await conn.fetchval(
        """
        WITH u AS (
            UPDATE ingest.jobs j SET status = 'done', rows_loaded = t.n, last_error = NULL,
                export_query = NULL, export_reserved_at = NULL, export_started_at = NULL,
                lease_owner = NULL, lease_expires_at = NULL, force = false,
                export_rebuilds = 0, finished_at = now(), updated_at = now()
            FROM unnest($1::bigint[], $2::bigint[]) AS t(id, n)
            WHERE j.id = t.id AND j.status = 'running' AND j.lease_owner = $3
            RETURNING 1)
        SELECT count(*) FROM u
        """,
        ids,
        [rows_by_job[i] for i in ids],
        owner,
    )
    if n != len(ids):
        raise LeaseLost(jobs=ids)


async def fail_jobs(
    conn: Executor,
    jobs: Sequence[Job],
    error: BaseException,
    *,
    owner: str,
    max_attempts: int,
    base_s: float,
    max_s: float,
    keep_export: bool = False,
    rebuild: bool = False,
) -> JobStatus:
    """Record a failure: pending again after a backoff, or dead when out of tries or terminal."""
    attempts = max(j.attempts for j in jobs)
    # only a TerminalError is final at once; anything else (a dropped connection, a
    # payload that broke the code) gets the job's remaining tries
    retryable = not isinstance(error, TerminalError)
    dead = not retryable or attempts >= max_attempts
    delay = 0.0
    if not dead:
        hinted = error.delay if isinstance(error, RetryableError) else None
        delay = hinted if hinted is not None else backoff(attempts - 1, base_s=base_s, max_s=max_s)
    reason = f"{type(error).__name__}: {error}"[:4000]
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
            force = force OR $6,
            finished_at = CASE WHEN $2 = 'dead' THEN now() END,
            updated_at = now()
        WHERE id = ANY($1) AND lease_owner = $7
        """,
        [j.id for j in jobs],
        status.value,
        reason,
        delay,
        keep_export,
        rebuild,
        owner,
    )
    return status


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


async def job_counts(conn: Executor, ids: Sequence[int]) -> dict[str, int]:
    """How many of the given jobs are in each status."""
    rows = await conn.fetch(
        "SELECT status, count(*) AS n FROM ingest.jobs WHERE id = ANY($1) GROUP BY status",
        list(ids),
    )
    counts = {s.value: 0 for s in JobStatus}
    counts.update({r["status"]: r["n"] for r in rows})
    return counts


async def schedule_jobs(conn: Connection, jobs: Sequence[tuple[JobSpec, datetime | None]]) -> int:
    """Create missing jobs, and re-open done ones finished before their `refresh_before`
    (with force, so VidiCenter rebuilds the export). Returns how many became pending."""
    if not jobs:
        return 0
    specs = [j[0] for j in jobs]
    async with conn.transaction():
        await conn.execute(
            """
            CREATE TEMP TABLE _wanted ON COMMIT DROP AS
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::text[],
                                 $6::date[], $7::timestamptz[])
                AS t(vendor, data_type, time_resolution, params, scope, day, stale)
            """,
            [s.vendor.value for s in specs],
            [s.data_type for s in specs],
            [s.time_resolution for s in specs],
            [params_json(s.params) for s in specs],
            [s.scope for s in specs],
            [s.day for s in specs],
            [j[1] for j in jobs],
        )
        created = await conn.fetchval(
            """
            WITH i AS (
                INSERT INTO ingest.jobs (vendor, data_type, time_resolution, params, scope, day)
                SELECT vendor, data_type, time_resolution, params, scope, day FROM _wanted
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
                WHERE j.vendor = w.vendor AND j.data_type = w.data_type
                  AND j.time_resolution = w.time_resolution AND j.params = w.params
                  AND j.scope = w.scope AND j.day = w.day
                  AND j.status = 'done' AND j.finished_at < w.stale
                RETURNING 1)
            SELECT count(*) FROM u
            """
        )
        await conn.execute("DROP TABLE _wanted")
    return int(created) + int(reopened)
