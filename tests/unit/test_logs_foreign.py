"""Third-party loggers (asyncio, aiohttp, asyncpg) and Python warnings go through the same
structlog pipeline: one JSON line each, the logger's dotted name as the event."""

from __future__ import annotations

import io
import json
import logging
import sys
import warnings
from typing import Any

import pytest
import structlog

from ingest.config import LogFormat
from ingest.logs import configure_logging


def _lines(buf: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buf.getvalue().splitlines()]


def test_a_library_warning_is_a_json_line_named_after_its_logger_with_its_text() -> None:
    buf = io.StringIO()
    configure_logging(fmt=LogFormat.json, stream=buf)
    logging.getLogger("asyncpg.pool").warning("Failed to restore %s", "the pool connection floor")
    (line,) = _lines(buf)
    assert line["event"] == "asyncpg.pool"
    assert line["message"] == "Failed to restore the pool connection floor"
    assert line["level"] == "warning" and "timestamp" in line


def test_library_info_and_debug_chatter_is_left_out_unless_ours_is_stricter() -> None:
    buf = io.StringIO()
    configure_logging(level="debug", fmt=LogFormat.json, stream=buf)
    logging.getLogger("aiohttp.access").info("GET /metrics 200")
    logging.getLogger("asyncio").debug("poll took 0.1 s")
    logging.getLogger("asyncio").error("Task exception was never retrieved")
    assert [(x["event"], x["level"]) for x in _lines(buf)] == [("asyncio", "error")]

    configure_logging(level="error", fmt=LogFormat.json, stream=buf)
    logging.getLogger("aiohttp.client").warning("not shown at level error")
    assert len(_lines(buf)) == 1


def test_python_warnings_go_through_the_same_pipeline() -> None:
    logging.captureWarnings(False)  # as in a fresh process: not captured yet
    buf = io.StringIO()
    configure_logging(fmt=LogFormat.json, stream=buf)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn("Unclosed client session", ResourceWarning, stacklevel=1)
    finally:
        logging.captureWarnings(False)
    (line,) = _lines(buf)
    assert line["event"] == "py.warnings" and "Unclosed client session" in line["message"]


def test_log_lines_follow_stderr_when_a_live_display_takes_it_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    configure_logging(fmt=LogFormat.json)
    redirected = io.StringIO()  # what a live display puts in place of stderr
    monkeypatch.setattr(sys, "stderr", redirected)
    structlog.get_logger().warning("job.dead", job_ids=[1])
    logging.getLogger("asyncpg.pool").warning("pool floor")
    assert [x["event"] for x in _lines(redirected)] == ["job.dead", "asyncpg.pool"]
