"""The agent's keepalived supervisor (director/keepalived.py) with the real keepalived, two directors in two
throwaway network namespaces of the guest joined by a veth: election, reload, crash and restart, adoption,
clean stop. Addresses are checked with `ip`, not with our code."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from director import keepalived, vrrp
from director.desired import DesiredState
from director.pair import Pair

from .conftest import sh, wait_for

pytestmark = pytest.mark.kernel

VIP = "10.9.0.200"
SIDES = {"a": ("10.9.0.1", "10.9.0.2", 150), "b": ("10.9.0.2", "10.9.0.1", 100)}


class Side:
    """One director: a namespace, a supervisor and what it reported."""

    def __init__(self, name: str, base: str, **overrides):
        self.name = name
        self.ns = f"k{name}"
        self.dev = f"k{name}0"
        self.notices: list[tuple[float, str, str]] = []
        self.exits: list[str] = []
        self.lock = threading.Lock()
        self.directory = os.path.join(base, name)
        self.ka = self._supervisor()
        self.overrides = overrides

    def _supervisor(self) -> keepalived.Keepalived:
        return keepalived.Keepalived(self.directory, self._notice, self._exit, netns=self.ns)

    def _notice(self, notice: vrrp.Notice, reason: str) -> None:
        with self.lock:
            self.notices.append((time.monotonic(), notice.state, reason))

    def _exit(self, text: str) -> None:
        self.exits.append(text)
        # what the agent does: a killed keepalived's VIPs must not stay up beside the new MASTER's
        sh("ip", "-n", self.ns, "addr", "flush", "dev", self.dev, "to", f"{VIP}/32", check=False)

    def config(self, **change) -> vrrp.Config:
        local, peer, prio = SIDES[self.name]
        d = {"local_address": local, "peer_address": peer, "priority": prio, "secret": "kernel-test-secret"}
        return vrrp.Config.from_dict({**d, **self.overrides, **change})

    def text(self, **change) -> str:
        return vrrp.render(
            f"lab{self.name}", self.config(**change), self.dev, self.dev, [f"{VIP}/24"], self.ka.paths
        )

    def holds_vip(self) -> bool:
        return f"{VIP}/24" in sh("ip", "-n", self.ns, "-4", "-o", "addr", "show", "dev", self.dev)

    def state(self) -> str | None:
        with self.lock:
            return self.notices[-1][1] if self.notices else None


@pytest.fixture
def link():
    """Two namespaces ka / kb joined by a veth (ka0 10.9.0.1 -- kb0 10.9.0.2); yields a scratch directory."""
    base = "/run/umw-keepalived-test"
    sh("rm", "-rf", base)
    os.makedirs(base)
    sh("ip", "netns", "add", "ka")
    sh("ip", "netns", "add", "kb")
    sh("ip", "link", "add", "ka0", "netns", "ka", "type", "veth", "peer", "name", "kb0", "netns", "kb")
    for name, (local, _, _) in SIDES.items():
        sh("ip", "-n", f"k{name}", "addr", "add", f"{local}/24", "dev", f"k{name}0")
        sh("ip", "-n", f"k{name}", "link", "set", f"k{name}0", "up")
        sh("ip", "-n", f"k{name}", "link", "set", "lo", "up")
    yield base
    sh("ip", "netns", "del", "ka", check=False)
    sh("ip", "netns", "del", "kb", check=False)


@pytest.fixture
def pair(link):
    sides = {name: Side(name, link) for name in SIDES}
    yield sides
    for side in sides.values():
        side.ka.stop(timeout=5)


def start(pair) -> None:
    for side in pair.values():
        assert side.ka.configure(side.text()) == "started"
    # how fast a pair forms is not what these tests measure: a loaded machine's UML guest may need long
    assert wait_for(lambda: pair["a"].state() == "MASTER" and pair["a"].holds_vip(), 30, 0.05)
    assert wait_for(lambda: pair["b"].state() == "BACKUP", 15, 0.05)
    assert not pair["b"].holds_vip()


def test_it_elects_the_higher_priority_and_writes_keepalived_s_files_only_in_its_directory(pair):
    start(pair)
    a = pair["a"]
    assert sorted(os.listdir(a.directory)) == [
        "agent-alive.sh",
        "agent.alive",
        "keepalived.conf",
        "keepalived.log",
        "keepalived.pid",
        "notify.fifo",
        "vrrp.pid",
    ]
    assert "127.255.0.51/32" in sh("ip", "-n", "ka", "addr", "show", "dev", "lo")  # the advert marker
    # BACKUP first (listen before claiming), once its track script on the agent's liveness passed
    assert a.notices[0][1:] == ("BACKUP", "VRRP_Script(umw_agent) succeeded")
    assert a.notices[-1][2]  # a reason from keepalived's log, e.g. "Receive advertisement timeout"


def test_it_takes_over_after_a_kill_and_restarts_the_killed_keepalived(pair):
    start(pair)
    a, b = pair["a"], pair["b"]
    bound = b.config().master_down
    pid = a.ka.pid
    killed = time.monotonic()
    os.killpg(pid, signal.SIGKILL)  # parent and VRRP child: a crash, no goodbye advert
    assert wait_for(lambda: b.holds_vip(), bound + 2, 0.02)
    took = time.monotonic() - killed
    print(f"\nkeepalived SIGKILLed: the peer holds the VIP after {took:.2f} s (bound {bound:.2f} s)")
    assert b.notices[-1][1:] == ("MASTER", "Receive advertisement timeout")  # the bound itself: e2e tier
    assert wait_for(lambda: a.exits, 2, 0.05)
    assert "killed by signal 9" in a.exits[0] and "restarting in 0.5 s" in a.exits[0]
    # restarted, and with the higher priority (preempt) it takes the VIP back
    assert wait_for(lambda: a.ka.pid not in (None, pid) and a.holds_vip() and not b.holds_vip(), 15, 0.1)
    assert a.ka.restarts == 1


def test_it_reloads_a_changed_configuration_without_a_restart(pair):
    start(pair)
    a, b = pair["a"], pair["b"]
    pid = a.ka.pid
    assert a.ka.configure(a.text()) == "unchanged"
    assert a.ka.configure(a.text(priority=50)) == "reloaded"  # now lower than b: b preempts
    assert wait_for(lambda: b.holds_vip() and not a.holds_vip(), 10, 0.05)
    assert a.ka.pid == pid and a.exits == []
    assert b.notices[-1][1] == "MASTER"


def test_it_hands_over_at_once_on_a_clean_stop(pair):
    start(pair)
    a, b = pair["a"], pair["b"]
    t0 = time.monotonic()
    assert a.ka.stop() is True
    assert wait_for(lambda: b.holds_vip(), 3, 0.02)
    took = time.monotonic() - t0
    print(f"\nclean stop: the peer holds the VIP {took:.2f} s after SIGTERM")
    assert b.notices[-1][1] == "MASTER" and "priority 0" in b.notices[-1][2]  # the resign, not the timeout
    assert not a.holds_vip() and "127.255.0.51" not in sh("ip", "-n", "ka", "addr", "show", "dev", "lo")
    assert a.state() == "STOP"


def test_it_adopts_the_keepalived_a_previous_agent_left_running(pair):
    start(pair)
    a = pair["a"]
    pid = a.ka.pid
    a.ka.detach()  # the agent is gone, keepalived is not
    a.ka = a._supervisor()
    assert a.ka.configure(a.text()) == "adopted"
    assert a.ka.pid == pid and a.holds_vip()
    assert a.ka.configure(a.text(priority=140)) == "reloaded"
    time.sleep(2)
    assert a.holds_vip() and a.ka.pid == pid  # same process, still MASTER


# -- the agent's pair part (director/pair.py) on the same two namespaces -----------------------------------
class Agentish:
    """What pair.Pair sees of the agent: its lock, and recorders for its callbacks."""

    def __init__(self, name: str, base: str, priority: int = 0):
        local, peer, prio = SIDES[name]
        self.ns, self.dev = f"k{name}", f"k{name}0"
        self.lock = threading.RLock()
        self.events: list[tuple[str, dict]] = []
        self.programmed = 0
        failover = {"local_address": local, "peer_address": peer, "priority": priority or prio}
        failover["secret"] = "kernel-test-secret"
        self.state = DesiredState(
            director=f"lab{name}", wan_interface=self.dev, vips=(f"{VIP}/24",), failover=failover
        )
        self.directory = os.path.join(base, f"pair-{name}")
        self.pair = self.new_pair()

    def new_pair(self) -> Pair:
        return Pair(
            self.state.director,
            self.ns,
            self.lock,
            directory=self.directory,
            program=self.program,
            emit=lambda kind, message, **kw: self.events.append((message, kw.get("data") or {})),
            flush=lambda: None,
            daemons=dict,
        )

    def program(self) -> dict:
        self.programmed += 1
        return {"ops": 0, "errors": []}

    def holds_vip(self) -> bool:
        return f"{VIP}/24" in sh("ip", "-n", self.ns, "-4", "-o", "addr", "show", "dev", self.dev)


@pytest.fixture
def agents(link):
    sides = {name: Agentish(name, link) for name in SIDES}
    yield sides
    for side in sides.values():
        side.pair.stop()


def test_it_drops_what_a_killed_keepalived_left_before_the_peer_takes_over(agents):
    a, b = agents["a"], agents["b"]
    for side in (a, b):
        side.pair.update(side.state)
    assert wait_for(lambda: a.pair.role == "MASTER" and a.holds_vip(), 30, 0.05)
    assert a.pair.snapshot()["reason"].endswith("Receive advertisement timeout")
    killed = time.monotonic()
    os.killpg(a.pair.ka.pid, signal.SIGKILL)
    assert wait_for(lambda: not a.holds_vip(), 5, 0.02)
    dropped = time.monotonic() - killed
    # opening a netlink session into another namespace costs pyroute2 0.5-3 s in UML; an agent in its own
    # namespace (the e2e tier) drops them before the peer takes over, and that test checks it
    print(f"\nkeepalived SIGKILLed: its VIP dropped by the pair part {dropped:.2f} s later")
    # the pair part drops the VIPs first and then says so: wait for the event, not only the addresses
    assert wait_for(lambda: any(data.get("ha") == "FAULT" for _, data in a.events), 5, 0.02)
    fault = [data for message, data in a.events if data.get("ha") == "FAULT"]
    assert (
        fault
        and "killed by signal 9" in fault[0]["reason"]
        and fault[0]["dropped"] == [f"{VIP}/24", "127.255.0.51/32"]
    )
    assert wait_for(lambda: a.pair.role == "MASTER" and a.holds_vip() and not b.holds_vip(), 15, 0.1)
    assert a.pair.snapshot()["keepalived"]["restarts"] == 1


def test_it_learns_the_role_of_a_keepalived_it_adopts(agents):
    a, b = agents["a"], agents["b"]
    for side in (a, b):
        side.pair.update(side.state)
    assert wait_for(lambda: a.pair.role == "MASTER" and b.pair.role == "BACKUP", 30, 0.05)
    pid = a.pair.ka.pid
    a.pair.ka.detach()  # the agent crashed; keepalived did not
    a.pair = a.new_pair()
    a.pair.update(a.state)
    snap = a.pair.snapshot()
    assert (snap["state"], snap["reason"]) == ("MASTER", "keepalived adopted after an agent restart")
    assert snap["keepalived"]["pid"] == pid and a.holds_vip()


def test_it_gives_the_vips_back_to_the_host_when_the_pair_is_left(agents):
    a, b = agents["a"], agents["b"]
    for side in (a, b):
        side.pair.update(side.state)
    assert wait_for(lambda: a.pair.role == "MASTER", 30, 0.05)
    lone = DesiredState(director="laba", wan_interface=a.dev, vips=a.state.vips)
    assert a.pair.active_vips(a.state) == () and a.pair.active_vips(lone) == a.state.vips
    a.pair.update(lone)
    assert a.pair.snapshot() is None and a.pair.role == "INIT" and a.programmed == 1
    assert not a.holds_vip()  # keepalived took its VIP away; the host (program) puts a lone director's up
    assert wait_for(lambda: b.holds_vip(), 3, 0.02)  # the priority-0 advert: no timeout wait
    assert ("failover: left the pair, VIPs released", {"ha": "resigned"}) in a.events
