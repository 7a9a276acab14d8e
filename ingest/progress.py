"""A backfill's progress line and its closing summary."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

from ingest.ledger.reports import DeadJob
from ingest.pipeline import Outcome


@dataclass
class Progress:
    """Counts for the progress line and the summary."""

    total: int = 0
    out: TextIO = field(default_factory=lambda: sys.stderr)
    done: int = 0
    dead: int = 0
    rows: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def live(self) -> bool:
        return self.out.isatty()

    def update(self, _vendor: str, outcome: Outcome) -> None:
        self.done += outcome.done
        self.dead += outcome.dead
        self.rows += outcome.rows
        if self.live:
            width = 30
            finished = min(self.total, self.done + self.dead)
            filled = int(width * finished / max(1, self.total))
            self.out.write(
                f"\r[{'#' * filled}{'.' * (width - filled)}] {finished}/{self.total} jobs"
                f"  {self.rows} rows  {self.dead} dead "
            )
            self.out.flush()

    def finish(self) -> None:
        if self.live:
            self.out.write("\n")


@dataclass
class BackfillResult:
    counts: dict[str, int]
    rows: int
    seconds: float
    dead: list[DeadJob]


def summary(result: BackfillResult) -> str:
    c = result.counts
    lines = [
        f"{c['done']} done, {c['dead']} dead, {c['pending'] + c['running']} not finished; "
        f"{result.rows} rows in {result.seconds:.1f} s"
    ]
    for job in result.dead:
        lines.append(f"  dead: job {job.id} {job.scope} {job.day}: {job.reason}")
    return "\n".join(lines)
