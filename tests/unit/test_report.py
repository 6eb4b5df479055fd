"""The agent's reporting part (director/report.py): the snapshot it builds from a kernel dump, the desired state
and health, and one report round into a real Redis (heartbeat, stats, history, drift events)."""

from __future__ import annotations

import json

import pytest

from director import keys
from director.desired import DesiredState, RealSpec, ServiceSpec
from director.events import EventLog
from director.host import kernel_table
from director.ipvs.model import Dest, Service, Stats
from director.report import Reporter

VIP = "172.16.10.52"
SID = f"tcp|{VIP}|80"
RS1 = keys.dest_id(SID, "192.168.1.4", 80)
RS2 = keys.dest_id(SID, "192.168.1.5", 0)  # port 0: "the service port" in the kernel


class Director:
    """What the reporter reads of an agent: a desired state, health, a kernel dump and a pair view."""

    def __init__(self, redis_client, tmp_path, name: str):
        self.state = DesiredState(
            director=name,
            revision=4,
            services=(
                ServiceSpec(
                    protocol="tcp",
                    address=VIP,
                    port=80,
                    scheduler="rr",
                    reals=(RealSpec("192.168.1.4", 80), RealSpec("192.168.1.5", 0)),
                ),
            ),
        )
        self.health = {RS1: True, RS2: False}
        self.kernel = [
            Service(
                "tcp",
                VIP,
                80,
                scheduler="rr",
                dests=(Dest("192.168.1.4", 80, weight=1, stats=Stats(active=3, inactive=1, cps=5)),),
                stats=Stats(conns=9),
            )
        ]
        self.events = EventLog(str(tmp_path / "events.jsonl"), name)
        self.reporter = Reporter(
            name,
            redis_client,
            self.events,
            dump=lambda: self.kernel,
            specs=lambda: list(self.state.services),
            table=lambda: kernel_table(self.state, self.health),
            revision=lambda: self.state.revision,
            health=lambda: self.health,
            results=dict,
            ha=lambda: {"state": "MASTER"},
            health_load=lambda: {"behind": True, "lag": 3.5},
        )


@pytest.fixture
def director(redis_client, tmp_path, request):
    return Director(redis_client, tmp_path, f"rep-{request.node.name[-20:]}")


def test_it_reports_each_desired_real_with_what_the_kernel_holds(director):
    snap = director.reporter.snapshot()
    assert snap["revision"] == 4 and snap["ha"] == {"state": "MASTER"} and snap["drift"] == []
    svc = snap["services"][SID]
    assert (svc["label"], svc["healthy"], svc["total"], svc["quorum"]) == (f"TCP {VIP}:80", 1, 2, True)
    assert svc["stats"]["conns"] == 9
    one, two = svc["dests"][RS1], svc["dests"][RS2]
    assert (one["in_kernel"], one["weight"], one["active"], one["inactive"]) == (True, 1, 3, 1)
    assert one["stats"]["cps"] == 5 and one["health"]["up"] is True
    assert (two["in_kernel"], two["weight"], two["active"], two["health"]["up"]) == (False, None, 0, False)


def test_it_publishes_heartbeat_stats_and_history_in_one_round(director, redis_client):
    name = director.reporter.name
    director.reporter.report_once()
    beat = json.loads(redis_client.get(keys.heartbeat_key(name)))
    assert beat["revision"] == 4
    assert 0 < redis_client.ttl(keys.heartbeat_key(name)) <= keys.HEARTBEAT_TTL
    stats = json.loads(redis_client.get(keys.stats_key(name)))
    assert stats["services"][SID]["dests"][RS1]["active"] == 3
    assert stats["health_load"] == {"behind": True, "lag": 3.5}  # whether the health engine keeps up
    director.reporter.report_once()
    history = [json.loads(p) for p in redis_client.lrange(keys.history_key(name, RS1), 0, -1)]
    assert [(p["active"], p["cps"]) for p in history] == [(3, 5), (3, 5)]


def test_it_reports_drift_once_and_again_when_it_is_gone(director, redis_client):
    # rs2 is down (weight 0 with the default quiescent check) and missing from the kernel: one difference
    director.reporter.report_once(check_drift=True)
    found = director.reporter.last_drift
    assert len(found) == 1 and "192.168.1.5:80" in found[0] and "missing" in found[0]
    director.reporter.report_once(check_drift=True)
    director.kernel = kernel_table(director.state, director.health)  # someone put it right
    director.reporter.report_once(check_drift=True)
    assert director.reporter.last_drift == []
    messages = [
        f["message"]
        for _, f in redis_client.xrange(keys.events_stream(director.reporter.name))
        if f["director"] == director.reporter.name
    ]
    assert messages == [
        "kernel differs from desired state: 1 difference(s)",
        "kernel matches desired state again",
    ]
