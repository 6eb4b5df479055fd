"""Real traffic through the classic NAT topology: scheduling, held connections across weight changes,
statistics, the connection table and drift after a manual ipvsadm."""

from __future__ import annotations

import dataclasses

import pytest

from director import conntable, drift, sysctl
from director import vip as vip_mod
from director.ipvs import model
from director.ipvs.model import Dest, Service
from director.ipvs.plan import Reconciler, reconcile

from .conftest import CLIENT_NS, RS, VIP, LineClient, http_get, sh, wait_for

pytestmark = pytest.mark.kernel


def web(port: int = 80, scheduler: str = "rr", w1: int = 1, w2: int = 1) -> Service:
    return Service(
        "tcp",
        VIP,
        port,
        scheduler=scheduler,
        dests=(Dest(RS["rs1"], port, weight=w1), Dest(RS["rs2"], port, weight=w2)),
    )


def test_round_robin_through_nat_alternates_rs1_and_rs2(wire, vip):
    assert reconcile(wire, [web()]).errors == []
    answers = [http_get(CLIENT_NS, VIP) for _ in range(6)]
    assert set(answers) == {"rs1", "rs2"}
    assert all(a != b for a, b in zip(answers, answers[1:], strict=False)), answers


def test_weight_zero_takes_a_server_out_of_new_connections(wire, vip):
    assert reconcile(wire, [web(w1=0)]).errors == []
    assert {http_get(CLIENT_NS, VIP) for _ in range(4)} == {"rs2"}


def test_a_held_connection_survives_100_weight_changes(wire, vip):
    assert reconcile(wire, [web(5500)]).errors == []
    client = LineClient(CLIENT_NS, VIP, 5500)
    try:
        first = client.ask("hello")
        name = first.split()[0]
        assert first == f"{name} hello"
        for i in range(100):
            report = reconcile(wire, [web(5500, w1=i % 7, w2=(i * 3) % 5)])
            assert report.errors == []
            assert {op.kind for op in report.ops} <= {"set_dest"}  # never delete + add
            if i % 10 == 9:
                assert client.ask(f"line {i}") == f"{name} line {i}"
        assert client.ask("bye") == f"{name} bye"
    finally:
        client.close()


def test_stats_counters_rise_with_traffic(wire, vip):
    assert reconcile(wire, [web()]).errors == []
    for _ in range(6):
        http_get(CLIENT_NS, VIP)

    def counted():
        svc = wire.dump()[0]
        return svc if svc.stats.conns >= 6 and all(d.stats.conns >= 3 for d in svc.dests) else None

    svc = wait_for(counted, timeout=8)  # the estimator publishes counters every 2 s
    assert svc, wire.dump()[0].stats
    assert svc.stats.inpkts > 0 and svc.stats.outpkts > 0
    assert svc.stats.inbytes > 0 and svc.stats.outbytes > 0
    assert all(d.stats.inbytes > 0 for d in svc.dests)


def test_rates_are_estimated_while_traffic_flows(wire, vip):
    assert reconcile(wire, [web()]).errors == []

    def rated():
        for _ in range(5):  # keep traffic flowing between polls (the estimator runs every 2 s)
            http_get(CLIENT_NS, VIP)
        svc = wire.dump()[0]
        return svc if svc.stats.cps > 0 and svc.stats.inbps > 0 and svc.stats.outpps > 0 else None

    svc = wait_for(rated, timeout=12, interval=0.1)
    assert svc, wire.dump()[0].stats
    assert any(d.stats.cps > 0 for d in svc.dests)
    assert model.stats_dict(svc.stats)["inbps"] == svc.stats.inbps


def test_a_reconciler_follows_weight_flips_from_what_it_knows(wire, vip):
    rec = Reconciler(wire, full_every=3600)
    assert rec([web(5500)]).errors == []
    client = LineClient(CLIENT_NS, VIP, 5500)
    try:
        name = client.ask("x").split()[0]
        for i in range(20):
            report = rec([web(5500, w1=i % 2, w2=(i + 1) % 2)])
            assert report.errors == [] and report.ops_done == (1 if i == 0 else 2)
        assert {s.key: s for s in wire.dump()} == rec.known
        assert client.ask("y") == f"{name} y"
    finally:
        client.close()


def test_connection_counts_and_the_connection_table_show_a_held_connection(wire, vip):
    assert reconcile(wire, [web(5500)]).errors == []
    client = LineClient(CLIENT_NS, VIP, 5500)
    try:
        name = client.ask("hi").split()[0]
        dests = {d.address: d for d in wire.dump()[0].dests}
        assert dests[RS[name]].stats.active >= 1  # (+ what earlier tests' closing connections still hold)
        table = conntable.query(service=f"tcp|{VIP}|5500", state="established", max_age=0)
        assert table["matched"] == 1, table
        row = table["rows"][0]
        local_port = client.sock.getsockname()[1]
        assert row["client"] == f"172.16.10.100:{local_port}"
        assert row["virtual"] == f"{VIP}:5500"
        assert row["real"] == f"{RS[name]}:5500"
        assert row["proto"] == "tcp" and row["expire"] > 0
        sid = f"tcp|{VIP}|5500"
        assert table["states"] == {"ESTABLISHED": 1}
        assert table["reals"] == {f"{sid}|{RS[name]}|5500": 1}
        assert table["talkers"]["services"] == {sid: [["172.16.10.100", 1]]}
        held = conntable.query(client="172.16.10.0/24", port=5500, state="established", max_age=0)
        assert held["matched"] == 1
        assert conntable.query(client="10.0.0.0/8", max_age=0)["matched"] == 0
        assert conntable.query(real=RS[name], max_age=0)["matched"] >= 1
        assert conntable.query(service=f"tcp|{VIP}|80", state="ESTABLISHED", max_age=0)["matched"] == 0
    finally:
        client.close()


