"""The backfill's progress: its facts, the terminal display, the log line, the summary."""

from __future__ import annotations

from datetime import date

from rich.console import Console

from ingest.ledger.reports import DeadJob, RunState
from ingest.pipeline import Outcome
from ingest.progress import BackfillResult, Progress, clock_text, render, summary


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def state(
    *, pending: int = 0, running: int = 0, done: int = 0, dead: int = 0, **waits: object
) -> RunState:
    counts = {"pending": pending, "running": running, "done": done, "dead": dead}
    return RunState(
        counts=counts,
        retrying=int(waits.get("retrying", 0)),  # type: ignore[call-overload]
        next_retry_s=waits.get("next_retry_s"),  # type: ignore[arg-type]
        held_back=int(waits.get("held_back", 0)),  # type: ignore[call-overload]
    )


def test_before_the_jobs_are_known_the_snapshot_counts_nothing_and_waits_for_nothing() -> None:
    clock = Clock()
    progress = Progress(clock=clock)
    clock.now += 2.5
    snap = progress.snapshot()
    assert (snap.total, snap.finished, snap.rows, snap.eta_s) == (0, 0, 0, None)
    assert snap.elapsed_s == 2.5 and snap.waits() == []


def test_a_budget_wait_names_the_account_and_the_time_to_the_next_call_until_it_is_over() -> None:
    clock = Clock()
    progress = Progress(clock=clock)
    progress.on_budget_wait("vidicenter:demo", 40.0)
    clock.now += 10
    snap = progress.snapshot()
    assert snap.budget_account == "vidicenter:demo" and snap.budget_wait_s == 30.0
    assert snap.waits() == ["the call budget of vidicenter:demo (next call in 30 s)"]
    assert snap.waiting_for() == ["budget"]
    clock.now += 31
    assert progress.snapshot().budget_wait_s is None
    assert progress.snapshot().waits() == []


def test_budget_waits_of_several_loops_at_once_count_the_wall_time_once() -> None:
    clock = Clock()
    progress = Progress(clock=clock)
    progress.on_budget_wait("a", 30.0)  # three loops wait for the same freed place
    progress.on_budget_wait("a", 30.0)
    clock.now += 10
    progress.on_budget_wait("a", 30.0)  # waits until 40 s: 10 s more than the others
    clock.now += 60
    progress.on_budget_wait("a", 5.0)  # after a gap
    assert progress.budget_waited_s == 45.0


def test_exports_building_are_the_poll_waits_not_over_yet() -> None:
    clock = Clock()
    progress = Progress(clock=clock)
    progress.on_poll_wait(3.0)
    progress.on_poll_wait(8.0)
    clock.now += 1
    snap = progress.snapshot()
    assert (snap.exports_building, snap.next_poll_s) == (2, 2.0)
    assert "2 exports building at the vendor (next poll in 2 s)" in snap.waits()
    clock.now += 4
    assert progress.snapshot().exports_building == 1


def test_retries_and_held_back_jobs_come_from_the_ledger_and_count_down_between_reads() -> None:
    clock = Clock()
    progress = Progress(clock=clock)
    progress.begin([1, 2, 3], state(pending=3))
    progress.observe(state(pending=3, retrying=2, next_retry_s=25.0, held_back=1))
    clock.now += 5
    snap = progress.snapshot()
    assert (snap.retrying, snap.next_retry_s, snap.held_back) == (2, 20.0, 1)
    assert snap.waits() == [
        "the back-off of 2 failed jobs (next retry in 20 s)",
        "an export place for 1 job",
    ]
    assert snap.waiting_for() == ["retry", "export_place"]


def test_eta_and_rate_come_from_this_runs_jobs_not_those_done_before_it() -> None:
    clock = Clock()
    progress = Progress(clock=clock)
    progress.begin(list(range(10)), state(pending=6, done=4))  # 4 done by an earlier run
    clock.now += 20
    assert progress.snapshot().eta_s is None  # nothing finished by this run yet
    progress.on_outcome("vidicenter", Outcome(done=2, rows=100))
    progress.observe(state(pending=4, done=6))
    snap = progress.snapshot()
    # 2 jobs in 20 s: the 4 left take 40 s
    assert snap.eta_s == 40.0
    assert snap.rows == 100 and snap.rows_per_s == 5.0
    assert progress.already_done == 4


