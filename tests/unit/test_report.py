"""The agent's reporting part (director/report.py): the snapshot it builds from a kernel dump, the desired state
and health, and one report round into a real Redis (heartbeat, stats, history, drift events)."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
    meta = json.loads(redis_client.get(keys.stats_key(name)))
    assert (meta["format"], meta["revision"], meta["count"]) == (keys.STATS_FORMAT, 4, 1)
    assert meta["health_load"] == {"behind": True, "lag": 3.5}  # whether the health engine keeps up
    record = json.loads(redis_client.hget(keys.service_stats_key(name), SID))
    assert record["dests"][RS1]["active"] == 3
    assert json.loads(redis_client.hget(keys.summary_key(name), SID))["stats"] == {
        "active": 3,
        "inactive": 1,
        "conns": 9,
    }
    director.reporter.report_once()  # nothing moved: no new point, the reader fills the gap
    director.kernel = [
        dataclasses.replace(
            director.kernel[0],
            dests=(Dest("192.168.1.4", 80, weight=1, stats=Stats(active=4, inactive=1, cps=6)),),
        )
    ]
    director.reporter.report_once()
    history = [json.loads(p) for p in redis_client.lrange(keys.history_key(name, RS1), 0, -1)]
    assert [(p["active"], p["cps"]) for p in history] == [(3, 5), (4, 6)]


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


# -- rounds in proportion to change: what Redis holds after any sequence of rounds is the whole state ---------
def _kernel_for(specs, picks) -> list[Service]:
    """A kernel table for some of `specs`: per service (present?, [per real: (present?, active, conns)])."""
    out = []
    for spec, (present, reals) in zip(specs, picks, strict=False):
        if not present:
            continue
        dests = tuple(
            Dest(r.address, r.port or 80, weight=1, stats=Stats(active=active, conns=conns, cps=conns % 3))
            for r, (here, active, conns) in zip(spec.reals, reals, strict=False)
            if here
        )
        out.append(
            Service(
                "tcp", spec.address, spec.port, scheduler="rr", dests=dests, stats=Stats(conns=len(dests))
            )
        )
    return out


SPECS = tuple(
    ServiceSpec(protocol="tcp", address=f"10.0.0.{i}", port=80, scheduler="rr",
                reals=tuple(RealSpec(f"192.168.1.{j}", 80) for j in range(1, 4)))
    for i in range(1, 5)
)  # fmt: skip
rounds = st.lists(
    st.tuples(
        st.lists(
            st.tuples(st.booleans(), st.lists(st.tuples(st.booleans(), st.integers(0, 3), st.integers(0, 5)),
                                              min_size=3, max_size=3)),
            min_size=4, max_size=4,
        ),
        st.sets(st.sampled_from([f"192.168.1.{j}" for j in range(1, 4)])),  # reals marked down
        st.integers(1, 3),  # revision
        st.booleans(),  # force a full rewrite
    ),
    min_size=1, max_size=6,
)  # fmt: skip


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rounds)
def test_it_leaves_in_redis_exactly_the_whole_state_after_any_rounds(redis_client, tmp_path, many):
    from director import records

    name = "prop"
    redis_client.delete(keys.service_stats_key(name), keys.summary_key(name))
    state = {"kernel": [], "health": {}, "revision": 1, "specs": list(SPECS)}
    reporter = Reporter(
        name, redis_client, EventLog(str(tmp_path / "ev.jsonl"), name),
        dump=lambda: state["kernel"], specs=lambda: state["specs"], table=lambda: [],
        revision=lambda: state["revision"], health=lambda: state["health"], results=dict, ha=lambda: None,
    )  # fmt: skip
    for picks, down, revision, full in many:
        state["kernel"] = _kernel_for(SPECS, picks)
        state["health"] = {
            keys.dest_id(keys.service_key_for(s), r.address, r.port): r.address not in down
            for s in SPECS for r in s.reals
        }  # fmt: skip
        state["specs"] = list(SPECS[: 2 + revision])  # a new revision may drop services
        state["revision"] = revision
        if full:
            reporter._resync_at = None
        reporter.report_once()
        held = {
            sid: records.full(json.loads(v))
            for sid, v in redis_client.hgetall(keys.service_stats_key(name)).items()
        }
        assert held == reporter.snapshot()["services"]
        summaries = redis_client.hgetall(keys.summary_key(name))
        assert set(summaries) == set(held)


def test_it_checks_drift_a_share_per_round_and_adds_the_shares_up_to_the_whole(director, redis_client):
    from director import drift
    from director.report import DRIFT_SLICES

    state, health = director.state, director.health
    director.reporter.table_for = lambda specs: kernel_table(
        dataclasses.replace(state, services=tuple(specs)), health
    )
    director.kernel.append(Service("udp", VIP, 53, scheduler="rr"))  # by hand: not in the desired state
    for _ in range(DRIFT_SLICES):
        director.reporter.report_once()
    whole = drift.report(kernel_table(state, health), director.kernel)
    assert len(whole) == 2 and sorted(director.reporter.last_drift) == sorted(whole)
