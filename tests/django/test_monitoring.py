"""deploy/grafana and deploy/prometheus against what /metrics really emits.

A dashboard panel or an alert that names a metric or a label the exporter does not produce shows "No data"
or never fires, and nothing says so. Here every metric name, every label matcher (with its literal value),
every grouping label, every legend and annotation label used by the dashboard and the rules is looked up in
a real scrape of /metrics over a populated fixture: a lone director with drift and a failing real server,
and a director pair (MASTER + BACKUP) whose latest apply failed.
"""

import json
import pathlib
import re

import pytest
import yaml
from django.urls import reverse

from clusters import choices as C
from clusters.models import ApiToken, ApplyJob, Director

from .snapshots import dest, write_snapshot

pytestmark = pytest.mark.django_db

ROOT = pathlib.Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "ultramonkey.json"
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
METRIC = re.compile(r"\b(umw_[a-z0-9_]+)\b")
SELECTOR = re.compile(r"\b(umw_[a-z0-9_]+)\{([^}]*)\}")
MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"')
GROUPING = re.compile(r"\b(?:by|on|without|ignoring)\s*\(([^)]*)\)")
LEGEND = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")
ANNOTATION_LABEL = re.compile(r"\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)")
LABEL_VALUES = re.compile(r"label_values\((umw_[a-z0-9_]+)(?:\{[^}]*\})?,\s*([a-zA-Z_][a-zA-Z0-9_]*)\)")


@pytest.fixture
def emitted(client, demo, viewer, redis_client):
    """{metric name: [labels of each sample]} from one real scrape of the populated fixture."""
    rs1, rs2 = demo.services.get(port=80).reals.order_by("address")
    Director.objects.filter(pk=demo.pk).update(ha_address="172.16.10.2")
    backup = Director.objects.create(name="lab2", peer=demo, ha_address="172.16.10.3", ha_priority=100)
    master = {"state": "MASTER", "priority": 150}
    per_server = {rs1: dest(rs1, active=3, cps=2), rs2: dest(rs2, up=False)}
    write_snapshot(redis_client, demo, per_server, drift=("extra dest",), ha=master)
    write_snapshot(redis_client, backup, ha={"state": "BACKUP", "priority": 100})
    ApplyJob.objects.create(director=backup, revision=1, status=C.JobStatus.APPLIED)
    ApplyJob.objects.create(director=backup, revision=2, status=C.JobStatus.FAILED, error="ipvs: EPERM")
    _, secret = ApiToken.issue(viewer)
    response = client.get(reverse("metrics"), headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 200
    out: dict[str, list[dict]] = {}
    for line in response.content.decode().splitlines():
        if line and not line.startswith("#"):
            name, body = SAMPLE.match(line).groups()
            out.setdefault(name, []).append(dict(LABEL.findall(body or "")))
    return out


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(where, PromQL, legend) for every panel target and template variable of the dashboard."""
    dash = json.loads(DASHBOARD.read_text())
    out = []
    for panel in dash["panels"]:
        for target in panel.get("targets", []):
            out.append((f"panel {panel['title']!r}", target["expr"], target.get("legendFormat", "")))
    for var in dash["templating"]["list"]:
        if var["type"] == "query":
            out.append((f"variable {var['name']}", var["query"]["query"], ""))
    return out


def alert_rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def problems(where: str, expr: str, emitted: dict, extra_labels: set[str] = frozenset()) -> list[str]:
    """What `expr` (plus its legend/annotation labels) asks of /metrics that the scrape does not have."""
    found = []
    names = set(METRIC.findall(expr))
    if not names:
        found.append(f"{where}: uses no umw_ metric: {expr}")
    for name in names - set(emitted):
        found.append(f"{where}: metric {name} is not emitted")
    for name, body in SELECTOR.findall(expr):
        if name not in emitted:
            continue  # reported above
        for label, op, wanted in MATCHER.findall(body):
            samples = emitted.get(name, [])
            if not any(label in s for s in samples):
                found.append(f"{where}: {name} has no label {label!r}")
            elif op == "=" and not any(s.get(label) == wanted for s in samples):
                found.append(f"{where}: no {name} sample has {label}={wanted!r}")
    for name, label in LABEL_VALUES.findall(expr):
        if not any(label in s for s in emitted.get(name, [])):
            found.append(f"{where}: label_values: {name} has no label {label!r}")
    grouped = {g.strip() for group in GROUPING.findall(expr) for g in group.split(",") if g.strip()}
    for label in grouped | set(extra_labels):
        if not any(label in s for name in names for s in emitted.get(name, [])):
            found.append(f"{where}: label {label!r} is on none of {sorted(names)}")
    return found


def test_it_emits_the_pair_role_and_the_failed_apply_the_alerts_need(emitted):
    roles = {(s["director"], s["state"]): s for s in emitted["umw_director_ha_state"]}
    assert roles[("lab1", "MASTER")]["pair"] == roles[("lab2", "BACKUP")]["pair"] == "lab1+lab2"
    assert {s["director"] for s in emitted["umw_director_apply_failed"]} == {"lab1", "lab2"}


def test_it_uses_only_metrics_and_labels_the_exporter_emits_in_the_dashboard(emitted):
    found = []
    for where, expr, legend in dashboard_queries():
        found += problems(where, expr, emitted, set(LEGEND.findall(legend)))
    assert found == []


def test_it_uses_only_metrics_and_labels_the_exporter_emits_in_the_alert_rules(emitted):
    found = []
    for rule in alert_rules():
        text = " ".join(rule.get("annotations", {}).values())
        found += problems(
            f"alert {rule['alert']}", rule["expr"], emitted, set(ANNOTATION_LABEL.findall(text))
        )
    assert found == []


def test_it_has_an_alert_for_every_failure_the_operators_asked_for():
    assert {r["alert"] for r in alert_rules()} >= {
        "UltraMonkeyAgentDown",
        "UltraMonkeyRealServerDown",
        "UltraMonkeyQuorumLost",
        "UltraMonkeyDriftPresent",
        "UltraMonkeyApplyFailing",
        "UltraMonkeyPairWithoutMaster",
        "UltraMonkeyPairWithTwoMasters",
    }


def test_it_catches_a_misspelt_metric_or_label_value(emitted):
    """The checker itself: a typo in a name, a label or a label value is reported, not waved through."""
    assert problems("t", 'umw_agent_upp{director=~"$director"}', emitted) == [
        "t: metric umw_agent_upp is not emitted"
    ]
    assert problems("t", 'umw_director_ha_state{state="MASTR"}', emitted) == [
        "t: no umw_director_ha_state sample has state='MASTR'"
    ]
    assert problems("t", "sum by (pool) (umw_service_quorum)", emitted) == [
        "t: label 'pool' is on none of ['umw_service_quorum']"
    ]


def test_it_ships_a_dashboard_grafana_can_import():
    dash = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)) and dash["uid"] and dash["schemaVersion"] >= 36
    for panel in dash["panels"]:
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]) and panel["gridPos"]["x"] + panel["gridPos"][
            "w"
        ] <= 24
        for target in panel.get("targets", []):
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"} and target["refId"]
