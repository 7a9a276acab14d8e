import io
import logging

import structlog

from ingest.config import LogFormat
from ingest.logs import configure_logging

SECRET = "tok-3f9a77c1d2"


def _capture(fmt: LogFormat) -> io.StringIO:
    buf = io.StringIO()
    configure_logging(fmt=fmt, secrets=[SECRET], stream=buf)
    return buf


def test_token_in_event_fields_is_redacted() -> None:
    buf = _capture(LogFormat.json)
    structlog.get_logger().info("client.configured", token=SECRET, nested={"auth": SECRET})
    out = buf.getvalue()
    assert SECRET not in out and "[REDACTED]" in out


def test_token_in_an_exception_message_and_traceback_is_redacted() -> None:
    for fmt in (LogFormat.json, LogFormat.console):
        buf = _capture(fmt)
        try:
            raise RuntimeError(f"bad auth header Basic {SECRET}")
        except RuntimeError:
            structlog.get_logger().exception("export.failed")
        out = buf.getvalue()
        assert "export.failed" in out and "RuntimeError" in out
        assert SECRET not in out


def test_standard_library_loggers_are_redacted_too() -> None:
    buf = _capture(LogFormat.json)
    logging.getLogger("aiohttp.client").error("sent %s", SECRET)
    out = buf.getvalue()
    assert "sent [REDACTED]" in out


def test_json_lines_off_a_terminal() -> None:
    import json

    buf = _capture(LogFormat.auto)  # StringIO is not a terminal
    structlog.get_logger().info("worker.started", loops=3)
    record = json.loads(buf.getvalue().splitlines()[-1])
    assert record["event"] == "worker.started" and record["loops"] == 3
    assert record["level"] == "info" and "timestamp" in record
