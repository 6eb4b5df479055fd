"""A director pair in the lab: lab1 (priority 150) and lab2 (100) share the VIP 100.64.0.200 on the lab bridge.

No dashboard and no database here: the desired states go straight to the agents' queues, the way
clusters/agents.send_desired sends them, so what is proven is the agents' own protocol (director/failover.py)
with the central side doing nothing at all. Every guest has its own client/rs1/rs2 topology; the VIP's
service goes to that guest's rs1/rs2, so whichever director is MASTER answers.

The story, in order (one lab for the module):
lab1 becomes MASTER and holds the VIP, lab2 does not -> HTTP from the lab namespace answers through lab1 ->
lab1's agent is killed for good (a crash: no goodbye, its kernel keeps serving) -> lab2 takes over within
3 x interval + 1 s, its gratuitous ARP moves the lab namespace's neighbour entry without waiting for it to
expire, HTTP answers through lab2 -> lab1's agent comes back, drops the stale VIP and preempts.

Sockets to lab addresses are opened inside the lab namespace (pyroute2 pushns/popns): the root namespace
never sends to them.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from .conftest import REPO, _skip_or_fail
from .test_classic_setup import wait_until

pytestmark = pytest.mark.e2e

LAB_DIR = os.environ.get("UMW_LAB_DIR", "/tmp/umw-lab")
LAB_NS = os.environ.get("LAB_NS", "umwlab")
LAB_SH = os.path.join(REPO, "lab", "lab.sh")
VIP = "100.64.0.200"
INTERVAL = 1.0
GUESTS = {"lab1": ("100.64.0.2", "fe:fd:64:40:00:02", 150), "lab2": ("100.64.0.3", "fe:fd:64:40:00:03", 100)}
RS1, RS2 = "192.168.1.4", "192.168.1.5"


def desired(name: str, revision: int, preempt: bool = True) -> dict:
    address, _, priority = GUESTS[name]
    peer = "lab2" if name == "lab1" else "lab1"
    return {
        "director": name,
        "revision": revision,
        "wan_interface": "eth0",
        "lan_interface": "lan",
        "ip_forward": True,
        "masquerade": [],
        "vips": [f"{VIP}/24"],
        "services": [
            {
                "protocol": "tcp",
                "address": VIP,
                "port": 80,
                "scheduler": "rr",
                "check": {"checktype": "connect", "checkinterval": 1.0, "checktimeout": 1.0},
                "reals": [
                    {"address": RS1, "port": 80, "forwarding": "masq"},
                    {"address": RS2, "port": 80, "forwarding": "masq"},
                ],
            }
        ],
        "failover": {
            "local_address": address,
            "peer_address": GUESTS[peer][0],
            "port": 5405,
            "priority": priority,
            "secret": "e2e-pair-secret",
            "interval": INTERVAL,
            "preempt": preempt,
        },
    }


class Lab:
    """Two lab directors, the product Redis (desired states in, snapshots out) and the lab control channel."""

    def __init__(self):
        env = dict(os.environ, UMW_LAB_DIR=LAB_DIR, LAB_NS=LAB_NS)
        self.env = env
        sock = f"{LAB_DIR}/run/redis.sock"
        from celery import Celery

        url = f"redis+socket://{sock}"
        self.product = Celery("umw_e2e_failover", broker=url, backend=url, fixups=[])
        self.product.conf.update(task_serializer="json", accept_content=["json"], result_serializer="json")
        os.environ["UMW_LAB_DIR"] = LAB_DIR
        sys.path.insert(0, os.path.join(REPO, "lab"))
        import labtasks

        self.ctl = labtasks.app
        import redis

        self.redis = redis.Redis(unix_socket_path=sock, decode_responses=True, socket_timeout=3)

    def sh(self, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
        return subprocess.run([LAB_SH, *args], env=self.env, capture_output=True, text=True, timeout=timeout)

    def apply(self, name: str, state: dict) -> dict:
        return self.product.send_task("director.apply", args=[state], queue=f"director.{name}").get(
            timeout=60
        )

    def call(self, name: str, task: str, *args, timeout: float = 30, **kwargs):
        return self.ctl.send_task(task, args=args, kwargs=kwargs, queue=f"lab.{name}").get(timeout=timeout)

    def holds_vip(self, name: str) -> bool:
        return f"{VIP}/24" in self.call(name, "lab.addrs")

    def neighbour(self) -> str:
        """The lab namespace's ARP entry for the VIP: 'fe:fd:... STATE' or ''."""
        out = subprocess.run(
            ["ip", "netns", "exec", LAB_NS, "ip", "neigh", "show", VIP],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.split()
        return f"{out[out.index('lladdr') + 1]} {out[-1]}" if "lladdr" in out else ""

    def ha(self, name: str) -> dict | None:
        raw = self.redis.get(f"umw:stats:{name}")
        return json.loads(raw).get("ha") if raw else None

    def client_conns(self, name: str) -> int:
        """Connections from the lab namespace (100.64.0.1) in that guest's IPVS table (ipvsadm -Lnc)."""
        _, out = self.call(name, "lab.ipvsadm", ["-Lnc"])
        return sum(1 for line in out.splitlines() if "100.64.0.1:" in line and f"{VIP}:80" in line)


def vip_connection(timeout: float) -> socket.socket:
    """A TCP connection to VIP:80 whose socket is created inside the lab namespace (never in the root one)."""
    from pyroute2.netns import popns, pushns

    pushns(LAB_NS)
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    finally:
        popns()
    try:
        s.settimeout(timeout)
        s.connect((VIP, 80))
    except OSError:
        s.close()
        raise
    return s


def http_get(timeout: float = 1.0) -> str:
    """One GET on a new connection from the lab namespace; the body names the real server."""
    from labtasks import _http_once

    with vip_connection(timeout) as s:
        return _http_once(s, keep=False)


@pytest.fixture(scope="module")
def lab():
    if os.geteuid() != 0:
        _skip_or_fail("the lab needs root")
    import shutil

    if shutil.which("linux.uml") is None:
        _skip_or_fail("user-mode-linux is not installed (make bootstrap)")
    env = dict(os.environ, UMW_LAB_DIR=LAB_DIR, LAB_NS=LAB_NS)
    try:
        up = subprocess.run([LAB_SH, "up", "2"], env=env, capture_output=True, text=True, timeout=300)
        if up.returncode:
            raise RuntimeError(f"lab up failed:\n{up.stdout}\n{up.stderr}")
        yield Lab()
    finally:
        subprocess.run([LAB_SH, "down"], env=env, capture_output=True, text=True, timeout=180)


def test_it_elects_lab1_master_and_only_it_holds_the_vip(lab):
    for name in GUESTS:
        result = lab.apply(name, desired(name, 1))
        assert result["errors"] == [], result
    wait_until(lambda: lab.holds_vip("lab1"), 15, 0.2, what="lab1 holds the VIP")
    wait_until(
        lambda: (lab.ha("lab2") or {}).get("peer_seen_ago") is not None, 15, 0.5, what="lab2 sees lab1"
    )
    assert not lab.holds_vip("lab2")
    wait_until(lambda: (lab.ha("lab1") or {}).get("state") == "MASTER", 10, 0.5, what="lab1's snapshot")
    ha2 = lab.ha("lab2")
    assert ha2["state"] == "BACKUP" and ha2["priority"] == 100 and ha2["peer_seen_ago"] < 3 * INTERVAL
    # both directors carry the table: a takeover needs no programming, only the address
    for name in GUESTS:
        assert lab.call(name, "lab.table") == {f"TCP {VIP}:80": {f"{RS1}:80": 1, f"{RS2}:80": 1}}


def test_it_serves_the_vip_through_the_master(lab):
    answers = [wait_until(lambda: _try_http(), 15, 0.2, what="HTTP to the VIP") for _ in range(4)]
    assert set(answers) == {"rs1", "rs2"}
    assert lab.neighbour().startswith(GUESTS["lab1"][1])
    assert lab.client_conns("lab1") >= 4


def test_it_copies_the_masters_connections_to_the_backup(lab):
    for name in GUESTS:  # both sync daemons on both directors, whatever the role
        _, out = lab.call(name, "lab.ipvsadm", ["-L", "--daemon"])
        assert "master sync daemon (mcast=eth0" in out and "backup sync daemon (mcast=eth0" in out, out
    from labtasks import _http_once

    with vip_connection(2.0) as s:
        for _ in range(4):  # past the kernel's sync threshold (3 packets)
            assert _http_once(s, keep=True) in ("rs1", "rs2")
        client = f"100.64.0.1:{s.getsockname()[1]}"

        def copied() -> bool:
            _, out = lab.call("lab2", "lab.ipvsadm", ["-Lnc"])
            return any(client in line and "ESTABLISHED" in line for line in out.splitlines())

        wait_until(copied, 10, 0.3, what=f"lab2's table has the established connection from {client}")


def _try_http() -> str | None:
    try:
        return http_get()
    except OSError:
        return None


def test_it_fails_over_when_the_master_agent_dies(lab):
    mac1, mac2 = GUESTS["lab1"][1], GUESTS["lab2"][1]
    assert http_get() in ("rs1", "rs2")  # a fresh neighbour entry pointing at lab1
    assert lab.neighbour().startswith(mac1)
    killed = lab.call("lab1", "lab.agent_stop", "KILL")
    appeared = lab.call("lab2", "lab.wait_addr", f"{VIP}/24", True, timeout=3 * INTERVAL + 5)
    assert appeared is not None, "lab2 did not take the VIP"
    took = appeared - killed["time"]  # both guest clocks are the host's
    # no traffic sent since: only lab2's gratuitous ARP can have moved the entry (it would stay REACHABLE ~30 s)
    neighbour = wait_until(lambda: lab.neighbour().startswith(mac2) and lab.neighbour(), 2, 0.05, what="GARP")
    print(f"\ntakeover: lab2 holds the VIP {took:.2f} s after lab1's agent was killed; neighbour {neighbour}")
    assert took <= 3 * INTERVAL + 1.0
    before = lab.client_conns("lab2")
    answers = [http_get(timeout=2.0) for _ in range(4)]
    assert set(answers) == {"rs1", "rs2"}
    assert lab.client_conns("lab2") >= before + 4
    ha2 = wait_until(lambda: (lab.ha("lab2") or {}).get("state") == "MASTER" and lab.ha("lab2"), 10, 0.5)
    assert ha2["priority"] == 100


def test_it_preempts_when_lab1_comes_back(lab):
    started = lab.call("lab1", "lab.agent_start", timeout=120)
    assert not started["continued"]
    wait_until(lambda: lab.holds_vip("lab1") and not lab.holds_vip("lab2"), 20, 0.2, what="lab1 preempts")
    wait_until(lambda: lab.neighbour().startswith(GUESTS["lab1"][1]), 5, 0.1, what="neighbour back to lab1")
    before = lab.client_conns("lab1")
    assert {http_get(timeout=2.0) for _ in range(4)} == {"rs1", "rs2"}
    assert lab.client_conns("lab1") >= before + 4
    print(f"\nlab1 agent back after {started['seconds']} s and preempted")


def test_it_hands_over_at_once_when_the_master_stops_cleanly(lab):
    stopped = lab.call("lab1", "lab.agent_stop", "TERM")  # returns once the agent has exited
    # the agent resigned (priority 0) on its way out: no 3 x interval wait
    appeared = lab.call("lab2", "lab.wait_addr", f"{VIP}/24", True, timeout=5)
    assert appeared is not None and not lab.holds_vip("lab1")  # it took its VIP down itself
    print(f"\nclean stop: lab2 holds the VIP {appeared - stopped['exited']:+.2f} s after lab1's agent exited")
    assert appeared - stopped["exited"] < INTERVAL
    wait_until(lambda: lab.neighbour().startswith(GUESTS["lab2"][1]), 3, 0.1, what="neighbour moved to lab2")
    assert {http_get(timeout=2.0) for _ in range(4)} == {"rs1", "rs2"}
    lab.call("lab1", "lab.agent_start", timeout=120)
    wait_until(
        lambda: lab.holds_vip("lab1") and not lab.holds_vip("lab2"), 20, 0.2, what="lab1 preempts again"
    )
