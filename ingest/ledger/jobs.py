"""The job queue: enqueue, schedule, claim (SKIP LOCKED + lease), heartbeat, finish,
record a failure's decision, hand back."""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, TypeAlias

import asyncpg

from ingest import planner
from ingest.buckets import bucket_end
from ingest.datatypes import REGISTRY, Registry
from ingest.db import Connection
from ingest.domain import Job, JobSpec, JobStatus, Scope, ScopeKind, Vendor
from ingest.errors import LeaseLost
from ingest.planner import NO_SITES, Limits, LineLength, Sites
from ingest.policy import Action, Decision

# Statements that need no transaction of their own run on a pool or a connection.
Executor: TypeAlias = "Connection | asyncpg.Pool[Any]"


_JOB_COLUMNS = """id, vendor, account, data_type, time_resolution, params, scope, day, attempts,
    force, export_query, export_started_at IS NOT NULL AS export_started, export_rebuilds,
    export_plan"""


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
        export_plan=row["export_plan"],
    )


params_json = planner.params_key


async def enqueue_jobs(conn: Connection, specs: Sequence[JobSpec], *, force: bool) -> list[int]:
    """Create the jobs that do not exist yet; return the ids of all of them, in order.

    A job already `done` stays done unless `force` or its day was still open (then it is
    fetched again, rebuilt); a `dead` one is given a fresh start; a running one is left
    to its worker. A year of a fleet is millions of jobs: they go in `ENQUEUE_CHUNK` at a
    time (one statement of 1.8 million ran past the pool's 300 s command timeout), each
    chunk on its own unless the caller holds a transaction; enqueueing again is harmless.
    """
    ids: list[int] = []
    for i in range(0, len(specs), ENQUEUE_CHUNK):
        ids += await _enqueue_chunk(conn, specs[i : i + ENQUEUE_CHUNK], force)
    if len(specs) >= ANALYZE_AFTER:
        # claims look jobs up by their group, scopes and days: with statistics from before
        # a fleet's backfill, the planner scanned every pending job for each (seconds a
        # claim) until autovacuum caught up
        await conn.execute("ANALYZE ingest.jobs")
    return ids


async def _enqueue_chunk(conn: Connection, specs: Sequence[JobSpec], force: bool) -> list[int]:
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


ANALYZE_AFTER = 10_000  # jobs enqueued at once after which the table's statistics are renewed
ENQUEUE_CHUNK = 50_000  # jobs a statement enqueues


_CLAIMABLE = """(
    (status = 'pending' AND run_after <= now())
    OR (status = 'running' AND lease_expires_at < now())
)"""

# Jobs that may ride on the leader's export: $1 vendor, $2 data type, $3 resolution,
# $4 parameters (jsonb text), $5 force. One line per dimension of `planner.Group`.
_SAME_GROUP = """vendor = $1 AND data_type = $2 AND time_resolution = $3
    AND params = $4::jsonb AND force = $5 AND account = $6"""
# ... and are free to be packed: not riding on an export already, nor on a split's half
_FREE = f"{_CLAIMABLE} AND export_query IS NULL AND export_plan IS NULL"


@dataclass(frozen=True)
class Packing:
    """How a claim packs VidiCenter jobs into one export (see `ingest.planner`)."""

    limits: Limits
    line_length: LineLength  # the request line of a block's export
    registry: Registry = REGISTRY
    sites: Mapping[str, Sites] = field(default_factory=dict)  # each account's, as listed


