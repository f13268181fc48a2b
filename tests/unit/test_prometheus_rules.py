"""The Prometheus config, rules and rule unit tests in deploy/prometheus are valid and complete.

Runs promtool (Debian/Ubuntu: ``apt-get install prometheus``). Without promtool these tests skip
locally, but fail under CI (``CI`` set to anything but ""/0/false/no): a CI image that silently
skips them would ship untested alerts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROM_DIR = ROOT / "deploy" / "prometheus"
CONFIG = PROM_DIR / "prometheus.yml"
RULES = PROM_DIR / "rules" / "caseclock.rules.yml"
RULE_TESTS = PROM_DIR / "tests" / "caseclock.rules.test.yml"

INSTALL_HINT = (
    "promtool not found on PATH: install Debian's `prometheus` package "
    "(`apt-get install prometheus`) or a Prometheus release tarball, which ships promtool"
)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if in_ci():
            pytest.fail(INSTALL_HINT)
        pytest.skip(INSTALL_HINT)
    return path


def run(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def test_check_rules(promtool: str) -> None:
    result = run(promtool, "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_config(promtool: str) -> None:
    """prometheus.yml parses and its rule_files glob finds the caseclock rules."""
    result = run(promtool, "check", "config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert str(RULES.name) in result.stdout + result.stderr


def test_rule_unit_tests(promtool: str) -> None:
    result = run(promtool, "test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in load(RULES)["groups"] for rule in group["rules"] if "alert" in rule]


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    tests = load(RULE_TESTS)
    assert tests["rule_files"] == ["../rules/caseclock.rules.yml"]
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in tests["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert names - firing == set(), "alerts without a firing test case"
    assert names - quiet == set(), "alerts without a not-firing test case"
    assert (firing | quiet) - names == set(), "tests for alerts that do not exist"


def test_alerts_have_severity_and_text() -> None:
    rules = alert_rules()
    assert {rule["labels"]["severity"] for rule in rules} <= {"page", "critical", "warning"}
    for rule in rules:
        assert rule["annotations"]["summary"]
        assert rule["annotations"]["description"]


def test_required_alerts_present() -> None:
    by_name = {rule["alert"]: rule for rule in alert_rules()}
    assert by_name["CaseclockP1AcknowledgementBreach"]["labels"]["severity"] == "page"
    assert 'up{job="caseclock"} == 0' in by_name["CaseclockWorkerDown"]["expr"]
    stuck = by_name["CaseclockRecoveryStuck"]
    assert "caseclock_recovery_complete == 0" in stuck["expr"]
    assert stuck["for"] == "10m"
    for name in (
        "CaseclockSLABreachRateHigh",
        "CaseclockAlertLatenessHigh",
        "CaseclockDeadLettersSustained",
        "CaseclockConsumerLagHigh",
        "CaseclockTimersOverdue",
    ):
        assert name in by_name


def test_scrape_config_targets_worker() -> None:
    config = load(CONFIG)
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "caseclock"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    (sd,) = job["dns_sd_configs"]
    assert sd["names"] == ["worker"]
    assert sd["port"] == 6066
    assert config["rule_files"] == ["rules/*.yml"]
