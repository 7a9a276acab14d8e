"""Benchmark: moving a database from before accounts over (migration 005 and the hand-over).

Fills a scratch database at migration 004 with aggregated and raw viewers rows and done
jobs, then times migration 005 (a column, new natural keys, new slice indexes) and
`ingest migrate`'s hand-over of every row and job to the configured account.
Prints one line.

Usage: python bench/accounts_migration.py [--rows 1000000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from ingest import db
from ingest.ledger.accounts import assign_unassigned

FILL = """
INSERT INTO vidicenter.viewers (location_id, time_resolution, period_start, watcher_count)
SELECT 1000 + i % 1000, '1h', timestamp '2024-01-01' + (i / 1000) * interval '1 hour', i % 7
FROM generate_series(0, $1 - 1) AS i;
INSERT INTO vidicenter.viewers_finest (location_id, period_start, dwell_time_in_tenths_of_sec)
SELECT 1000 + i % 1000, timestamp '2024-01-01' + i * interval '1 second', i % 50
FROM generate_series(0, $1 - 1) AS i;
INSERT INTO ingest.jobs (vendor, data_type, time_resolution, scope, day, status, finished_at)
SELECT 'vidicenter', 'viewers', '1h', 'location:' || (1000 + i % 1000),
       date '2024-01-01' + i / 1000, 'done', now()
FROM generate_series(0, $1 / 24 - 1) AS i;
"""


def _url(base: str, name: str) -> str:
    return urlunsplit(urlsplit(base)._replace(path="/" + name))


async def main(rows: int, database_url: str) -> None:
    name = f"ingest_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(database_url)
    await admin.execute(f"CREATE DATABASE {name}")
    try:
        conn = await asyncpg.connect(_url(database_url, name))
        try:
            migrations = db.load_migrations()
            await db.migrate(conn, [m for m in migrations if m.version <= 4])
            for statement in FILL.strip().split(";\n"):
                await conn.execute(statement.replace("$1", str(rows)))
            jobs = await conn.fetchval("SELECT count(*) FROM ingest.jobs")
            started = time.perf_counter()
            await db.migrate(conn, migrations)
            migrate_s = time.perf_counter() - started
            started = time.perf_counter()
            handed = await assign_unassigned(conn, "vidicenter.example.com/bench")
            hand_over_s = time.perf_counter() - started
        finally:
            await conn.close()
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()
    print(
        f"accounts migration: {rows:,} aggregated + {rows:,} raw rows, {jobs:,} jobs: "
        f"migration 005 {migrate_s:.1f} s, hand-over of {sum(handed.rows.values()):,} rows "
        f"and {handed.jobs:,} jobs {hand_over_s:.1f} s"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    asyncio.run(main(args.rows, args.database_url))
