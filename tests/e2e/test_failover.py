"""A director pair in the lab on keepalived's VRRP: lab1 (priority 150) and lab2 (100) share the VIPs
100.64.0.200 and fd00:64::200 on the lab bridge.

No dashboard and no database here: the desired states go straight to the agents' queues, signed with
the lab's key ring the way clusters/agents.py sends them, so what is proven is the agents and their keepalived with the central side
doing nothing at all (and, in one test, with the product Redis stopped too). Every guest has its own
client/rs1/rs2 topology behind VIP:80 (masq), so whichever director is MASTER answers; VIP:8080 goes by
direct routing to one real server shared by both directors (a namespace on the lab bridge), so a TCP
connection can outlive a takeover - the IPVS sync daemons copied it to the BACKUP's table.

The story, in order (one lab for the module; the figures print):
election -> traffic -> connections copied -> keepalived SIGKILLed on the MASTER (takeover within
3 x advert + skew, gratuitous ARP and unsolicited NA move the lab namespace's neighbour entries, the killed
keepalived is restarted and lab1 preempts) -> an established connection survives a clean handover (agent
stopped) and the way back -> failover with the product Redis stopped -> nopreempt, then preempt again ->
an hour between the guests' clocks, still one MASTER -> partition and heal, one MASTER -> lab1's guest halted
(takeover within the bound), brought back, preempts.

Sockets to lab addresses are opened inside the lab namespace (pyroute2 pushns/popns): the root namespace
never sends to them.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

from .conftest import REPO, _skip_or_fail
from .test_classic_setup import wait_until

pytestmark = pytest.mark.e2e

LAB_DIR = os.environ.get("UMW_LAB_DIR", "/tmp/umw-lab")
LAB_NS = os.environ.get("LAB_NS", "umwlab")
RS_NS = f"{LAB_NS}-drs"  # the shared direct-routing real server, on the lab bridge
LAB_SH = os.path.join(REPO, "lab", "lab.sh")
VIP, VIP6 = "100.64.0.200", "fd00:64::200"
BRIDGE6 = "fd00:64::1"
DRS = "100.64.0.60"
INTERVAL = 1.0
GUESTS = {"lab1": ("100.64.0.2", "fe:fd:64:40:00:02", 150), "lab2": ("100.64.0.3", "fe:fd:64:40:00:03", 100)}
MAC = {name: g[1] for name, g in GUESTS.items()}
RS1, RS2 = "192.168.1.4", "192.168.1.5"
# RFC 5798 Master_Down_Interval of lab2 (priority 100): what a takeover may take after lab1's last advert
BOUND = 3 * INTERVAL + (256 - 100) / 256 * INTERVAL
SLACK = 1.0  # the guests poll every 10 ms, but a loaded 2-core host delays UML guests (up to ~0.8 s seen)


def desired(name: str, revision: int, preempt: bool = True) -> dict:
    address, _, priority = GUESTS[name]
    peer = "lab2" if name == "lab1" else "lab1"
    check = {"checktype": "connect", "checkinterval": 1.0, "checktimeout": 1.0}
    return {
        "director": name,
        "revision": revision,
        "wan_interface": "eth0",
        "lan_interface": "lan",
        "ip_forward": True,
        "masquerade": [],
        "vips": [f"{VIP}/24", f"{VIP6}/64"],
        "services": [
            {
                "protocol": "tcp",
                "address": VIP,
                "port": 80,
                "scheduler": "rr",
                "check": check,
                "reals": [
                    {"address": RS1, "port": 80, "forwarding": "masq"},
                    {"address": RS2, "port": 80, "forwarding": "masq"},
                ],
            },
            {
                "protocol": "tcp",
                "address": VIP,
                "port": 8080,
                "scheduler": "rr",
                "check": check,
                "reals": [{"address": DRS, "port": 8080, "forwarding": "gate"}],
            },
        ],
        "failover": {
            "local_address": address,
            "peer_address": GUESTS[peer][0],
            "priority": priority,
            "secret": "e2e-pair-secret",
            "interval": INTERVAL,
            "preempt": preempt,
            "vrid": 51,
        },
    }


def ns(*cmd: str, where: str = LAB_NS, check: bool = True) -> str:
    p = subprocess.run(["ip", "netns", "exec", where, *cmd], capture_output=True, text=True, timeout=20)
    if check and p.returncode:
        raise AssertionError(f"{cmd} in {where}: {p.stderr}")
    return p.stdout


class Lab:
    """Two lab directors, the product Redis (desired states in, snapshots out) and the lab control channel."""

    def __init__(self):
        env = dict(os.environ, UMW_LAB_DIR=LAB_DIR, LAB_NS=LAB_NS)
        self.env = env
        from celery import Celery
        from stack import central_redis_url, signing_dir

        from director import transport
        from director.signing import KeyRing

        url = central_redis_url(LAB_DIR)  # the central side's Redis user, as the dashboard logs in
        self.product = Celery("umw_e2e_failover", broker=transport.celery_url(url), backend=None, fixups=[])
        self.product.conf.update(task_serializer="json", accept_content=["json"])
        self.keyring = KeyRing(signing_dir(LAB_DIR))
        os.environ["UMW_LAB_DIR"] = LAB_DIR
        sys.path.insert(0, os.path.join(REPO, "lab"))
        import labtasks

        self.ctl = labtasks.app
        import redis

        self.redis = redis.Redis.from_url(url, decode_responses=True, socket_timeout=3)
        self.revision = 1

    def sh(self, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
        return subprocess.run([LAB_SH, *args], env=self.env, capture_output=True, text=True, timeout=timeout)

    def apply(self, name: str, state: dict, timeout: float = 60) -> dict:
        """Sign and queue `state`; the agent's apply event for that revision (its data: ops, errors...)."""
        from director import keys

        stream = keys.events_stream(name)
        last = self.redis.xrevrange(stream, count=1)
        after = last[0][0] if last else "0-0"
        message = self.keyring.sign(director=name, revision=state["revision"], state=state, job_id=None)
        self.product.send_task(keys.APPLY_TASK, args=[message], queue=keys.queue(name), ignore_result=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for _, entries in self.redis.xread({stream: after}, block=1000) or ():
                for entry_id, fields in entries:
                    after = entry_id
                    data = json.loads(fields.get("data") or "{}")
                    if fields.get("kind") == "apply" and data.get("revision") == state["revision"]:
                        return data
        raise TimeoutError(f"{name} did not report applying revision {state['revision']}")

    def apply_both(self, preempt: bool = True) -> None:
        self.revision += 1
        for name in GUESTS:
            result = self.apply(name, desired(name, self.revision, preempt))
            assert result["errors"] == [], result

    def call(self, name: str, task: str, *args, timeout: float = 30, **kwargs):
        return self.ctl.send_task(task, args=args, kwargs=kwargs, queue=f"lab.{name}").get(timeout=timeout)

    def holds_vip(self, name: str) -> bool:
        return f"{VIP}/24" in self.call(name, "lab.addrs")

    def masters(self) -> list[str]:
        return [name for name in GUESTS if self.holds_vip(name)]

    def neighbour(self, address: str = VIP) -> str:
        """The lab namespace's neighbour entry for `address`: 'fe:fd:... STATE' or ''."""
        out = ns("ip", "neigh", "show", address).split()
        return f"{out[out.index('lladdr') + 1]} {out[-1]}" if "lladdr" in out else ""

    def ha(self, name: str) -> dict | None:
        raw = self.redis.get(f"umw:stats:{name}")
        return json.loads(raw).get("ha") if raw else None

    def client_conns(self, name: str, port: int = 80) -> int:
        """Connections from the lab namespace (100.64.0.1) in that guest's IPVS table (ipvsadm -Lnc)."""
        _, out = self.call(name, "lab.ipvsadm", ["-Lnc"])
        return sum(1 for line in out.splitlines() if "100.64.0.1:" in line and f"{VIP}:{port}" in line)

    def keepalived_log(self, name: str) -> str:
        """Read through the shared filesystem: works while the guest is cut off from the lab network."""
        with open(f"{LAB_DIR}/run/{name}/keepalived/keepalived.log", errors="replace") as f:
            return f.read()


def vip_connection(timeout: float, port: int = 80, address: str = VIP) -> socket.socket:
    """A TCP connection to the VIP whose socket is created inside the lab namespace (never in the root one)."""
    from pyroute2.netns import popns, pushns

    pushns(LAB_NS)
    try:
        s = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM)
    finally:
        popns()
    try:
        s.settimeout(timeout)
        s.connect((address, port))
    except OSError:
        s.close()
        raise
    return s