async def claim_batch(
    conn: Connection,
    vendor: Vendor,
    *,
    owner: str,
    lease_s: float,
    packing: Packing | None = None,
    only_ids: Sequence[int] | None = None,
    accounts: Sequence[str] | None = None,
) -> list[Job]:
    """Claim one due job of the given accounts (None: any) and the jobs that go out with it
    in one export.

    Jobs whose export is already out at the vendor come first, with every claimable job of
    that export, so that a restart resumes it. A job of a split export's half comes with its
    half. Any other VidiCenter job is packed (with `packing`) with the free jobs of its group
    (which includes the account: two accounts never share an export) into a block of
    scopes x consecutive days; without `packing`, a job goes alone.
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
        job = _job(leader)
        if job.export_query is not None:
            claimed = await _riding(conn, "export_query", job.export_query, job.account)
        elif job.export_plan is not None:
            claimed = await _riding(conn, "export_plan", job.export_plan, job.account)
        elif packing is not None and vendor is Vendor.vidicenter:
            claimed = await _packed(conn, job, leader["params_text"], packing, ids)
        else:
            claimed = [job.id]
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


async def _claimable_leader(
    conn: Connection, vendor: Vendor, ids: list[int] | None, accounts: list[str] | None
) -> asyncpg.Record | None:
    """The job a claim starts from: one whose export is out at the vendor (resumed first),
    else the earliest due (by run_after, then id) of the pending jobs and of those whose
    lease ran out.

    Three looks, each along an index, rather than one sort of every claimable job: a year
    of a fleet's backfill is millions of pending jobs, and sorting them all took seconds
    for each claim.
    """
    args = (vendor.value, ids, accounts)
    resumed: asyncpg.Record | None = await conn.fetchrow(
        f"{_LEADER} AND export_query IS NOT NULL AND {_CLAIMABLE} {_FIRST_DUE}", *args
    )
    if resumed is not None:
        return resumed
    due = [
        row
        for row in (
            await conn.fetchrow(
                f"{_LEADER} AND status = 'pending' AND run_after <= now() {_FIRST_DUE}", *args
            ),
            await conn.fetchrow(
                f"{_LEADER} AND status = 'running' AND lease_expires_at < now() {_FIRST_DUE}",
                *args,
            ),
        )
        if row is not None
    ]
    return min(due, key=lambda r: (r["run_after"], r["id"])) if due else None


_LEADER = f"""
    SELECT {_JOB_COLUMNS}, params::text AS params_text, run_after FROM ingest.jobs
    WHERE vendor = $1 AND ($2::bigint[] IS NULL OR id = ANY($2))
      AND ($3::text[] IS NULL OR account = ANY($3))"""
_FIRST_DUE = "ORDER BY run_after, id LIMIT 1 FOR UPDATE SKIP LOCKED"


async def _riding(conn: Connection, column: str, value: str, account: str) -> list[int]:
    """Every claimable job of an export (or of a split's half) of the account, whoever
    enqueued it: an export is resumed as a whole."""
    assert column in ("export_query", "export_plan")
    rows = await conn.fetch(
        f"SELECT id FROM ingest.jobs WHERE {column} = $1 AND account = $2 AND {_CLAIMABLE}"
        " ORDER BY id FOR UPDATE SKIP LOCKED",
        value,
        account,
    )
    return [r["id"] for r in rows]


async def _packed(
    conn: Connection, leader: Job, params_text: str, packing: Packing, ids: list[int] | None
) -> list[int]:
    """The leader and the free jobs of its group that the planner packs with it."""
    group = planner.group_of(leader)
    dt = packing.registry.get(leader.data_type)
    res = leader.time_resolution
    # the jobs of two accounts never share an export
    same = (leader.vendor.value, leader.data_type, res, params_text, leader.force, leader.account)
    if group.kind is ScopeKind.extrapolated:
        at_first_day = [leader.scope]
    else:
        at_first_day = await _free_scopes(conn, same, leader, ids)
    horizon = _after(res, leader.day, packing.limits.max_days)
    leader_days = await _free_days(conn, same, [leader.scope], leader.day, horizon, ids)
    seen: dict[str, int] = {}
    if planner.observed(dt, res):
        seen = await rows_seen(
            conn, same[:4], at_first_day, around=leader.day, account=leader.account
        )
    estimate = planner.estimator(dt, res, leader.params, seen)
    sites = packing.sites.get(leader.account, NO_SITES)
    cut = planner.first_cut(
        leader,
        group,
        at_first_day,
        [day for _, _, day in leader_days],
        estimate=estimate,
        limits=packing.limits,
        line_length=packing.line_length,
        sites=sites,
    )
    end = _after(res, leader.day, cut.days)
    free = await _free_days(conn, same, cut.scopes, leader.day, end, ids)
    have: dict[date, set[Scope]] = {}
    for _, scope, day in free:
        have.setdefault(day, set()).add(scope)
    block = planner.full_block(leader, group, cut, have, sites)
    wanted_days = set(block.days)
    wanted_scopes = set(block.scopes)
    return [i for i, scope, day in free if day in wanted_days and scope in wanted_scopes]


def _after(resolution: str, day: date, buckets: int) -> date:
    """The day `buckets` jobs' spans after `day`."""
    for _ in range(buckets):
        day = bucket_end(resolution, day)
    return day


async def _free_scopes(
    conn: Connection, same: tuple[Any, ...], leader: Job, ids: list[int] | None
) -> list[Scope]:
    """The scopes of the leader's kind with a free job of the group on the leader's day."""
    rows = await conn.fetch(
        f"""
        SELECT scope FROM ingest.jobs
        WHERE {_SAME_GROUP} AND day = $7 AND scope LIKE $8 || ':%' AND {_FREE}
          AND ($9::bigint[] IS NULL OR id = ANY($9))
        """,
        *same,
        leader.day,
        leader.scope.kind.value,
        ids,
    )
    return [Scope.parse(r["scope"]) for r in rows]


async def _free_days(
    conn: Connection,
    same: tuple[Any, ...],
    scopes: Sequence[Scope],
    first: date,
    end: date,
    ids: list[int] | None,
) -> list[tuple[int, Scope, date]]:
    """The free jobs of the group for these scopes from `first` to before `end`, locked."""
    rows = await conn.fetch(
        f"""
        SELECT id, scope, day FROM ingest.jobs
        WHERE {_SAME_GROUP} AND scope = ANY($7::text[]) AND day >= $8 AND day < $9 AND {_FREE}
          AND ($10::bigint[] IS NULL OR id = ANY($10))
        ORDER BY day, id
        FOR UPDATE SKIP LOCKED
        """,
        *same,
        [s.encode() for s in scopes],
        first,
        end,
        ids,
    )
    return [(r["id"], Scope.parse(r["scope"]), r["day"]) for r in rows]


SEEN_WITHIN_DAYS = 90  # the rows seen on days this close to a job's tell its size


async def rows_seen(
    conn: Executor,
    same: tuple[Any, ...],
    scopes: Sequence[Scope],
    *,
    around: date,
    account: str,
) -> dict[str, int]:
    """The most rows one done job of each scope (by id) of the account loaded within
    SEEN_WITHIN_DAYS of `around`, for the planner's estimates; `same` is (vendor, data
    type, resolution, parameters)."""
    rows = await conn.fetch(
        """
        SELECT scope, max(rows_loaded) AS n FROM ingest.jobs
        WHERE vendor = $1 AND data_type = $2 AND time_resolution = $3 AND params = $4::jsonb
          AND status = 'done' AND rows_loaded IS NOT NULL AND scope = ANY($5::text[])
          AND day BETWEEN $6::date - $7::int AND $6::date + $7::int AND account = $8
        GROUP BY scope
        """,
        *same,
        [s.encode() for s in scopes],
        around,
        SEEN_WITHIN_DAYS,
        account,
    )
    return {Scope.parse(r["scope"]).id: int(r["n"]) for r in rows}


async def done_specs(conn: Executor, specs: Sequence[JobSpec]) -> set[int]:
    """The positions in `specs` of the jobs that exist and are done (a plan leaves them out
    unless forced)."""
    if not specs:
        return set()
    rows = await conn.fetch(
        """
        SELECT t.n FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                               $6::date[], $7::text[])
                        WITH ORDINALITY AS t(v, d, r, p, s, day, a, n)
        JOIN ingest.jobs j ON j.vendor = t.v AND j.data_type = t.d AND j.time_resolution = t.r
            AND j.params = t.p::jsonb AND j.scope = t.s AND j.day = t.day AND j.account = t.a
        WHERE j.status = 'done'
        """,
        [s.vendor.value for s in specs],
        [s.data_type for s in specs],
        [s.time_resolution for s in specs],
        [params_json(s.params) for s in specs],
        [s.scope.encode() for s in specs],
        [s.day for s in specs],
        [s.account for s in specs],
    )
    return {int(r["n"]) - 1 for r in rows}


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
            export_plan = NULL,
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
            export_plan = CASE WHEN $2 <> 'dead' THEN export_plan END,
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


async def record_split(
    conn: Executor, halves: Sequence[Sequence[Job]], reason: str, *, owner: str
) -> None:
    """A failed export's jobs, cut in two: each half pending again, to go out as an export of
    its own. Not a try: a job is dead only when its own scope-day fails."""
    for half in halves:
        await conn.execute(
            """
            UPDATE ingest.jobs SET status = 'pending', attempts = greatest(attempts - 1, 0),
                last_error = $3, run_after = now(), export_plan = $4,
                export_query = NULL, export_reserved_at = NULL, export_started_at = NULL,
                lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
            WHERE id = ANY($1) AND lease_owner = $2 AND status = 'running'
            """,
            [j.id for j in half],
            owner,
            reason,
            uuid.uuid4().hex,
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
