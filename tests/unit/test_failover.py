"""The director pair protocol (director/failover.py) with a fake clock and a fake network: no socket, no sleep."""

from __future__ import annotations

import struct

import pytest

from director import failover as fo
from director.failover import BACKUP, INIT, MASTER, Advert, Config, Machine, Runner

SECRET = "s3cret"


class Clock:
    """Monotonic and wall time in one, moved by hand."""

    def __init__(self, t: float = 1_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def wall(self) -> float:
        return 1_764_000_000.0 + self.t


class Net:
    """A lossless in-memory link between named endpoints; `cut` drops everything a node sends."""

    def __init__(self, clock: Clock):
        self.clock = clock
        self.queues: dict[str, list[bytes]] = {}
        self.cut: set[str] = set()
        self.sent: list[tuple[str, bytes]] = []

    def endpoint(self, me: str, peer: str):
        net = self
        self.queues.setdefault(me, [])
        self.queues.setdefault(peer, [])

        class Endpoint:
            def send(self, data: bytes) -> None:
                net.sent.append((me, data))
                if me not in net.cut:
                    net.queues[peer].append(data)

            def recv(self, timeout: float) -> bytes | None:
                q = net.queues[me]
                if q:
                    return q.pop(0)
                net.clock.t += timeout  # nothing to read: the wait passes
                return None

        return Endpoint()


def config(priority: int, preempt: bool = True, interval: float = 1.0) -> Config:
    return Config("10.0.0.1", "10.0.0.2", SECRET, priority=priority, preempt=preempt, interval=interval)


class Pair:
    def __init__(self, p1: int = 150, p2: int = 100, preempt: bool = True):
        self.clock = Clock()
        self.net = Net(self.clock)
        self.log: list[tuple[str, str, str]] = []
        self.nodes = {
            "lab1": self._runner("lab1", "lab2", p1, preempt),
            "lab2": self._runner("lab2", "lab1", p2, preempt),
        }
        self.alive = {"lab1": True, "lab2": True}

    def _runner(self, me, peer, prio, preempt) -> Runner:
        return Runner(
            me,
            config(prio, preempt),
            self.net.endpoint(me, peer),
            on_transition=lambda state, reason: self.log.append((me, state, reason)),
            clock=self.clock,
            wall=self.clock.wall,
        )

    def run(self, seconds: float, step: float = 0.05) -> None:
        end = self.clock.t + seconds
        for _ in range(100_000):
            if self.clock.t >= end:
                return
            for name, node in self.nodes.items():
                if self.alive[name]:
                    node.step(max_wait=step / 2)

    def states(self) -> dict[str, str]:
        return {n: r.state for n, r in self.nodes.items()}

    def restart(self, name: str) -> None:
        peer = "lab2" if name == "lab1" else "lab1"
        old = self.nodes[name]
        self.net.queues[name].clear()
        self.nodes[name] = self._runner(name, peer, old.config.priority, old.config.preempt)
        self.alive[name] = True
        self.nodes[name].start()


def advert(name="lab2", priority=100, state=MASTER, seq=1, t=0.0) -> Advert:
    return Advert(name, priority, seq, t, state)


# -- the machine ----------------------------------------------------------------------------------------------
def test_it_starts_as_backup_and_waits_for_the_peer():
    m = Machine("lab1", 150)
    assert m.state == INIT
    assert m.start(0.0) == (BACKUP, "started: waiting for the peer")
    assert m.tick(m.down_interval - 0.01) is None
    state, reason = m.tick(m.down_interval)
    assert state == MASTER and "no advert" in reason


def test_it_uses_vrrps_master_down_interval():
    assert Machine("a", 256 - 128, interval=1.0).down_interval == pytest.approx(3.5)
    assert Machine("a", 255, interval=2.0).down_interval < Machine("a", 100, interval=2.0).down_interval


def test_it_takes_over_when_the_master_goes_silent():
    m = Machine("lab2", 100)
    m.start(0.0)
    assert m.on_advert(advert("lab1", 150, MASTER), 1.0) is None
    assert m.tick(1.0 + m.down_interval - 0.01) is None
    state, reason = m.tick(1.0 + m.down_interval)
    assert state == MASTER and "peer silent" in reason


def test_it_lets_the_higher_priority_win_between_two_backups():
    m = Machine("lab1", 150)
    m.start(0.0)
    assert m.on_advert(advert("lab2", 100, BACKUP), 0.5)[0] == MASTER
    low = Machine("lab2", 100)
    low.start(0.0)
    assert low.on_advert(advert("lab1", 150, BACKUP), 0.5) is None
    assert low.state == BACKUP


def test_it_breaks_a_priority_tie_by_the_lower_name():
    a, b = Machine("alpha", 100), Machine("beta", 100)
    a.start(0.0)
    b.start(0.0)
    assert a.on_advert(advert("beta", 100, BACKUP), 0.1)[0] == MASTER
    assert b.on_advert(advert("alpha", 100, BACKUP), 0.1) is None


def test_it_preempts_a_lower_priority_master_only_when_configured():
    m = Machine("lab1", 150, preempt=True)
    m.start(0.0)
    state, reason = m.on_advert(advert("lab2", 100, MASTER), 0.2)
    assert state == MASTER and "preempting" in reason
    polite = Machine("lab1", 150, preempt=False)
    polite.start(0.0)
    assert polite.on_advert(advert("lab2", 100, MASTER), 0.2) is None
    assert polite.state == BACKUP


def test_it_steps_down_when_a_better_master_appears():
    m = Machine("lab2", 100)
    m.start(0.0)
    m.tick(10.0)
    assert m.state == MASTER
    assert m.on_advert(advert("lab2x", 50, MASTER), 10.5) is None  # a weaker master: we stay
    state, reason = m.on_advert(advert("lab1", 150, MASTER), 11.0)
    assert state == BACKUP and "wins" in reason


def test_it_resolves_two_masters_even_without_preempt():
    m = Machine("lab2", 100, preempt=False)
    m.start(0.0)
    m.tick(10.0)
    assert m.on_advert(advert("lab1", 150, MASTER), 11.0)[0] == BACKUP


def test_it_takes_over_at_once_when_the_master_resigns():
    m = Machine("lab2", 100)
    m.start(0.0)
    m.on_advert(advert("lab1", 150, MASTER), 0.5)
    state, reason = m.on_advert(advert("lab1", 0, MASTER), 0.6)
    assert state == MASTER and "resigned" in reason


# -- adverts --------------------------------------------------------------------------------------------------
def test_it_round_trips_an_authenticated_advert():
    a = Advert("lab1", 150, 42, 1000.5, MASTER)
    assert fo.decode(fo.encode(a, SECRET), SECRET, now=1001.0) == a


def test_it_rejects_a_forged_or_foreign_advert():
    data = fo.encode(Advert("lab1", 150, 1, 1000.0, MASTER), SECRET)
    with pytest.raises(fo.BadAdvert, match="MAC"):
        fo.decode(data, "another pair's secret", now=1000.0)
    forged = data.replace(b'"prio":150', b'"prio":255')
    with pytest.raises(fo.BadAdvert, match="MAC"):
        fo.decode(forged, SECRET, now=1000.0)
    with pytest.raises(fo.BadAdvert):
        fo.decode(b"garbage", SECRET, now=1000.0)


def test_it_rejects_a_stale_advert():
    data = fo.encode(Advert("lab1", 150, 1, 1000.0, MASTER), SECRET)
    with pytest.raises(fo.BadAdvert, match="stale"):
        fo.decode(data, SECRET, now=1000.0 + fo.MAX_SKEW + 1)


def test_it_rejects_replays_and_reflections():
    clock = Clock()
    r = Runner(
        "lab1", config(150), transport=None, on_transition=lambda *a: None, clock=clock, wall=clock.wall
    )
    first = fo.encode(Advert("lab2", 100, 500, clock.wall(), MASTER), SECRET)
    assert r.accept(first) is not None
    assert r.accept(first) is None and "replayed" in r.last_reject
    own = fo.encode(Advert("lab1", 150, 501, clock.wall(), MASTER), SECRET)
    assert r.accept(own) is None and "own name" in r.last_reject
    assert r.rejected == 2


def test_it_validates_the_config():
    assert (
        Config.from_dict({"local_address": "10.0.0.1", "peer_address": "10.0.0.2", "secret": "x"}).port
        == 5405
    )
    for bad in (
        {"peer_address": "10.0.0.1"},
        {"peer_address": "fd00::2"},
        {"secret": ""},
        {"priority": 0},
        {"interval": 0},
    ):
        with pytest.raises(ValueError):
            Config.from_dict({"local_address": "10.0.0.1", "peer_address": "10.0.0.2", "secret": "x", **bad})


# -- two runners over a fake network ------------------------------------------------------------------------
def test_it_elects_one_master_at_start():
    pair = Pair()
    for node in pair.nodes.values():
        node.start()
    pair.run(2.0)
    assert pair.states() == {"lab1": MASTER, "lab2": BACKUP}
    assert pair.clock.t - 1000.0 < 3.0  # the winner did not wait for the timeout: it heard a backup peer


def test_it_fails_over_within_the_master_down_interval_and_preempts_on_return():
    pair = Pair()
    for node in pair.nodes.values():
        node.start()
    pair.run(3.0)
    pair.alive["lab1"] = False  # crashed: no advert, no resign
    pair.net.cut.add("lab1")
    died = pair.clock.t
    pair.run(5.0)
    assert pair.states()["lab2"] == MASTER
    took = [t for t in pair.log if t[0] == "lab2" and t[1] == MASTER]
    assert took and "peer silent" in took[-1][2]
    down = pair.nodes["lab2"].machine.down_interval
    assert pair.nodes["lab2"].peer_seen_ago() >= down
    assert pair.clock.t - died >= down - 1.0
    pair.net.cut.clear()
    pair.restart("lab1")
    pair.run(2.0)
    assert pair.states() == {"lab1": MASTER, "lab2": BACKUP}


def test_it_keeps_the_new_master_when_preempt_is_off():
    pair = Pair(preempt=False)
    for node in pair.nodes.values():
        node.start()
    pair.run(3.0)
    pair.alive["lab1"] = False
    pair.net.cut.add("lab1")
    pair.run(6.0)
    pair.net.cut.clear()
    pair.restart("lab1")
    pair.run(5.0)
    assert pair.states() == {"lab1": BACKUP, "lab2": MASTER}


def test_it_hands_over_at_once_on_a_graceful_stop():
    pair = Pair()
    for node in pair.nodes.values():
        node.start()
    pair.run(3.0)
    pair.nodes["lab1"].resign()
    pair.alive["lab1"] = False
    pair.run(0.1)  # far less than the master-down interval
    assert pair.states()["lab2"] == MASTER
    assert any("resigned" in reason for _, _, reason in pair.log)


def test_it_ignores_a_forger_on_the_wire():
    pair = Pair()
    for node in pair.nodes.values():
        node.start()
    pair.run(3.0)
    fake = fo.encode(Advert("lab3", 255, 10**15, pair.clock.wall(), MASTER), "guessed")
    for _ in range(5):
        pair.net.queues["lab1"].append(fake)
    pair.run(1.0)
    assert pair.states() == {"lab1": MASTER, "lab2": BACKUP}
    assert pair.nodes["lab1"].rejected == 5


# -- gratuitous ARP -----------------------------------------------------------------------------------------
def test_it_builds_a_gratuitous_arp_for_the_vip():
    mac = bytes.fromhex("fefd64400002")
    frame = fo.garp_frame(mac, "100.64.0.200")
    assert len(frame) == 42
    assert frame[:6] == b"\xff" * 6 and frame[6:12] == mac and frame[12:14] == b"\x08\x06"
    htype, ptype, hlen, plen, op = struct.unpack("!HHBBH", frame[14:22])
    assert (htype, ptype, hlen, plen, op) == (1, 0x0800, 6, 4, 1)
    assert frame[22:28] == mac and frame[28:32] == bytes([100, 64, 0, 200])
    assert frame[32:38] == b"\x00" * 6 and frame[38:42] == bytes([100, 64, 0, 200])
    assert struct.unpack("!H", fo.garp_frame(mac, "100.64.0.200", reply=True)[20:22])[0] == 2


def test_it_sends_no_gratuitous_arp_for_ipv6_vips():
    assert fo.send_garp("nonexistent0", ["2001:db8::1/128"]) == 0


# -- IPVS connection sync daemons (director/ipvs/codec.py) ---------------------------------------------------
def test_it_encodes_the_sync_daemon_requests_exactly():
    from director.ipvs import codec

    start = codec.daemon_attrs("master", "eth0", 7)
    assert start == (
        struct.pack("=HH", 32, 3)
        + struct.pack("=HHI", 8, 1, 1)
        + struct.pack("=HH", 9, 2) + b"eth0\0" + b"\0" * 3
        + struct.pack("=HHI", 8, 3, 7)
    )  # fmt: skip
    assert codec.daemon_attrs("backup") == struct.pack("=HH", 12, 3) + struct.pack("=HHI", 8, 1, 2)


def test_it_validates_the_sync_settings():
    base = {"local_address": "10.0.0.1", "peer_address": "10.0.0.2", "secret": "x"}
    assert Config.from_dict(base).sync_daemon is True
    assert Config.from_dict({**base, "sync_daemon": False, "sync_id": 9}).sync_id == 9
    with pytest.raises(ValueError):
        Config.from_dict({**base, "sync_id": 256})