def test_the_log_line_has_every_fact_with_seconds_as_s_fields() -> None:
    clock = Clock()
    progress = Progress(clock=clock)
    progress.begin([1, 2], state(pending=1, running=1))
    progress.on_budget_wait("vidicenter:demo", 12.0)
    fields = progress.snapshot().fields()
    assert {k: fields[k] for k in ("jobs", "done", "dead", "running", "pending", "rows")} == {
        "jobs": 2,
        "done": 0,
        "dead": 0,
        "running": 1,
        "pending": 1,
        "rows": 0,
    }
    assert fields["budget_wait_s"] == 12.0 and fields["waiting_for"] == ["budget"]
    assert {"elapsed_s", "eta_s", "rows_per_s", "next_poll_s", "next_retry_s"} <= set(fields)
    timed = [k for k in fields if "wait" in k or "next" in k or "elapsed" in k or "eta" in k]
    assert all(k.endswith("_s") or k == "waiting_for" for k in timed), timed


def _text(progress: Progress) -> str:
    console = Console(width=240, record=True, color_system=None)
    console.print(render(progress.snapshot(), "vidicenter viewers 1h"))
    return console.export_text()


def test_the_display_shows_counts_rows_rate_elapsed_eta_and_what_it_waits_for() -> None:
    clock = Clock()
    progress = Progress(clock=clock)
    progress.begin(list(range(36)), state(pending=36))
    clock.now += 72
    progress.on_outcome("vidicenter", Outcome(done=12, rows=4320))
    progress.observe(state(pending=21, running=2, done=12, dead=1))
    progress.on_poll_wait(3.0)
    text = _text(progress)
    assert "vidicenter viewers 1h" in text
    assert "12 done · 1 dead · 2 running of 36 jobs" in text
    # 13 jobs finished in 72 s: the 23 left take 127 s
    assert "4,320 rows · 60.0 rows/s · elapsed 0:01:12 · ETA 0:02:07" in text
    assert "waiting for 1 export building at the vendor (next poll in 3 s)" in text


def test_the_display_says_it_resolves_the_scope_before_the_jobs_are_known() -> None:
    clock = Clock()
    progress = Progress(clock=clock)
    progress.on_budget_wait("vidicenter:demo", 46.0)
    text = _text(progress)
    assert "resolving the scope" in text
    assert "waiting for the call budget of vidicenter:demo (next call in 46 s)" in text


def test_clock_text_is_hours_minutes_seconds() -> None:
    assert clock_text(0) == "0:00:00"
    assert clock_text(3725.9) == "1:02:05"


def _result(**kw: object) -> BackfillResult:
    base: dict[str, object] = {
        "counts": {"pending": 0, "running": 0, "done": 6, "dead": 0},
        "rows": 0,
        "seconds": 0.3,
        "dead": [],
    }
    return BackfillResult(**(base | kw))  # type: ignore[arg-type]


def test_a_no_op_rerun_summary_claims_no_rows_and_says_the_jobs_were_done_before() -> None:
    text = summary(_result(already_done=6))
    assert text.splitlines() == [
        "6 done, 0 dead, 0 not finished; 0 rows loaded in 0.3 s",
        "  6 of the jobs were done before this run (--force loads them again)",
    ]


def test_the_summary_says_how_long_the_run_waited_for_the_call_budget() -> None:
    text = summary(_result(rows=144, seconds=53.7, budget_wait_s=46.04))
    assert text == (
        "6 done, 0 dead, 0 not finished; 144 rows loaded in 53.7 s, "
        "46.0 s of it waiting for the call budget"
    )


def test_an_interrupted_runs_summary_says_the_unfinished_jobs_are_back_in_the_queue() -> None:
    dead = [DeadJob(7, "location:1001", date(2024, 3, 5), "BadPayload: not JSON")]
    text = summary(
        _result(
            counts={"pending": 3, "running": 0, "done": 2, "dead": 1},
            dead=dead,
            interrupted="SIGINT",
        )
    )
    assert text.splitlines()[0].startswith("2 done, 1 dead, 3 not finished;")
    assert "  interrupted (SIGINT): the jobs not finished are back in the queue" in text
    assert "  dead: job 7 location:1001 2024-03-05: BadPayload: not JSON" in text
