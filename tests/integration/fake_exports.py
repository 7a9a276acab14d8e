"""A VidiCenter export source for pipeline tests: every export finished at once, with one
row per location asked for (or none), and what was asked for kept."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import msgspec

from ingest.vendors.body import ExportAnswer, from_bytes


class FinishedAtOnce:
    """`row` (None: no rows) is each location's row, `location_id` added."""

    def __init__(self, row: dict[str, Any] | None = None) -> None:
        self.row = row
        self.queries: list[str] = []
        self.forced: list[bool] = []

    async def run_export(
        self,
        query: str,
        *,
        force: bool = False,
        on_started: Callable[[], Awaitable[None]] | None = None,
        expected_rows: int = 0,
    ) -> ExportAnswer:
        self.queries.append(query)
        self.forced.append(force)
        if on_started is not None:
            await on_started()
        rows = []
        if self.row is not None:
            asked = dict(parse_qsl(query))
            rows = [{"location_id": int(i), **self.row} for i in asked["locations"].split(",")]
        return from_bytes(msgspec.json.encode({"state": "finished", "data": rows}))
