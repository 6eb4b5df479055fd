"""The agent's pair part (director/pair.py): two of them over real UDP on loopback, each with the agent's
callbacks replaced by a recorder, so the wiring (role under the lock, what the host is told, events) is seen
from outside. The protocol's own rules are in test_failover.py."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from director import failover
from director.desired import DesiredState
from director.pair import Pair

VIPS = ("172.16.10.52/32",)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


class Side:
    """One director's agent as the pair sees it: a desired state, a lock, and a record of every callback."""

    def __init__(self, name: str, local: str, peer: str, port: int, priority: int):
        self.lock = threading.RLock()
        self.config = {
            "local_address": local,
            "peer_address": peer,
            "port": port,
            "priority": priority,
            "secret": "s3cret",
            "interval": 0.1,
            "preempt": True,
            "sync_daemon": True,
            "sync_id": 7,
        }
        # no WAN interface: nothing is sent on a real link (no gratuitous ARP)
        self.state = DesiredState(director=name, revision=1, vips=VIPS, failover=self.config)
        self.programmed: list[tuple[str, bool, tuple[str, ...]]] = []
        self.events: list[tuple[str, str, dict]] = []
        self.pair = Pair(
            name,
            None,
            self.lock,
            desired=lambda: self.state,
            program=self.program,
            emit=lambda kind, message, **kw: self.events.append((kind, message, kw)),
            flush=lambda: None,
        )

    def program(self, vips_only: bool) -> dict:
        assert self.lock._is_owned(), "the pair calls program() under the agent's lock"
        self.programmed.append((self.pair.role, vips_only, self.pair.active_vips(self.state)))
        return {"ops": 1, "errors": []}


@pytest.fixture
def sides():
    port = free_udp_port()
    one = Side("lab1", "127.0.0.1", "127.0.0.2", port, priority=150)
    two = Side("lab2", "127.0.0.2", "127.0.0.1", port, priority=100)
    yield one, two
    for side in (one, two):
        side.pair.stop(resign=False)


def test_it_holds_every_vip_on_a_lone_director_and_none_on_a_pair_backup():
    lone = DesiredState(director="lab1", vips=VIPS)
    side = Side("lab1", "127.0.0.1", "127.0.0.2", 5405, 100)
    assert side.pair.active_vips(lone) == VIPS
    assert side.pair.active_vips(side.state) == ()  # not MASTER (yet)
    assert side.pair.sync_wanted(side.state) is None  # no WAN interface to sync on
    with_wan = DesiredState(director="lab1", wan_interface="wan", vips=VIPS, failover=side.config)
    assert side.pair.sync_wanted(with_wan) == ("wan", 7)
    assert side.pair.sync_wanted(DesiredState(director="lab1", wan_interface="wan")) is None
    assert side.pair.snapshot() is None


def test_it_elects_the_higher_priority_and_gives_it_the_vips(sides):
    one, two = sides
    one.pair.update(one.config)
    two.pair.update(two.config)
    assert wait_for(lambda: one.pair.role == failover.MASTER and two.pair.role == failover.BACKUP)
    assert (failover.MASTER, True, VIPS) in one.programmed  # a takeover reprograms only the VIPs
    assert all(vips == () for role, _, vips in two.programmed)
    assert any(kind == "agent" and "MASTER" in message for kind, message, _ in one.events)
    assert wait_for(lambda: (one.pair.snapshot() or {}).get("peer_seen_ago") is not None)
    snap = one.pair.snapshot()
    assert snap["state"] == failover.MASTER and snap["priority"] == 150 and snap["peer"] == "127.0.0.2"
    assert snap["rejected"] == 0


def test_it_hands_the_vips_over_at_once_when_the_master_leaves(sides):
    one, two = sides
    one.pair.update(one.config)
    two.pair.update(two.config)
    assert wait_for(lambda: one.pair.role == failover.MASTER and two.pair.role == failover.BACKUP)
    t0 = time.monotonic()
    one.pair.stop(resign=True)
    assert wait_for(lambda: two.pair.role == failover.MASTER)
    down_interval = 3 * 0.1 + (256 - 100) / 256 * 0.1
    assert time.monotonic() - t0 < down_interval + 2.0  # the resign, not the silence timeout (plus slack)
    assert (failover.BACKUP, False, ()) in one.programmed  # the leaver dropped its VIPs before resigning
    assert one.pair.role == failover.INIT
    assert any(e[2].get("data", {}).get("ha") == "resigned" for e in one.events)
    assert two.pair.active_vips(two.state) == VIPS


def test_it_becomes_a_lone_director_again_when_the_pair_is_removed(sides):
    one, _ = sides
    one.pair.update(one.config)
    assert wait_for(lambda: one.pair.role == failover.BACKUP)
    lone = DesiredState(director="lab1", vips=VIPS)
    one.state = lone  # the agent stores the new desired state before it updates the pair
    one.pair.update(None)
    assert one.pair.role == failover.INIT
    assert one.programmed[-1] == (failover.INIT, False, VIPS)  # everything reprogrammed, VIPs up
    assert one.pair.active_vips(lone) == VIPS
    assert one.pair.snapshot() is None


def test_it_keeps_retrying_when_its_address_cannot_be_bound(sides):
    one, _ = sides
    config = dict(one.config, local_address="192.0.2.1")  # not ours: bind fails with EADDRNOTAVAIL
    one.pair.update(config)
    assert wait_for(lambda: any("cannot bind" in message for _, message, _ in one.events))
    assert one.pair.role == failover.INIT
    one.pair.stop()
