"""The build times of each VidiCenter account's exports, shared by every process through
the database: a new process (a backfill, a restart, another replica) schedules its first
polls from them instead of probing the vendor again."""

from __future__ import annotations

from typing import NamedTuple

import asyncpg

from ingest.ledger.jobs import Executor


class BuildSeen(NamedTuple):
    kind: str  # data_type:time_resolution
    rows: int  # the rows the export was expected to hold
    seconds: float  # its build time


async def recent_builds(conn: Executor, account: str, *, kept: int) -> list[BuildSeen]:
    """The account's newest `kept` builds of each kind, oldest first."""
    rows = await conn.fetch(
        """
        SELECT kind, expected_rows, build_s FROM (
            SELECT id, kind, expected_rows, build_s,
                   row_number() OVER (PARTITION BY kind ORDER BY id DESC) AS newest
            FROM ingest.build_times WHERE account = $1
        ) recent
        WHERE newest <= $2 ORDER BY id
        """,
        account,
        kept,
    )
    return [BuildSeen(r["kind"], r["expected_rows"], r["build_s"]) for r in rows]


async def record_build(pool: asyncpg.Pool, account: str, build: BuildSeen, *, kept: int) -> None:
    """Add a build of the account; only the newest `kept` of its kind stay."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO ingest.build_times (account, kind, expected_rows, build_s)"
            " VALUES ($1, $2, $3, $4)",
            account,
            build.kind,
            max(1, build.rows),
            max(0.0, build.seconds),
        )
        await conn.execute(
            """
            DELETE FROM ingest.build_times WHERE account = $1 AND kind = $2 AND id < (
                SELECT min(id) FROM (
                    SELECT id FROM ingest.build_times WHERE account = $1 AND kind = $2
                    ORDER BY id DESC LIMIT $3
                ) newest
            )
            """,
            account,
            build.kind,
            kept,
        )
