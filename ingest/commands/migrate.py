"""`ingest migrate`: apply pending migrations (idempotent; replicas take turns), then hand
the VidiCenter jobs and rows from before accounts to the configured account."""

from __future__ import annotations

import argparse

from ingest import db
from ingest.commands import EXIT_OK
from ingest.config import Settings
from ingest.wiring import hand_over_unassigned, open_connection


async def main(_args: argparse.Namespace, settings: Settings) -> int:
    async with open_connection(settings) as conn:
        applied = await db.migrate(conn)
        print(
            f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else "")
        )
        if note := await hand_over_unassigned(conn, settings):
            print(note)
    return EXIT_OK
