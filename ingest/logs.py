"""The one structlog configuration: JSON lines off a terminal, readable lines on one."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import Any, TextIO

import structlog

from ingest.config import LogFormat

REDACTED = "[REDACTED]"


class SecretRedactor:
    """Replaces every configured secret in the rendered line, wherever it came from.

    It runs after the renderer, so secrets in event fields, in exception messages and
    in tracebacks are all caught.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        # longest first, so a secret that contains another is replaced whole
        self._secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def __call__(self, _logger: Any, _method: str, line: Any) -> Any:
        if isinstance(line, str):
            for secret in self._secrets:
                if secret in line:
                    line = line.replace(secret, REDACTED)
        return line


class _CurrentStderr:
    """Whatever `sys.stderr` is at the time of writing: while a live progress display has
    taken it over, log lines print above the display instead of through it."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def _foreign_event(_logger: Any, _method: str, event_dict: Any) -> Any:
    """A standard-library record (asyncio, aiohttp, asyncpg) as one of ours: its logger's
    dotted name is the event, its text the `message`."""
    record = event_dict.get("_record")
    if record is not None:
        event_dict["message"] = event_dict.pop("event", "")
        event_dict["event"] = record.name
    return event_dict


def configure_logging(
    *,
    level: str = "info",
    fmt: LogFormat = LogFormat.auto,
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> None:
    """Configure structlog (and the standard library's logging) once for the process."""
    out: Any = stream or _CurrentStderr()
    as_json = fmt == LogFormat.json or (fmt == LogFormat.auto and not out.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: list[Any]
    if as_json:
        renderer = [
            # no locals in tracebacks: a truncated secret in a local would escape redaction
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
            ),
            structlog.processors.JSONRenderer(),
        ]
    else:
        renderer = [structlog.dev.ConsoleRenderer(colors=out.isatty())]
    numeric = logging.getLevelNamesMapping()[level.upper()]
    structlog.configure(
        processors=[*shared, *renderer, SecretRedactor(secrets)],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    # Libraries that log through the standard library (asyncio, aiohttp, asyncpg) and
    # Python's warnings go through the same processors, redactor and stream: one JSON line
    # each, their logger's name as the event. Their info and debug chatter is left out.
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, _foreign_event],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *renderer,
                SecretRedactor(secrets),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric if numeric > logging.INFO else logging.WARNING)
    logging.captureWarnings(True)
