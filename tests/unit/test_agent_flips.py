"""Health flips off the checking loop: queued by the engine's callback, coalesced per real server, patched
into the kernel in O(changed), the health file and the events following in batches.

The agent runs for real (its Redis events, its state directory, its flip thread) on a memory kernel, as in
test_agent_trust.py, whose fixtures this file shares.
"""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

from director import agent as agent_mod
from director import keys

from . import test_agent_trust as trust
from .test_agent_trust import signed, state

central, host, lone_agent = trust.central, trust.host, trust.lone_agent  # the shared fixtures

VIP = "172.16.10.52"


def many_reals(n: int) -> list[dict]:
    return [{"address": f"192.168.{1 + i // 200}.{10 + i % 200}", "port": 80, "weight": 2} for i in range(n)]


def big_state(revision: int, services: int = 20, reals: int = 10, **changes) -> dict:
    svcs = [
        {
            "protocol": "tcp",
            "address": f"10.7.0.{1 + i}",
            "port": 80,
            "check": {"checktype": "connect"},
            "reals": many_reals(reals),
        }
        for i in range(services)
    ]
    return state(revision, services=svcs, **changes)


def flip(agent, service: str, address: str, up: bool, reason: str = "test"):
    agent._on_health_change(
        ("tcp", service, 80), (address, 80), up, SimpleNamespace(reason=reason, latency=0.001)
    )


def drain(agent) -> list:
    batch = []
    while not agent._flips.empty():
        batch.append(agent._flips.get_nowait())
    return batch


def check_events(redis_client) -> list[dict]:
    return [f for _, f in redis_client.xrange(keys.events_stream("d1")) if f["kind"] == "check"]


def test_it_coalesces_flips_of_one_real_server_and_patches_only_what_changed(
    lone_agent, central, redis_client
):
    assert lone_agent.receive(signed(central, big_state(1)))["errors"] == []
    kernel = lone_agent.wire
    dumps, calls = kernel.dumps, len(kernel.calls)
    for up in (False, True, False):  # a flap: the last word counts
        flip(lone_agent, "10.7.0.3", "192.168.1.12", up)
    flip(lone_agent, "10.7.0.9", "192.168.1.10", True)  # unknown counted as up: no kernel op
    flip(lone_agent, "10.7.0.5", "192.168.1.14", True)
    flip(lone_agent, "10.7.0.5", "192.168.1.14", True)
    lone_agent._act_on_flips(drain(lone_agent))
    assert kernel.calls[calls:] == ["set_dest"]  # one op: the flapping real at weight 0 (quiescent)
    assert kernel.dumps == dumps  # no dump, no re-read
    weights = {d.address: d.weight for d in kernel.table[("tcp", "10.7.0.3", 80)].dests}
    assert weights["192.168.1.12"] == 0 and set(weights.values()) == {0, 2}
    sid = keys.service_id("tcp", "10.7.0.3", 80)
    assert lone_agent.health[keys.dest_id(sid, "192.168.1.12", 80)] is False
    lone_agent._housekeep(force=True)
    events = check_events(redis_client)
    down = [e for e in events if e["health"] == "down"]
    assert (
        len(down) == 1
        and json.loads(down[0]["data"])["flips"] == 3
        and "192.168.1.12:80" in down[0]["message"]
    )
    with open(lone_agent.health_path) as f:
        assert json.load(f)[keys.dest_id(sid, "192.168.1.12", 80)] is False


def test_the_flip_thread_turns_a_burst_into_one_patch_and_rate_limits_file_and_events(
    lone_agent, central, redis_client, monkeypatch
):
    assert lone_agent.receive(signed(central, big_state(1, services=50, reals=20)))["errors"] == []
    kernel = lone_agent.wire
    applies = []
    real_patch = lone_agent.host.reconciler.patch
    monkeypatch.setattr(
        lone_agent.host.reconciler, "patch", lambda table: applies.append(len(table)) or real_patch(table)
    )
    writes = []
    real_save = agent_mod.save_json
    monkeypatch.setattr(
        agent_mod, "save_json", lambda path, data: writes.append(path) or real_save(path, data)
    )
    dumps = kernel.dumps
    reals = many_reals(20)
    for i in range(50):  # a mass outage: every real of every service goes down, queued before the thread runs
        for real in reals:
            flip(lone_agent, f"10.7.0.{1 + i}", real["address"], False)
    lone_agent._stop.clear()
    lone_agent._flipper = agent_mod.threading.Thread(target=lone_agent._flip_loop, daemon=True)
    lone_agent._flipper.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (
            applies and not lone_agent._health_dirty and not lone_agent._events_pending
        ):
            time.sleep(0.05)
    finally:
        lone_agent._stop.set()
        lone_agent._flipper.join(timeout=10)
    assert applies == [50]  # 1,000 flips: one patch of the 50 services they touch
    assert kernel.dumps == dumps
    assert all(d.weight == 0 for s in kernel.table.values() for d in s.dests)
    assert writes.count(lone_agent.health_path) == 1  # one health-file write for the burst
    lone_agent.events.flush(lone_agent.redis)
    assert len([e for e in check_events(redis_client) if e["health"] == "down"]) == 1000


def test_an_admin_change_in_a_new_revision_patches_only_its_service(lone_agent, central):
    assert lone_agent.receive(signed(central, big_state(1)))["errors"] == []
    kernel = lone_agent.wire
    dumps, calls = kernel.dumps, len(kernel.calls)
    doc = big_state(2)
    doc["services"][4]["reals"][3]["weight"] = 7
    doc["services"][6]["reals"][0]["admin_state"] = "draining"
    assert lone_agent.receive(signed(central, doc))["errors"] == []
    assert kernel.calls[calls:] == ["set_dest", "set_dest"] and kernel.dumps == dumps
    assert {d.address: d.weight for d in kernel.table[("tcp", "10.7.0.5", 80)].dests}["192.168.1.13"] == 7
    assert kernel.table[("tcp", "10.7.0.7", 80)].dests[0].weight == 0
    doc = big_state(3, services=21)  # a new service: the whole table is diffed again
    assert lone_agent.receive(signed(central, doc))["errors"] == []
    assert ("tcp", "10.7.0.21", 80) in kernel.table
