"""Accounts in the database: the jobs and rows from before accounts, handed to the
configured account, and whether a database holds another account's data."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ingest.datatypes import REGISTRY, Registry
from ingest.db import Connection
from ingest.ledger.jobs import Executor

UNASSIGNED = ""  # the account of VidiCenter jobs and rows from before accounts


def _tables(registry: Registry) -> list[str]:
    """The vidicenter tables whose rows name their account."""
    return [t.qualified_name for t in registry.tables() if t.account_column]


@dataclass(frozen=True)
class Unassigned:
    """VidiCenter jobs and rows that belong to no account yet."""

    jobs: int = 0
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows, tables with some only

    @property
    def any(self) -> bool:
        return bool(self.jobs or self.rows)

    def describe(self) -> str:
        return f"{self.jobs} VidiCenter job(s) and {sum(self.rows.values())} row(s)"


async def unassigned(conn: Executor, registry: Registry = REGISTRY) -> Unassigned:
    """The VidiCenter jobs and rows from before accounts."""
    jobs = await conn.fetchval(
        "SELECT count(*) FROM ingest.jobs WHERE vendor = 'vidicenter' AND account = $1",
        UNASSIGNED,
    )
    rows = {}
    for table in _tables(registry):
        n = await conn.fetchval(f"SELECT count(*) FROM {table} WHERE account = $1", UNASSIGNED)
        if n:
            rows[table] = int(n)
    return Unassigned(int(jobs), rows)


async def assign_unassigned(
    conn: Connection, account: str, registry: Registry = REGISTRY
) -> Unassigned:
    """Hand every VidiCenter job and row from before accounts to `account`, in one
    transaction; returns what was handed over."""
    async with conn.transaction():
        found = await unassigned(conn, registry)
        if not found.any:
            return found
        await conn.execute(
            "UPDATE ingest.jobs SET account = $1, updated_at = now()"
            " WHERE vendor = 'vidicenter' AND account = $2",
            account,
            UNASSIGNED,
        )
        for table in found.rows:
            await conn.execute(
                f"UPDATE {table} SET account = $1 WHERE account = $2", account, UNASSIGNED
            )
    return found


async def _has_account_column(conn: Executor, table: str) -> bool | None:
    """None when the table does not exist; else whether it has an `account` column."""
    schema, name = table.split(".")
    if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", table):
        return None
    return bool(
        await conn.fetchval(
            "SELECT count(*) FROM information_schema.columns"
            " WHERE table_schema = $1 AND table_name = $2 AND column_name = 'account'",
            schema,
            name,
        )
    )


async def foreign_data(
    conn: Executor,
    *,
    vidicenter: Sequence[str],
    streams: Sequence[str],
    registry: Registry = REGISTRY,
) -> str | None:
    """What the database holds of accounts other than the given ones (None: nothing).

    Read only, and it works on a database of any schema version (or none): jobs and rows
    from before accounts belong to no given account.
    """
    kept = {"vidicenter": list(vidicenter), "angus": list(streams)}
    has_account = await _has_account_column(conn, "ingest.jobs")
    if has_account:
        row = await conn.fetchrow(
            """
            SELECT vendor, account, count(*) AS n FROM ingest.jobs
            WHERE NOT ((vendor = 'vidicenter' AND account = ANY($1))
                       OR (vendor = 'angus' AND account = ANY($2)))
            GROUP BY vendor, account ORDER BY n DESC LIMIT 1
            """,
            kept["vidicenter"],
            kept["angus"],
        )
        if row is not None:
            who = row["account"] or "no account (from before accounts)"
            return f"ingest.jobs holds {row['n']} {row['vendor']} job(s) of {who}"
    elif has_account is False and await conn.fetchval("SELECT count(*) FROM ingest.jobs"):
        return "ingest.jobs holds jobs from before accounts"
    for table in _tables(registry):
        has_account = await _has_account_column(conn, table)
        if has_account is None:
            continue
        found = await conn.fetchval(
            f"SELECT account FROM {table} WHERE NOT (account = ANY($1)) LIMIT 1"
            if has_account
            else f"SELECT '' FROM {table} LIMIT 1",
            *([kept["vidicenter"]] if has_account else []),
        )
        if found is not None:
            return f"{table} holds rows of {found or 'no account (from before accounts)'}"
    if await _has_account_column(conn, "angus.entities") is not None:
        stream = await conn.fetchval(
            "SELECT stream FROM angus.entities WHERE NOT (stream = ANY($1)) LIMIT 1",
            kept["angus"],
        )
        if stream is not None:
            return f"angus.entities holds rows of stream {stream}"
    return None
