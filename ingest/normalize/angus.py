"""Pure: Angus entities pages → records for `angus.entities`, in COLUMNS order.

- `passing_by`, `interested` (integers) and `stop_time`, `attention_time` (seconds) are
  unwrapped from `{"value": ...}`; a bare number is accepted too. A metric that is missing
  or `null` is stored as NULL, never as an invented zero; buckets whose values are all zero
  are kept.
- `gender`, `category` and `satisfaction` are stored as delivered (JSON text for jsonb).
- Metrics this module does not know, and keys other than `value` inside a known metric,
  go to `extra` (`{"<metric>": ...}`), so nothing the vendor sent is dropped.
- The bucket key is the period start (ISO 8601 with an offset); the key `"global"` stands
  for the whole requested window and is stored at `window_start`.
- A bucket that appears twice (on two pages, or under two spellings of the same instant)
  is stored once: the last one delivered wins, since one upsert cannot touch a row twice.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TypeGuard

from ingest.errors import BadPayload

COLUMNS: tuple[str, ...] = (
    "stream",
    "time_bucket",
    "period_start",
    "passing_by",
    "interested",
    "stop_time",
    "attention_time",
    "gender",
    "category",
    "satisfaction",
    "extra",
)

TIME_BUCKETS = frozenset({"by_hour", "by_day", "global"})
COUNT_METRICS = ("passing_by", "interested")
SECONDS_METRICS = ("stop_time", "attention_time")
AS_DELIVERED_METRICS = ("gender", "category", "satisfaction")
KNOWN_METRICS = frozenset(COUNT_METRICS + SECONDS_METRICS + AS_DELIVERED_METRICS)


def normalize_entities(
    pages: Sequence[Mapping[str, Any]],
    *,
    stream: str,
    time_bucket: str,
    window_start: datetime,
) -> list[tuple[object, ...]]:
    """One record per distinct bucket of every page; BadPayload names the bad bucket."""
    if time_bucket not in TIME_BUCKETS:
        raise ValueError(f"time_bucket must be one of {sorted(TIME_BUCKETS)}, not {time_bucket!r}")
    if window_start.utcoffset() is None:
        raise ValueError("window_start must be timezone-aware")
    records: dict[datetime, tuple[object, ...]] = {}
    for number, page in enumerate(pages, start=1):
        entities = page.get("entities") if isinstance(page, Mapping) else None
        if not isinstance(entities, Mapping):
            raise BadPayload(f"angus page {number}: 'entities' is missing or not an object")
        for key, value in entities.items():
            start = _period_start(key, time_bucket, window_start)
            records.pop(start, None)  # last wins, and the order follows the last delivery
            records[start] = (stream, time_bucket, start, *_metrics(key, value))
    return list(records.values())


def _period_start(key: object, time_bucket: str, window_start: datetime) -> datetime:
    if key == "global":
        if time_bucket != "global":
            raise BadPayload(f"angus bucket 'global' in an answer for time={time_bucket}")
        return window_start
    if not isinstance(key, str):
        raise BadPayload(f"angus bucket {_show(key)}: key is not a string")
    try:
        start = datetime.fromisoformat(key)
    except ValueError:
        raise BadPayload(f"angus bucket {_show(key)}: key is neither a date nor 'global'") from None
    if start.utcoffset() is None:
        # a naive time cannot be placed on the timeline without guessing its zone
        raise BadPayload(f"angus bucket {_show(key)}: date has no UTC offset")
    return start


def _metrics(key: str, value: object) -> tuple[object, ...]:
    """passing_by .. satisfaction, extra for one bucket value."""
    if not isinstance(value, Mapping):
        raise BadPayload(
            f"angus bucket {_show(key)}: value is {type(value).__name__}, not an object"
        )
    extra: dict[str, Any] = {}
    counts: list[int | None] = []
    for metric in COUNT_METRICS:
        raw = _unwrap(key, metric, value.get(metric), extra)
        counts.append(_count(key, metric, raw))
    seconds: list[float | None] = []
    for metric in SECONDS_METRICS:
        raw = _unwrap(key, metric, value.get(metric), extra)
        seconds.append(_seconds(key, metric, raw))
    delivered = [_jsonb(key, metric, value.get(metric)) for metric in AS_DELIVERED_METRICS]
    for name, item in value.items():
        if name not in KNOWN_METRICS:
            extra[str(name)] = item
    extra_json = _jsonb(key, "extra", extra)
    return (*counts, *seconds, *delivered, extra_json)


def _unwrap(key: str, metric: str, raw: object, extra: dict[str, Any]) -> object:
    """The number inside `{"value": n}` (or a bare n); other keys of the wrapper go to extra."""
    if isinstance(raw, Mapping):
        rest = {str(k): v for k, v in raw.items() if k != "value"}
        if rest:
            extra[metric] = rest
        return raw.get("value")
    if raw is None or _is_number(raw):
        return raw
    raise BadPayload(
        f"angus bucket {_show(key)} metric {metric!r}: {_show(raw)} is neither a number "
        'nor {"value": number}'
    )


def _count(key: str, metric: str, raw: object) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    raise BadPayload(f"angus bucket {_show(key)} metric {metric!r}: {_show(raw)} is not an integer")


def _seconds(key: str, metric: str, raw: object) -> float | None:
    if raw is None:
        return None
    if _is_number(raw) and math.isfinite(raw):
        return float(raw)
    raise BadPayload(
        f"angus bucket {_show(key)} metric {metric!r}: {_show(raw)} is not a number of seconds"
    )


def _jsonb(key: str, metric: str, value: object) -> str | None:
    """JSON text for a jsonb column; None (SQL NULL) for a missing or null metric."""
    if value is None:
        return None
    if _has_nul(value):  # PostgreSQL's jsonb refuses \u0000
        raise BadPayload(f"angus bucket {_show(key)} metric {metric!r}: contains a NUL character")
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as error:
        raise BadPayload(f"angus bucket {_show(key)} metric {metric!r}: {error}") from None


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _has_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, Mapping):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


def _show(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
