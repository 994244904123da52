"""deploy/prometheus/alerts.yaml: valid rules (promtool check), each one firing where it should (promtool test,
deploy/prometheus/alerts_test.yaml), on metrics the services really export."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy" / "prometheus" / "alerts.yaml"
RULE_TESTS = REPO / "deploy" / "prometheus" / "alerts_test.yaml"
SOURCES = [*REPO.glob("services/*/llmagg_*/**/*.py"), *REPO.glob("libs/llmagg/**/*.py")]


def rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        pytest.skip("promtool is missing: apt-get install prometheus (.ci/run installs it)")
    return found


def test_promtool_accepts_the_rules():
    result = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout


def test_each_alert_fires_on_trouble_and_not_on_health():
    result = subprocess.run(
        [promtool(), "test", "rules", str(RULE_TESTS)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=RULE_TESTS.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test_a_severity_and_a_summary():
    tested = {
        case["alertname"]
        for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for case in test["alert_rule_test"]
        if case.get("exp_alerts")
    }
    for rule in rules():
        assert rule["alert"] in tested, f"{rule['alert']} never fires in alerts_test.yaml"
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"]


def test_every_metric_the_rules_read_is_exported_by_a_service():
    code = "\n".join(path.read_text() for path in SOURCES)
    for rule in rules():
        for metric in set(re.findall(r"\bllmagg_[a-z_]+", rule["expr"])):
            assert f'"{metric.removesuffix("_total")}"' in code, f"{rule['alert']}: no service exports {metric}"
