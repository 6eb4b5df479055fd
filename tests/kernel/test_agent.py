"""The director agent against a real kernel (inside a lab guest): desired state in, IPVS table out,
health checks acting locally, restarts and Redis outages changing nothing in the data plane.

The guest has the classic topology (lab/topo.sh): client 172.16.10.100 -> wan 172.16.10.2 -> rs1/rs2 with
lab/rsd.py on :80 and :5500. Redis is a private redis-server on the guest's loopback (tests/conftest.py).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from director import keys
from director.agent import Agent
from director.desired import CheckSpec, DesiredState, RealSpec, ServiceSpec

from .conftest import CLIENT_NS, LineClient, wait_for
from .conftest import http_get as http_get_from

pytestmark = pytest.mark.kernel

VIP = "172.16.10.52"


def http_get() -> str:
    return http_get_from(CLIENT_NS, VIP)


REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def ipvsadm_table() -> dict[str, dict[str, int]]:
    """The kernel table as ipvsadm (not our code) reads it: {"TCP 172.16.10.52:80": {"192.168.1.4:80": w}}."""
    sys.path.insert(0, os.path.join(REPO, "lab"))
    from labtasks import parse_ipvsadm

    out = subprocess.run(["ipvsadm", "-Ln"], capture_output=True, text=True, timeout=10, check=True).stdout
    return parse_ipvsadm(out)


def rs(name: str, action: str) -> None:
    """Stop or start a real server's HTTP daemon (pidfiles written by lab/topo.sh)."""
    pidfile = f"/run/rsd-{name}-http.pid"
    if action == "stop":
        pid = int(open(pidfile).read())
        os.kill(pid, signal.SIGTERM)
        assert wait_for(lambda: not os.path.exists(f"/proc/{pid}"), 10, 0.05)
        return
    subprocess.Popen(
        ["ip", "netns", "exec", name, sys.executable, os.path.join(REPO, "lab", "rsd.py"), name,
         "--http-port", "80", "--tcp-port", "0", "--pidfile", pidfile],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip

    def listening():
        out = subprocess.run(["ip", "netns", "exec", name, "ss", "-ltnH", "sport = :80"], capture_output=True,
                             text=True).stdout  # fmt: skip
        return bool(out.strip())

    assert wait_for(listening, 30, 0.1)


def demo_state(revision: int = 1, **changes) -> DesiredState:
    http = ServiceSpec(
        protocol="tcp", address=VIP, port=80, scheduler="rr",
        check=CheckSpec(checktype="negotiate", service="http", request="/index.html", receive="rs",
                        checkinterval=0.5, checktimeout=0.5, negotiatetimeout=0.5, quiescent=True),
        reals=(RealSpec("192.168.1.4", 80, "masq", changes.pop("w1", 1)), RealSpec("192.168.1.5", 80, "masq", 1)),
    )  # fmt: skip
    tcp = ServiceSpec(
        protocol="tcp", address=VIP, port=5500, scheduler="wlc", persistence=300,
        check=CheckSpec(checktype="connect", checkinterval=0.5, checktimeout=0.5, quiescent=False),
        reals=(RealSpec("192.168.1.4", 5500, "masq", 1), RealSpec("192.168.1.5", 5500, "masq", 1)),
    )  # fmt: skip
    return DesiredState(
        director="kt", revision=revision, wan_interface="wan", lan_interface="lan", ip_forward=True,
        masquerade=("192.168.1.0/24",), vips=(f"{VIP}/32",), services=(http, tcp), **changes,
    )  # fmt: skip


@pytest.fixture
def agent(tmp_path, redis_url):
    a = Agent("kt", str(tmp_path / "state"), redis_url)
    a.start()
    yield a
    a.stop()
    a.apply_desired(DesiredState(director="kt", revision=10**9).to_dict())  # empty table for the next test


def test_it_builds_the_classic_table_with_vip_and_masquerade(agent):
    with open("/proc/sys/net/ipv4/ip_forward", "w") as f:  # the topology turned it on: start from off
        f.write("0\n")
    assert open("/proc/sys/net/ipv4/ip_forward").read().strip() == "0"
    result = agent.apply_desired(demo_state().to_dict(), job_id=7)
    assert result["errors"] == []
    assert ipvsadm_table() == {
        f"TCP {VIP}:80": {"192.168.1.4:80": 1, "192.168.1.5:80": 1},
        f"TCP {VIP}:5500": {"192.168.1.4:5500": 1, "192.168.1.5:5500": 1},
    }
    addrs = subprocess.run(["ip", "-br", "addr", "show", "wan"], capture_output=True, text=True).stdout
    assert f"{VIP}/32" in addrs
    # nftables where the kernel has its nat chain type, else the iptables-legacy fallback (this UML kernel)
    rules = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout
    rules += subprocess.run(["iptables-legacy-save", "-t", "nat"], capture_output=True, text=True).stdout
    assert "192.168.1.0/24" in rules and ("masquerade" in rules or "MASQUERADE" in rules)
    assert open("/proc/sys/net/ipv4/ip_forward").read().strip() == "1"
    answers = {http_get() for _ in range(4)}
    assert answers == {"rs1", "rs2"}


def test_it_applies_again_with_no_kernel_operation(agent):
    agent.apply_desired(demo_state(1).to_dict())
    again = agent.apply_desired(demo_state(2).to_dict())
    assert again["ops"] == 0 and again["errors"] == []


def test_it_ignores_a_stale_revision(agent):
    agent.apply_desired(demo_state(5, w1=3).to_dict())
    stale = agent.apply_desired(demo_state(4, w1=9).to_dict())
    assert stale["stale"] == 4
    assert ipvsadm_table()[f"TCP {VIP}:80"]["192.168.1.4:80"] == 3


def test_it_quiesces_a_failed_real_server_and_restores_it(agent, redis_client):
    agent.apply_desired(demo_state().to_dict())
    assert wait_for(
        lambda: agent.health.get(keys.dest_id(f"tcp|{VIP}|80", "192.168.1.4", 80)) is True, 10, 0.05
    )
    rs("rs1", "stop")
    try:
        t0 = time.monotonic()
        down = wait_for(lambda: ipvsadm_table()[f"TCP {VIP}:80"].get("192.168.1.4:80") == 0, 10, 0.02)
        assert down, "rs1 was not quiesced"
        # interval + timeout, plus scheduling slack inside UML
        assert time.monotonic() - t0 < 0.5 + 0.5 + 2.0
        assert {http_get() for _ in range(4)} == {"rs2"}
    finally:
        rs("rs1", "start")
    assert wait_for(lambda: ipvsadm_table()[f"TCP {VIP}:80"].get("192.168.1.4:80") == 1, 10, 0.05)
    agent.events.flush(agent.redis)
    events = [
        json.loads(f["event"]) if "event" in f else f
        for _, f in redis_client.xrange(keys.events_stream("kt"))
    ]
    text = json.dumps(events)
    assert "192.168.1.4:80" in text and "is down" in text and "is up" in text


def test_it_keeps_the_table_and_connections_across_a_restart(tmp_path, redis_url):
    first = Agent("kt", str(tmp_path / "state"), redis_url)
    first.start()
    try:
        first.apply_desired(demo_state(3, w1=4).to_dict())
        before = ipvsadm_table()
        held = LineClient(CLIENT_NS, VIP)
        who = held.ask("ping").split()[0]
        first.stop()
        second = Agent("kt", str(tmp_path / "state"), redis_url)
        second.start()
        try:
            assert second.revision == 3
            assert ipvsadm_table() == before
            assert held.ask("again").split()[0] == who
        finally:
            held.close()
            second.stop()
            second.apply_desired(DesiredState(director="kt", revision=10**9).to_dict())
    finally:
        first.engine.stop()


def test_it_acts_on_checks_and_buffers_events_while_redis_is_unreachable(tmp_path, redis_url, redis_client):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]  # nothing listens there: Redis is "down"
    state = str(tmp_path / "state")
    a = Agent("kt", state, f"redis://127.0.0.1:{dead_port}/0")
    a.start()
    try:
        a.apply_desired(demo_state().to_dict())
        rs("rs2", "stop")
        try:
            assert wait_for(lambda: ipvsadm_table()[f"TCP {VIP}:80"].get("192.168.1.5:80") == 0, 10, 0.02)
        finally:
            rs("rs2", "start")
        assert wait_for(lambda: ipvsadm_table()[f"TCP {VIP}:80"].get("192.168.1.5:80") == 1, 10, 0.05)
        pending = a.events.pending()
        assert any("192.168.1.5:80" in e["message"] and "down" in e["message"] for e in pending)
        # Redis "comes back": the same log, flushed to a live server, loses nothing
        import redis

        sent = a.events.flush(redis.Redis.from_url(redis_url, decode_responses=True))
        assert sent == len(pending)
        assert a.events.pending() == []
        assert redis_client.xlen(keys.events_stream("kt")) >= sent
    finally:
        a.stop()
        a.apply_desired(DesiredState(director="kt", revision=10**9).to_dict())