def http_get(timeout: float = 1.0, port: int = 80) -> str:
    """One GET on a new connection from the lab namespace; the body names the real server."""
    from labtasks import _http_once

    with vip_connection(timeout, port) as s:
        return _http_once(s, keep=False)


def _try_http() -> str | None:
    try:
        return http_get()
    except OSError:
        return None


def _knock6() -> None:
    """A TCP connection attempt to [VIP6]:80 from the lab namespace (no service there: the director's kernel
    answers with a reset), so the lab namespace resolves VIP6 to a link-layer address."""
    try:
        vip_connection(2.0, 80, VIP6).close()
    except ConnectionRefusedError:
        pass


def _drs_up() -> subprocess.Popen:
    """The shared real server: a namespace on the lab bridge with the VIP on lo (direct routing: it answers
    the client itself and never ARPs for the VIP), serving HTTP on :8080."""
    subprocess.run(["ip", "netns", "del", RS_NS], capture_output=True, timeout=10)
    subprocess.run(["ip", "netns", "add", RS_NS], check=True, timeout=10)
    peer = f"{LAB_NS[:6]}drs"
    ns("ip", "link", "add", peer, "type", "veth", "peer", "name", "eth0", "netns", RS_NS)
    ns("ip", "link", "set", peer, "master", "umwbr", "up")
    for cmd in (
        ["sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1"],
        ["sysctl", "-qw", "net.ipv4.conf.all.arp_announce=2"],
        ["ip", "link", "set", "lo", "up"],
        ["ip", "addr", "add", f"{VIP}/32", "dev", "lo"],
        ["ip", "addr", "add", f"{DRS}/24", "dev", "eth0"],
        ["ip", "link", "set", "eth0", "up"],
    ):
        ns(*cmd, where=RS_NS)
    py = os.path.join(REPO, ".venv", "bin", "python")
    proc = subprocess.Popen(
        ["ip", "netns", "exec", RS_NS, py, os.path.join(REPO, "lab", "rsd.py"), "drs"]
        + ["--http-port", "8080", "--tcp-port", "0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_until(lambda: "8080" in ns("ss", "-ltnH", where=RS_NS), 20, 0.2, what="the shared real server")
    return proc


@pytest.fixture(scope="module")
def lab():
    if os.geteuid() != 0:
        _skip_or_fail("the lab needs root")
    if shutil.which("linux.uml") is None:
        _skip_or_fail("user-mode-linux is not installed (make bootstrap)")
    if shutil.which("keepalived") is None and not os.path.exists("/usr/sbin/keepalived"):
        _skip_or_fail("keepalived is not installed (scripts/bootstrap.sh)")
    env = dict(os.environ, UMW_LAB_DIR=LAB_DIR, LAB_NS=LAB_NS)
    drs = None
    try:
        up = subprocess.run([LAB_SH, "up", "2"], env=env, capture_output=True, text=True, timeout=300)
        if up.returncode:
            raise RuntimeError(f"lab up failed:\n{up.stdout}\n{up.stderr}")
        ns("ip", "-6", "addr", "add", f"{BRIDGE6}/64", "dev", "umwbr", "nodad")
        drs = _drs_up()
        yield Lab()
    finally:
        if drs is not None:
            os.killpg(drs.pid, 9)
            drs.wait(timeout=10)
        subprocess.run(["ip", "netns", "del", RS_NS], capture_output=True, timeout=10)
        subprocess.run([LAB_SH, "down"], env=env, capture_output=True, text=True, timeout=180)


def test_it_elects_lab1_master_and_only_it_holds_the_vips(lab):
    for name in GUESTS:
        result = lab.apply(name, desired(name, lab.revision))
        assert result["errors"] == [], result
    wait_until(lambda: lab.holds_vip("lab1"), 15, 0.2, what="lab1 holds the VIP")
    assert f"{VIP6}/64" in lab.call("lab1", "lab.addrs", "eth0", 6)
    ha1 = wait_until(lambda: (lab.ha("lab1") or {}).get("state") == "MASTER" and lab.ha("lab1"), 10, 0.5)
    ha2 = wait_until(lambda: (lab.ha("lab2") or {}).get("state") == "BACKUP" and lab.ha("lab2"), 10, 0.5)
    assert not lab.holds_vip("lab2") and f"{VIP6}/64" not in lab.call("lab2", "lab.addrs", "eth0", 6)
    assert ha1["priority"] == 150 and ha1["peer"] == GUESTS["lab2"][0] and ha1["reason"]
    assert ha2["priority"] == 100 and ha2["since"] > 0 and ha2["keepalived"]["pid"]
    # both directors carry the table: a takeover needs no programming, only the addresses
    for name in GUESTS:
        table = lab.call(name, "lab.table")
        assert table[f"TCP {VIP}:80"] == {f"{RS1}:80": 1, f"{RS2}:80": 1}
        assert table[f"TCP {VIP}:8080"] == {f"{DRS}:8080": 1}


def test_it_serves_the_vip_through_the_master(lab):
    answers = [wait_until(_try_http, 15, 0.2, what="HTTP to the VIP") for _ in range(4)]
    assert set(answers) == {"rs1", "rs2"}
    assert lab.neighbour().startswith(MAC["lab1"])
    assert lab.client_conns("lab1") >= 4
    assert wait_until(lambda: _try_drs(), 10, 0.2, what="the shared real server through lab1") == "drs"


def _try_drs() -> str | None:
    try:
        return http_get(port=8080)
    except OSError:
        return None


def test_it_copies_the_masters_connections_to_the_backup(lab):
    for name in GUESTS:  # the agent's sync daemons, both on both directors, whatever the role
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


def test_it_fails_over_within_the_vrrp_bound_when_the_masters_keepalived_is_killed(lab):
    assert http_get() in ("rs1", "rs2")  # fresh neighbour entries pointing at lab1, IPv4 and IPv6
    _knock6()
    assert lab.neighbour().startswith(MAC["lab1"]) and lab.neighbour(VIP6).startswith(MAC["lab1"])
    killed = lab.call("lab1", "lab.keepalived_kill")
    appeared = lab.call("lab2", "lab.wait_addr", f"{VIP}/24", True, timeout=BOUND + 5)
    assert appeared is not None, "lab2 did not take the VIP"
    took = appeared - killed["time"]  # both guest clocks are the host's
    # lab1's agent dropped the VIPs its killed keepalived left behind: never both directors holding them
    assert not lab.holds_vip("lab1")
    # no traffic sent since: only lab2's gratuitous ARP / unsolicited NA can have moved the entries (looked at
    # at once: lab1's restarted keepalived takes the VIPs back within seconds, and announces them too)
    v4, v6 = wait_until(
        lambda: (
            (n := (lab.neighbour(), lab.neighbour(VIP6))) and all(x.startswith(MAC["lab2"]) for x in n) and n
        ),
        3,
        0.02,
        what="gratuitous ARP and unsolicited NA from lab2",
    )
    print(
        f"\nkeepalived SIGKILLed on lab1: lab2 holds the VIPs {took:.2f} s later "
        f"(bound 3 x {INTERVAL:g} s + skew = {BOUND:.2f} s); neighbours {v4} / {v6}"
    )
    assert took <= BOUND + SLACK
    # the agent saw its keepalived die, dropped the addresses it left, restarted it; lab1 preempts
    wait_until(lambda: lab.holds_vip("lab1") and not lab.holds_vip("lab2"), 20, 0.2, what="lab1 preempts")
    ha1 = wait_until(lambda: (lab.ha("lab1") or {}).get("state") == "MASTER" and lab.ha("lab1"), 10, 0.5)
    assert ha1["keepalived"]["restarts"] >= 1 and "signal 9" in ha1["keepalived"]["last_exit"]
    assert ha1["keepalived"]["pid"] != killed["pid"]
    wait_until(lambda: lab.neighbour().startswith(MAC["lab1"]), 5, 0.1, what="neighbour back to lab1")


def test_it_keeps_the_vips_where_they_are_when_the_masters_agent_crashes(lab):
    # keepalived outlives its agent: a crash and restart of the agent moves nothing; the new agent adopts it
    pid = lab.call("lab1", "lab.keepalived_pid")
    lab.call("lab1", "lab.agent_stop", "KILL")
    time.sleep(BOUND + 1)
    assert lab.masters() == ["lab1"] and lab.call("lab1", "lab.keepalived_pid") == pid
    back = lab.call("lab1", "lab.agent_start", timeout=120)
    ha1 = wait_until(
        lambda: (
            (h := lab.ha("lab1") or {}).get("reason") == "keepalived adopted after an agent restart" and h
        ),
        20,
        0.5,
        what="lab1's new agent reports the adopted keepalived",
    )
    assert ha1["state"] == "MASTER" and ha1["keepalived"]["pid"] == pid
    assert lab.masters() == ["lab1"]
    print(
        f"\nlab1's agent killed and back after {back['seconds']} s: keepalived {pid} adopted, VIPs never moved"
    )


def test_it_keeps_an_established_connection_through_a_clean_handover_and_back(lab):
    from labtasks import _http_once

    with vip_connection(3.0, port=8080) as s:
        for _ in range(4):
            assert _http_once(s, keep=True) == "drs"
        client = f"100.64.0.1:{s.getsockname()[1]}"

        def copied() -> bool:
            _, out = lab.call("lab2", "lab.ipvsadm", ["-Lnc"])
            return any(client in line and "ESTABLISHED" in line for line in out.splitlines())

        wait_until(copied, 10, 0.3, what="the connection in lab2's table")
        # lab2 watches for the VIP from before the stop: the agent's exit (Celery's shutdown) takes longer
        watch = lab.ctl.send_task("lab.wait_addr", args=[f"{VIP}/24", True, "eth0", 10], queue="lab.lab2")
        time.sleep(0.5)
        stopped = lab.call("lab1", "lab.agent_stop", "TERM")  # returns once the agent has exited
        try:
            _handed_over(lab, s, client, watch, stopped)
        finally:  # lab1's agent back whatever happened: the rest of the story needs it
            back = lab.call("lab1", "lab.agent_start", timeout=120)
        wait_until(lambda: lab.holds_vip("lab1") and not lab.holds_vip("lab2"), 20, 0.2, what="lab1 back")
        wait_until(lambda: lab.neighbour().startswith(MAC["lab1"]), 5, 0.05, what="neighbour back to lab1")
        assert _http_once(s, keep=True) == "drs"  # and through lab1 again
        print(f"lab1's agent back after {back['seconds']} s, preempted; the connection answered throughout")


def _handed_over(lab, s, client: str, watch, stopped: dict) -> None:
    """lab1's agent stopped cleanly: lab2 holds the VIP at once, for the resign's reason, and the held
    connection `s` (from `client`) answers through it."""
    from labtasks import _http_once

    # the agent stopped its keepalived first, which resigned (priority 0): no 3 x advert wait
    appeared = watch.get(timeout=30)
    assert appeared is not None and not lab.holds_vip("lab1")
    handover = appeared - stopped["time"]
    print(
        f"\nclean stop of lab1's agent: lab2 holds the VIP {handover:.2f} s after SIGTERM "
        f"(the agent exited after {stopped['exited'] - stopped['time']:.2f} s)"
    )
    assert handover < BOUND
    # the resign, not the timeout: lab2's keepalived says why it took over (its next snapshot)
    ha2 = wait_until(
        lambda: (h := lab.ha("lab2") or {}).get("state") == "MASTER" and h, 10, 0.3, what="lab2's report"
    )
    assert "Backup received priority 0 advertisement" in ha2["reason"], ha2
    wait_until(lambda: lab.neighbour().startswith(MAC["lab2"]), 3, 0.05, what="neighbour moved to lab2")
    assert _http_once(s, keep=True) == "drs"  # same TCP connection, now through lab2
    assert any(client in line for line in lab.call("lab2", "lab.ipvsadm", ["-Lnc"])[1].splitlines())


def test_it_fails_over_with_the_central_side_stopped(lab):
    assert lab.sh("redis-stop").returncode == 0
    try:
        killed = lab.call("lab1", "lab.keepalived_kill")
        appeared = lab.call("lab2", "lab.wait_addr", f"{VIP}/24", True, timeout=BOUND + 5)
        assert appeared is not None
        took = appeared - killed["time"]
        print(
            f"\nproduct Redis stopped, no web: lab2 took over {took:.2f} s after lab1's keepalived was killed"
        )
        assert took <= BOUND + SLACK
        assert {http_get(timeout=2.0) for _ in range(4)} == {"rs1", "rs2"}
        wait_until(lambda: lab.holds_vip("lab1") and not lab.holds_vip("lab2"), 20, 0.2, what="lab1 preempts")
    finally:
        assert lab.sh("redis-start").returncode == 0


def test_it_leaves_the_vips_where_they_are_with_nopreempt_and_takes_them_back_with_preempt(lab):
    lab.apply_both(preempt=False)  # a reload (SIGHUP): nothing moves
    assert lab.masters() == ["lab1"]
    killed = lab.call("lab1", "lab.keepalived_kill")
    assert lab.call("lab2", "lab.wait_addr", f"{VIP}/24", True, timeout=BOUND + 5) is not None
    # lab1's keepalived is back (restarted by its agent) but does not take the VIPs back
    wait_until(lambda: lab.call("lab1", "lab.keepalived_pid") not in (None, killed["pid"]), 10, 0.2)
    time.sleep(2 * BOUND)
    assert lab.masters() == ["lab2"]
    assert wait_until(lambda: (lab.ha("lab1") or {}).get("state") == "BACKUP", 10, 0.5)
    lab.apply_both(preempt=True)
    wait_until(lambda: lab.masters() == ["lab1"], 10, 0.2, what="lab1 preempts once preempt is back")


def test_it_keeps_exactly_one_master_with_an_hour_between_the_guests_clocks(lab):
    # VRRP adverts carry no time, so an NTP outage cannot split the pair (the home-made protocol's did)
    before = lab.call("lab2", "lab.now")
    shifted = lab.call("lab2", "lab.clock_shift", 3600)
    assert shifted - before > 3590
    try:
        seen = []
        end = time.monotonic() + 3 * BOUND
        while time.monotonic() < end:
            seen.append(tuple(lab.masters()))
            time.sleep(0.3)
        print(f"\nlab2's clock +1 h: {len(seen)} samples over {3 * BOUND:.1f} s, masters {sorted(set(seen))}")
        assert set(seen) == {("lab1",)}
        assert (lab.ha("lab2") or {}).get("state") == "BACKUP"
    finally:
        lab.call("lab2", "lab.clock_shift", -3600)


def test_it_ends_a_partition_and_its_heal_with_exactly_one_master(lab):
    log_before = len(lab.keepalived_log("lab2"))
    ns("ip", "link", "set", "umwtap2", "nomaster")  # lab2 cut off from the lab bridge
    try:
        # both are MASTER while they cannot hear each other (VRRP cannot do better); lab2's own log says so
        wait_until(
            lambda: "Entering MASTER STATE" in lab.keepalived_log("lab2")[log_before:],
            BOUND + 5,
            0.1,
            what="lab2 MASTER while partitioned",
        )
        assert lab.holds_vip("lab1")
    finally:
        ns("ip", "link", "set", "umwtap2", "master", "umwbr")
    healed = time.monotonic()
    wait_until(lambda: lab.masters() == ["lab1"], 10, 0.1, what="one MASTER after the heal")
    print(f"\npartition healed: one MASTER (lab1) again after {time.monotonic() - healed:.2f} s")
    for _ in range(10):  # and it stays that way
        assert lab.masters() == ["lab1"]
        time.sleep(0.3)
    wait_until(lambda: (lab.ha("lab2") or {}).get("state") == "BACKUP", 15, 0.5, what="lab2 BACKUP")
    wait_until(lambda: lab.neighbour().startswith(MAC["lab1"]) or _try_http(), 5, 0.1)


def test_it_fails_over_when_the_masters_guest_halts_and_preempts_when_it_is_back(lab):
    assert lab.masters() == ["lab1"]
    halted = lab.sh("halt", "lab1", timeout=60)
    assert halted.returncode == 0, halted.stderr
    t_halt = float(halted.stdout.strip().splitlines()[-1])
    appeared = lab.call("lab2", "lab.wait_addr", f"{VIP}/24", True, timeout=BOUND + 10)
    assert appeared is not None
    took = appeared - t_halt
    print(f"\nlab1's guest halted: lab2 holds the VIPs {took:.2f} s later (bound {BOUND:.2f} s)")
    assert took <= BOUND + SLACK
    assert {http_get(timeout=2.0) for _ in range(4)} == {"rs1", "rs2"}
    up = lab.sh("up", "2", timeout=300)  # a fresh lab1 (empty state directory)
    assert up.returncode == 0, up.stderr
    lab.revision += 1
    assert lab.apply("lab1", desired("lab1", lab.revision))["errors"] == []
    wait_until(lambda: lab.masters() == ["lab1"], 30, 0.2, what="lab1 preempts after its reboot")