def test_drift_names_what_someone_added_by_hand_and_reconcile_removes_it(wire):
    table = [web()]
    assert reconcile(wire, table).errors == []
    assert drift.report(table, wire.dump()) == []
    sh("ipvsadm", "-a", "-t", f"{VIP}:80", "-r", "192.168.1.9:80", "-m", "-w", "3")
    sh("ipvsadm", "-A", "-u", f"{VIP}:53", "-s", "rr")
    sh("ipvsadm", "-e", "-t", f"{VIP}:80", "-r", f"{RS['rs1']}:80", "-m", "-w", "9")
    found = drift.report(table, wire.dump())
    assert (
        f"extra in the kernel, a reconcile would delete real 192.168.1.9:80 in TCP {VIP}:80 (masq, weight 3)"
        in found
    )
    assert f"extra in the kernel, a reconcile would delete service UDP {VIP}:53 (rr, 0 real servers)" in found
    assert (
        f"changed in the kernel, a reconcile would set real {RS['rs1']}:80 in TCP {VIP}:80: weight 9 -> 1"
        in found
    )
    assert len(found) == 3
    report = reconcile(wire, table)
    assert report.ops_done == 3 and report.errors == []
    assert drift.report(table, wire.dump()) == []


def test_the_persistence_flag_keeps_a_client_on_one_server(wire, vip):
    sticky = dataclasses.replace(web(), timeout=60)
    assert reconcile(wire, [sticky]).errors == []
    assert len({http_get(CLIENT_NS, VIP) for _ in range(4)}) == 1
    dests = wire.dump()[0].dests
    assert sum(d.stats.persistent for d in dests) == 1


@pytest.fixture
def ipv6_topology():
    """IPv6 on the classic topology for one test: client 2001:db8:10::100, wan ::2, lan 2001:db8:1::1,
    rs1 2001:db8:1::4, rs2 ::5 (default routes via the director), IPv6 forwarding on, VIP 2001:db8:10::52."""
    steps = [
        (
            "ip",
            "netns",
            "exec",
            "client",
            "ip",
            "-6",
            "addr",
            "add",
            "2001:db8:10::100/64",
            "dev",
            "eth0",
            "nodad",
        ),
        ("ip", "-6", "addr", "add", "2001:db8:10::2/64", "dev", "wan", "nodad"),
        ("ip", "-6", "addr", "add", "2001:db8:1::1/64", "dev", "lan", "nodad"),
    ]
    for i, ns in ((4, "rs1"), (5, "rs2")):
        steps += [
            (
                "ip",
                "netns",
                "exec",
                ns,
                "ip",
                "-6",
                "addr",
                "add",
                f"2001:db8:1::{i}/64",
                "dev",
                "eth0",
                "nodad",
            ),
            ("ip", "netns", "exec", ns, "ip", "-6", "route", "add", "default", "via", "2001:db8:1::1"),
        ]
    for step in steps:
        sh(*step)
    forwarding = sh("sysctl", "-n", "net.ipv6.conf.all.forwarding").strip()
    sysctl.set_ip_forward(True, ipv6=True)
    vip_mod.ensure("wan", ["2001:db8:10::52/64"])
    try:
        yield "2001:db8:10::52"
    finally:
        vip_mod.ensure("wan", [])
        sh("sysctl", "-qw", f"net.ipv6.conf.all.forwarding={forwarding}")
        for step in reversed(steps):
            undo = [("del" if word == "add" else word) for word in step]
            sh(*undo, check=False)


def test_round_robin_through_nat_over_ipv6(wire, ipv6_topology):
    vip6 = ipv6_topology
    svc = Service(
        "tcp", vip6, 80, scheduler="rr", dests=(Dest("2001:db8:1::4", 80), Dest("2001:db8:1::5", 80))
    )
    assert reconcile(wire, [svc]).errors == []
    answers = [http_get(CLIENT_NS, vip6) for _ in range(4)]
    assert set(answers) == {"rs1", "rs2"}
    assert all(a != b for a, b in zip(answers, answers[1:], strict=False)), answers
    rows = conntable.query(service=f"tcp|{vip6}|80", max_age=0)["rows"]
    assert rows and all(r["client"].startswith("[2001:db8:10::100]:") for r in rows)
    assert {r["real"] for r in rows} == {"[2001:db8:1::4]:80", "[2001:db8:1::5]:80"}
