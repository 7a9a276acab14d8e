"""The Grafana dashboard and the alert rules query only metrics the worker exports, and the
dashboard shows every one of them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from ingest.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "ingest.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"

# the series each kind of metric family produces, by suffix
_SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("_sum", "_count", ""),
}
_KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "bool", "offset"}
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")


def exported_families() -> dict[str, tuple[set[str], set[str]]]:
    """Per metric family a Metrics() registers: its series names and its label names."""
    metrics = Metrics()
    labels = {
        wrapper._name: set(wrapper._labelnames)
        for wrapper in vars(metrics).values()
        if isinstance(wrapper, MetricWrapperBase)
    }
    found = {}
    for family in metrics.registry.collect():
        series = {family.name + suffix for suffix in _SUFFIXES[family.type]}
        found[family.name] = (series, labels[family.name])
    return found


def exported_series() -> dict[str, set[str]]:
    """Every series name a Metrics() exports, with the label names it may carry."""
    return {
        name: family_labels | ({"le"} if name.endswith("_bucket") else set())
        for series, family_labels in exported_families().values()
        for name in series
    }


def series_in(expr: str) -> set[str]:
    """The series names a PromQL expression selects."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings (label values, templates)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges
    text = _GROUPING.sub(" ", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*(?:\s*\()?", text):
        token = match.group(0)
        if token.endswith("(") or token in _KEYWORDS:
            continue  # a function, an aggregation or an operator
        if re.fullmatch(r"[eE]\d*|Inf|NaN", token):
            continue
        names.add(token)
    return names


def labels_in(expr: str) -> set[str]:
    """The label names an expression matches on or groups by."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    names = {
        m
        for matcher in re.findall(r"\{([^}]*)\}", text)
        for m in re.findall(r"(\w+)\s*[=!]", matcher)
    }
    for group in _GROUPING.finditer(text):
        if group.group(1) in ("by", "without", "on", "ignoring"):
            inner = group.group(0)[group.group(0).index("(") + 1 : -1]
            names |= {n.strip() for n in inner.split(",") if n.strip()}
    return names


def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for item in items:
        yield item
        yield from panels(item.get("panels", []))


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def dashboard_exprs() -> list[tuple[str, str]]:
    return [
        (panel["title"], target["expr"])
        for panel in panels(dashboard()["panels"])
        for target in panel.get("targets", [])
    ]


def alert_exprs() -> list[tuple[str, str]]:
    rules = yaml.safe_load(ALERTS.read_text())
    return [(r["alert"], r["expr"]) for g in rules["groups"] for r in g["rules"]]


def test_the_expression_parser_finds_series_and_labels() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (vendor, le) (rate(a_bucket{x="b c"}[5m])))'
        " - on (vendor) max(b) unless c > 3 * 86400 and 1e3"
    )
    assert series_in(expr) == {"a_bucket", "b", "c"}
    assert labels_in(expr) == {"vendor", "le", "x"}


@pytest.mark.parametrize(("where", "expr"), dashboard_exprs() + alert_exprs())
def test_every_query_selects_series_the_worker_exports_by_their_labels(
    where: str, expr: str
) -> None:
    exported = exported_series()
    selected = series_in(expr)
    assert selected, f"{where}: no series in {expr!r}"
    unknown = selected - exported.keys()
    assert not unknown, f"{where}: {sorted(unknown)} are not exported; exported: {sorted(exported)}"
    known_labels = set().union(*(exported[s] for s in selected))
    assert labels_in(expr) <= known_labels, f"{where}: labels of {expr!r}"


def test_every_exported_metric_has_a_panel() -> None:
    shown = {name for _, expr in dashboard_exprs() for name in series_in(expr)}
    missing = {family for family, (series, _) in exported_families().items() if not series & shown}
    assert not missing


def test_panels_have_unique_ids_titles_and_the_datasource_variable() -> None:
    data = dashboard()
    every = list(panels(data["panels"]))
    assert len({p["id"] for p in every}) == len(every)
    assert len({p["title"] for p in every}) == len(every)
    variables = {v["name"]: v for v in data["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    for panel in every:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert panel["targets"] and panel["description"], panel["title"]


@pytest.mark.parametrize("doc", ["README.md", "docs/operations.md"])
def test_the_docs_name_every_exported_metric(doc: str) -> None:
    text = (ROOT / doc).read_text()
    named = {
        family
        for family, (series, _) in exported_families().items()
        if any(re.search(rf"`{re.escape(s)}[{{`]", text) for s in {family, *series})
    }
    assert set(exported_families()) - named == set()
