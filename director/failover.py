"""Active/backup director pairs: a small VRRP-like protocol between the two agents, unicast and authenticated.

Why our own and not VRRP/keepalived: the agent already owns the VIPs (vip.py), so the agent must also decide
*when* it holds them, from its own process, with no central side involved - failover has to work while Redis
and the dashboard are down. The two directors of a pair talk directly over UDP (default port 5405), each
sending an *advert* to the other every `interval` seconds:

    {"v": 1, "name": "lab1", "prio": 150, "seq": 1764072000123, "time": 1764072000.123, "state": "MASTER"}
    + "\\n" + hex HMAC-SHA256(secret, that JSON)

An advert is rejected when its MAC does not verify (forged, or another pair's secret), when it carries our own
name (a reflection), when its time is more than `max_skew` seconds from ours (stale, or a replay of an old
capture), or when its sequence number does not grow (a replay inside the window).

`Machine` is the pure state machine (INIT -> BACKUP -> MASTER), driven by a clock passed in:

* the higher priority wins, a tie goes to the lower name, so two directors always agree on one winner;
* a peer silent for 3 x interval + skew (skew = (256 - priority) / 256 x interval, VRRP's: the higher
  priority notices first) is dead: the backup becomes MASTER;
* a returning higher-priority peer takes the role back when `preempt` (default), else it stays BACKUP;
* two MASTERs (a healed split brain) always resolve to the winner, whatever `preempt` says;
* priority 0 in an advert means "I am leaving" (a graceful stop): the backup takes over at once.

`Runner` adds the transport (anything with send(bytes) and recv(timeout) -> bytes | None) and the advert
schedule; the agent's pair part (pair.py) runs it in a thread over `UdpTransport`, the unit tests over a fake
network and a fake clock.
`garp_frame()` builds the gratuitous ARP a new MASTER sends for each IPv4 VIP, so neighbours switch to it
without waiting for their ARP entries to expire; `send_garp()` puts it on the wire with an AF_PACKET socket.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

INIT, BACKUP, MASTER = "INIT", "BACKUP", "MASTER"
STATES = (INIT, BACKUP, MASTER)
DEFAULT_PORT = 5405
DEFAULT_INTERVAL = 1.0
DEFAULT_PRIORITY = 100
MAX_SKEW = 10.0  # seconds an advert's time may differ from ours (clock difference + network delay)
MAX_ADVERT = 1024  # bytes; anything longer is not ours


class BadAdvert(ValueError):
    """An advert that must be ignored (forged, stale, replayed, malformed, reflected)."""


@dataclass(frozen=True)
class Config:
    """The `failover` part of the desired state (director/desired.py), validated."""

    local_address: str
    peer_address: str
    secret: str
    port: int = DEFAULT_PORT
    priority: int = DEFAULT_PRIORITY
    interval: float = DEFAULT_INTERVAL
    preempt: bool = True
    sync_daemon: bool = True  # IPVS connection sync between the pair (host.py, Host.ensure_sync)
    sync_id: int = 0

    @classmethod
    def from_dict(cls, d: dict) -> Config:
        known = {k: v for k, v in dict(d).items() if k in cls.__dataclass_fields__}
        cfg = cls(**known)
        local = ipaddress.ip_address(cfg.local_address)
        peer = ipaddress.ip_address(cfg.peer_address)
        if local.version != peer.version:
            raise ValueError("failover: local and peer address must be of the same family")
        if local == peer:
            raise ValueError("failover: the peer address is our own")
        if not cfg.secret:
            raise ValueError("failover: a shared secret is required")
        if not 1 <= int(cfg.priority) <= 255:
            raise ValueError("failover: priority must be 1-255")
        if not 1 <= int(cfg.port) <= 65535:
            raise ValueError("failover: port must be 1-65535")
        if not 0.05 <= float(cfg.interval) <= 60:
            raise ValueError("failover: interval must be 0.05-60 s")
        if not 0 <= int(cfg.sync_id) <= 255:
            raise ValueError("failover: sync_id must be 0-255")
        return cls(
            local_address=str(local),
            peer_address=str(peer),
            secret=str(cfg.secret),
            port=int(cfg.port),
            priority=int(cfg.priority),
            interval=float(cfg.interval),
            preempt=bool(cfg.preempt),
            sync_daemon=bool(cfg.sync_daemon),
            sync_id=int(cfg.sync_id),
        )


@dataclass(frozen=True)
class Advert:
    name: str
    priority: int
    seq: int
    time: float
    state: str


def encode(advert: Advert, secret: str) -> bytes:
    body = json.dumps(
        {
            "v": 1,
            "name": advert.name,
            "prio": advert.priority,
            "seq": advert.seq,
            "time": round(advert.time, 3),
            "state": advert.state,
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode()
    mac = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()
    return body + b"\n" + mac


def decode(data: bytes, secret: str, now: float, max_skew: float = MAX_SKEW) -> Advert:
    """Verify and parse an advert; raises BadAdvert. `now` is wall-clock time (the sender's is wall time too)."""
    if len(data) > MAX_ADVERT:
        raise BadAdvert("too long")
    body, sep, mac = data.rpartition(b"\n")
    if not sep:
        raise BadAdvert("no MAC")
    want = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()
    if not hmac.compare_digest(want, mac.strip()):
        raise BadAdvert("bad MAC")
    try:
        d = json.loads(body)
        advert = Advert(
            name=str(d["name"]),
            priority=int(d["prio"]),
            seq=int(d["seq"]),
            time=float(d["time"]),
            state=str(d["state"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise BadAdvert(f"malformed: {exc}") from exc
    if d.get("v") != 1 or advert.state not in STATES or not 0 <= advert.priority <= 255:
        raise BadAdvert("unknown version, state or priority")
    if abs(advert.time - now) > max_skew:
        raise BadAdvert(f"stale: {advert.time - now:+.1f} s from our clock")
    return advert


def beats(prio_a: int, name_a: str, prio_b: int, name_b: str) -> bool:
    """Does (prio_a, name_a) win over (prio_b, name_b)? Higher priority; a tie goes to the lower name."""
    return prio_a > prio_b or (prio_a == prio_b and name_a < name_b)


class Machine:
    """The pure state machine; every method takes `now` (monotonic seconds) and returns a transition or None.

    A transition is (new_state, reason). Nothing here does I/O, so every rule is unit-tested with a fake clock.
    """

    def __init__(self, name: str, priority: int, interval: float = DEFAULT_INTERVAL, preempt: bool = True):
        self.name = name
        self.priority = priority
        self.interval = interval
        self.preempt = preempt
        self.state = INIT
        self.peer: Advert | None = None  # the last valid advert
        self.peer_seen: float | None = None  # monotonic time of it
        self.down_at: float | None = None

    @property
    def down_interval(self) -> float:
        """VRRP's master-down interval: 3 adverts missed, plus a skew that lets the higher priority go first."""
        return 3 * self.interval + (256 - self.priority) / 256 * self.interval

    def _to(self, state: str, reason: str) -> tuple[str, str] | None:
        if state == self.state:
            return None
        self.state = state
        return (state, reason)

    def start(self, now: float) -> tuple[str, str] | None:
        """INIT -> BACKUP: listen for a master before claiming anything (a restart never steals the VIPs)."""
        self.down_at = now + self.down_interval
        return self._to(BACKUP, "started: waiting for the peer")

    def tick(self, now: float) -> tuple[str, str] | None:
        if self.state == BACKUP and self.down_at is not None and now >= self.down_at:
            if self.peer_seen is None:
                why = f"no advert from the peer within {self.down_interval:.2f} s of starting"
            else:
                why = f"peer silent for {now - self.peer_seen:.2f} s (limit {self.down_interval:.2f} s)"
            return self._to(MASTER, why)
        return None

    def on_advert(self, advert: Advert, now: float) -> tuple[str, str] | None:
        if self.state == INIT:
            return None
        self.peer, self.peer_seen = advert, now
        self.down_at = now + self.down_interval
        peer = f"{advert.name} ({advert.state}, priority {advert.priority})"
        if advert.priority == 0:
            return self._to(MASTER, f"peer {advert.name} resigned")
        we_win = beats(self.priority, self.name, advert.priority, advert.name)
        if self.state == MASTER:
            if advert.state == MASTER and not we_win:
                return self._to(BACKUP, f"peer {peer} wins over our priority {self.priority}")
            return None
        # BACKUP
        if advert.state == MASTER:
            if we_win and self.preempt:
                return self._to(MASTER, f"preempting peer {peer} with priority {self.priority}")
            return None
        if we_win:  # both BACKUP: nobody serves yet; the winner takes it now, not after the timeout
            return self._to(MASTER, f"peer {peer} is backup and our priority {self.priority} wins")
        return None


class Runner:
    """Machine + transport + schedule: one `step()` waits for at most one advert and sends what is due.

    `on_transition(state, reason)` is called from inside step() (in the agent: the failover thread).
    """

    def __init__(
        self,
        name: str,
        config: Config,
        transport,
        on_transition: Callable[[str, str], None],
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        max_skew: float = MAX_SKEW,
    ):
        self.name = name
        self.config = config
        self.transport = transport
        self.on_transition = on_transition
        self.clock = clock
        self.wall = wall
        self.max_skew = max_skew
        self.machine = Machine(name, config.priority, config.interval, config.preempt)
        self._seq = 0
        self._next_send = 0.0
        self._peer_seq: int | None = None
        self._peer_seq_at = 0.0
        self.rejected = 0
        self.last_reject = ""

    @property
    def state(self) -> str:
        return self.machine.state

    def _transition(self, change) -> None:
        if change is None:
            return
        self.on_transition(*change)
        self.send_advert()  # tell the peer at once, not at the next interval

    def start(self) -> None:
        self._transition(self.machine.start(self.clock()))

    def send_advert(self, priority: int | None = None) -> None:
        now = self.clock()
        self._seq = max(self._seq + 1, int(self.wall() * 1000))  # grows across restarts too (wall time)
        advert = Advert(
            self.name,
            self.config.priority if priority is None else priority,
            self._seq,
            self.wall(),
            self.machine.state,
        )
        try:
            self.transport.send(encode(advert, self.config.secret))
        except OSError as exc:
            log.debug("advert not sent: %s", exc)
        self._next_send = now + self.config.interval

    def resign(self) -> None:
        """Graceful stop: priority 0 tells the peer to take over now instead of after the timeout."""
        self.send_advert(priority=0)

    def accept(self, data: bytes) -> Advert | None:
        """Verify one datagram; count and remember rejects (visible for debugging, never acted on)."""
        try:
            advert = decode(data, self.config.secret, self.wall(), self.max_skew)
            if advert.name == self.name:
                raise BadAdvert("our own name (reflected)")
            now = self.clock()
            # a replay inside the time window repeats a sequence number; after max_skew the time check covers it
            fresh = self._peer_seq is None or now - self._peer_seq_at > self.max_skew
            if not fresh and advert.seq <= self._peer_seq:
                raise BadAdvert(f"replayed sequence {advert.seq}")
        except BadAdvert as exc:
            self.rejected += 1
            self.last_reject = str(exc)
            log.debug("advert rejected: %s", exc)
            return None
        self._peer_seq, self._peer_seq_at = advert.seq, now
        return advert

    def step(self, max_wait: float | None = None) -> None:
        """One bounded round: send if due, wait for an advert until the next deadline, act on it and the clock."""
        now = self.clock()
        if now >= self._next_send:
            self.send_advert()
        deadline = self._next_send
        if self.machine.down_at is not None and self.machine.state == BACKUP:
            deadline = min(deadline, self.machine.down_at)
        wait = max(0.0, min(deadline - self.clock(), self.config.interval))
        if max_wait is not None:
            wait = min(wait, max_wait)
        data = self.transport.recv(wait)
        if data is not None:
            advert = self.accept(data)
            if advert is not None:
                self._transition(self.machine.on_advert(advert, self.clock()))
        self._transition(self.machine.tick(self.clock()))

    def peer_seen_ago(self) -> float | None:
        seen = self.machine.peer_seen
        return None if seen is None else max(0.0, self.clock() - seen)


class UdpTransport:
    """A UDP socket bound to our local address, sending only to the peer and keeping only the peer's datagrams."""

    def __init__(self, config: Config, netns: str | None = None):
        from .sysctl import in_netns

        family = socket.AF_INET6 if ":" in config.local_address else socket.AF_INET
        with in_netns(netns):  # the socket belongs to the namespace it was created in
            sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((config.local_address, config.port))
        except OSError:
            sock.close()
            raise
        self.sock = sock
        self.peer = (config.peer_address, config.port)

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, self.peer)

    def recv(self, timeout: float) -> bytes | None:
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data, addr = self.sock.recvfrom(MAX_ADVERT + 1)
        except (TimeoutError, BlockingIOError):
            return None
        except OSError as exc:  # e.g. ICMP port unreachable from a peer whose agent is down
            log.debug("advert receive failed: %s", exc)
            time.sleep(min(timeout, 0.05))
            return None
        if ipaddress.ip_address(addr[0]) != ipaddress.ip_address(self.peer[0]):
            return None
        return data

    def close(self) -> None:
        self.sock.close()


# -- gratuitous ARP ------------------------------------------------------------------------------------------
ETH_P_ARP = 0x0806


def garp_frame(mac: bytes, address: str, reply: bool = False) -> bytes:
    """A broadcast gratuitous ARP for `address` from `mac`: sender and target IP are both the VIP.

    Linux neighbours update an existing entry from such a request at once (is_garp bypasses locktime), so the
    clients' traffic follows the new MASTER without waiting for the old entry to go stale.
    """
    ip = ipaddress.IPv4Address(address).packed
    eth = b"\xff" * 6 + mac + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 2 if reply else 1)
    target_mac = b"\xff" * 6 if reply else b"\x00" * 6
    return eth + arp + mac + ip + target_mac + ip


def send_garp(ifname: str, addresses: list[str], netns: str | None = None) -> int:
    """Send a gratuitous ARP request and reply for each IPv4 address on `ifname`; returns frames sent."""
    from .sysctl import in_netns

    v4 = [a for a in addresses if ipaddress.ip_interface(a).version == 4]
    if not v4:
        return 0
    with in_netns(netns):
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
    sent = 0
    try:
        sock.bind((ifname, ETH_P_ARP))
        mac = sock.getsockname()[4][:6]
        for text in v4:
            address = str(ipaddress.ip_interface(text).ip)
            for reply in (False, True):
                sock.send(garp_frame(mac, address, reply))
                sent += 1
    finally:
        sock.close()
    return sent
