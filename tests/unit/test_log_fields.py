"""One naming scheme for log events and their fields, checked in the source of every module:
events are constant dotted names; ids are `*_ids` (a list) or `*_id`; counts are plural
nouns; seconds are `*_s`; a table is named `schema.table`."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import ingest

SOURCE = Path(ingest.__file__).parent
LEVELS = {"debug", "info", "warning", "error", "exception", "critical"}
EVENT = re.compile(r"^[a-z_]+(\.[a-z_]+)+$")
FIELD = re.compile(r"^[a-z][a-z0-9_]*$")
TIMED = ("wait", "delay", "timeout", "grace", "retry_in", "expires_in", "elapsed", "eta")
NOT_SECONDS = ("_seconds", "_secs", "_sec", "_ms")


def _log_calls() -> Iterator[tuple[str, ast.Call]]:
    """Every `log.<level>(...)` and `bound_contextvars(...)` call of the package."""
    for path in sorted(SOURCE.rglob("*.py")):
        where = str(path.relative_to(SOURCE.parent))
        for node in ast.walk(ast.parse(path.read_text(), where)):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if (
                isinstance(func, ast.Attribute)
                and func.attr in LEVELS
                and isinstance(func.value, ast.Name)
                and func.value.id == "log"
            ) or (isinstance(func, ast.Attribute) and func.attr == "bound_contextvars"):
                yield f"{where}:{node.lineno}", node


def _is_id_list(value: ast.expr) -> bool:
    """`[j.id for j in jobs]` or a name like `ids`."""
    if isinstance(value, ast.ListComp):
        return isinstance(value.elt, ast.Attribute) and value.elt.attr == "id"
    return isinstance(value, ast.Name) and value.id.endswith("ids")


def _problems(call: ast.Call) -> Iterator[str]:
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr in LEVELS:
        first = call.args[0] if call.args else None
        if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
            yield "the event is not a constant string"
        elif not EVENT.match(first.value):
            yield f"event {first.value!r} is not a dotted name"
    for kw in call.keywords:
        name = kw.arg
        if name is None:  # **fields: checked where they are built
            continue
        if not FIELD.match(name):
            yield f"field {name!r} is not snake_case"
        if _is_id_list(kw.value) and not name.endswith("_ids"):
            yield f"field {name!r} holds ids: call it *_ids"
        if any(t in name for t in TIMED) and not name.endswith("_s"):
            yield f"field {name!r} is a time: seconds as *_s"
        if name.endswith(NOT_SECONDS):
            yield f"field {name!r}: seconds are *_s"
        if name == "table":
            v = kw.value
            qualified = (isinstance(v, ast.Constant) and "." in str(v.value)) or (
                isinstance(v, ast.Attribute) and v.attr == "qualified_name"
            )
            if not qualified:
                yield "field 'table' must be schema.table"


def test_the_source_has_log_calls_to_check() -> None:
    assert sum(1 for _ in _log_calls()) > 30


def test_every_log_event_and_field_follows_the_naming_scheme() -> None:
    problems = [f"{where}: {p}" for where, call in _log_calls() for p in _problems(call)]
    assert problems == []


def test_the_checker_catches_each_kind_of_misnamed_field() -> None:
    bad = ast.parse(
        "log.info('Job done', jobs=[j.id for j in jobs], wait=1.5, delay_ms=3,"
        " table=table.name, retryIn_s=2)"
    )
    call = bad.body[0].value  # type: ignore[attr-defined]
    assert list(_problems(call)) == [
        "event 'Job done' is not a dotted name",
        "field 'jobs' holds ids: call it *_ids",
        "field 'wait' is a time: seconds as *_s",
        "field 'delay_ms' is a time: seconds as *_s",
        "field 'delay_ms': seconds are *_s",
        "field 'table' must be schema.table",
        "field 'retryIn_s' is not snake_case",
    ]
