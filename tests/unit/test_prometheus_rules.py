"""deploy/prometheus/alerts.yml as Prometheus itself reads it: `promtool check rules` (syntax, PromQL,
templates) and `promtool test rules` (each alert fires on its situation and not on the look-alikes).
promtool comes from Debian's prometheus package (scripts/bootstrap.sh --test installs it)."""

from __future__ import annotations

import pathlib
import shutil
import subprocess

import pytest

RULES = pathlib.Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


@pytest.fixture(scope="module")
def promtool():
    path = shutil.which("promtool")
    assert path, "promtool is missing: run scripts/bootstrap.sh --test (Debian package prometheus)"
    return path


def test_it_passes_promtool_check_rules(promtool):
    proc = subprocess.run(
        [promtool, "check", "rules", "alerts.yml"], cwd=RULES, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 7 rules found" in proc.stdout


def test_it_fires_each_alert_on_its_situation_only(promtool):
    proc = subprocess.run(
        [promtool, "test", "rules", "alerts.test.yml"], cwd=RULES, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_it_fails_the_rule_tests_when_an_alert_is_weakened(promtool, tmp_path):
    """The rule tests can fail: with AgentDown waiting 10 minutes instead of 2, they do."""
    (tmp_path / "alerts.yml").write_text((RULES / "alerts.yml").read_text().replace("for: 2m", "for: 10m", 1))
    (tmp_path / "alerts.test.yml").write_text((RULES / "alerts.test.yml").read_text())
    proc = subprocess.run(
        [promtool, "test", "rules", "alerts.test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1 and "UltraMonkeyAgentDown" in proc.stdout + proc.stderr
