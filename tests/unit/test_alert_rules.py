"""The Prometheus alert rules are valid and each fires when it should and only then.

Runs promtool (Debian: package `prometheus`). A missing promtool fails the test: the rules
would otherwise go unchecked.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    assert tool is not None, "promtool is not installed (apt-get install prometheus)"
    return subprocess.run(
        [tool, *args], cwd=RULES, capture_output=True, text=True, timeout=60, check=False
    )


def test_alert_rules_pass_promtool_check() -> None:
    result = promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_alert_fires_and_stays_quiet_as_its_unit_tests_say() -> None:
    result = promtool("test", "rules", "alerts.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test() -> None:
    rules = yaml.safe_load((RULES / "alerts.yml").read_text())
    tests = yaml.safe_load((RULES / "alerts.test.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    tested: dict[str, set[bool]] = {}
    for case in tests["tests"]:
        for check in case["alert_rule_test"]:
            tested.setdefault(check["alertname"], set()).add(bool(check.get("exp_alerts")))
    assert {a: tested.get(a, set()) for a in alerts} == {a: {True, False} for a in alerts}
