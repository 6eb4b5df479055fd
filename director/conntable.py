"""The IPVS connection table, from /proc/net/ip_vs_conn: one bounded read, filtered, ordered, counted.

Kernel format (net/netfilter/ipvs/ip_vs_conn.c, ip_vs_conn_seq_show), one connection per line after a
header line starting with "Pro"::

    IPv4:  "%-3s %08X %04X %08X %04X %s %04X %-11s %7lu%s"
    IPv6:  "%-3s %pI6 %04X %pI6 %04X %s %04X %-11s %7lu%s"

= protocol, client address/port, virtual address/port, real address ("%08X" or "%pI6": a v4 real server in
an IPv6 service is printed as hex) and port, state, seconds to expiry, optional " <pe name> <pe data>".
IPv4 addresses and all ports are upper-case hex in host order of the number; "%pI6" is the full
colon-separated form (2001:0db8:0000:...).

The bound: a query reads at most `READ_MAX` connections (the kernel lists them in hash order, so past the
bound the answer covers an arbitrary part of the table and says so with `truncated`), and returns at most
`SHOW_MAX` rows. Everything else a page shows - counts by state and by real server, the top talkers - comes
from that same single pass, so the cost of a query is one read of at most READ_MAX lines whatever the
filters (bench/conntable_bench.py measures it at 100,000 connections; figure in the README), and one read
serves every query of the next MAX_AGE second (several pages open on one director cost one read).

Ordering: established connections first, then by time to expiry, longest first (the kernel resets the
timer on every packet, so the connections that were active most recently come first); ties by client.
"""

from __future__ import annotations

import heapq
import ipaddress
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass

from . import keys
from .sysctl import in_netns

PROC_PATH = "/proc/thread-self/net/ip_vs_conn"  # thread-self: honours a per-thread setns
READ_MAX = 200_000  # connections read per query (see module docstring)
SHOW_MAX = 5_000  # rows one answer carries at most; the page asks for more with "show more"
DEFAULT_LIMIT = 100
TALKERS = 5  # client addresses per service / per real server in the top talkers
MAX_AGE = 1.0  # seconds one read of the table serves further queries (several open pages share it)
ESTABLISHED = "ESTABLISHED"
_STATE = re.compile(r"^[A-Z0-9_]{1,20}$")

# One connection, as read: (proto, client, cport, virtual, vport, real, rport, state, expire, pe).
# Addresses are canonical text (str(ipaddress)), so ids built from them equal director/keys.py's.
Conn = tuple


class _Addresses(dict):
    """Kernel address text -> canonical address text, parsed once per distinct address in a read."""

    def __missing__(self, text: str) -> str:
        value = str(ipaddress.IPv6Address(text) if ":" in text else ipaddress.IPv4Address(int(text, 16)))
        self[text] = value
        return value


def parse_conn(parts: list[str], addresses: _Addresses) -> Conn | None:
    """One split line as a Conn, or None for the header / a line we cannot read."""
    if len(parts) < 9 or parts[0] == "Pro":
        return None
    try:
        return (
            parts[0].lower(),
            addresses[parts[1]],
            int(parts[2], 16),
            addresses[parts[3]],
            int(parts[4], 16),
            addresses[parts[5]],
            int(parts[6], 16),
            parts[7],
            int(parts[8]),
            " ".join(parts[9:]),
        )
    except ValueError:
        return None


def endpoint(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def service_of(conn: Conn) -> str:
    return keys.service_id(conn[0], conn[3], conn[4])


def dest_of(conn: Conn) -> str:
    return keys.dest_id(service_of(conn), conn[5], conn[6])


def as_row(conn: Conn) -> dict:
    """The JSON row of one connection (what the pages read)."""
    proto, client, cport, virtual, vport, real, rport, state, expire, pe = conn
    row = {
        "proto": proto,
        "client": endpoint(client, cport),
        "virtual": endpoint(virtual, vport),
        "real": endpoint(real, rport),
        "state": state,
        "expire": expire,
        "service": keys.service_id(proto, virtual, vport),
        "dest": keys.dest_id(keys.service_id(proto, virtual, vport), real, rport),
    }
    if pe:
        row["pe"] = pe
    return row


def parse_line(line: str) -> dict | None:
    conn = parse_conn(line.split(), _Addresses())
    return None if conn is None else as_row(conn)


def parse(text: str) -> list[Conn]:
    addresses = _Addresses()
    return [c for c in (parse_conn(line.split(), addresses) for line in text.splitlines()) if c is not None]


# -- filters -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Filters:
    """What a query keeps (all given filters must hold). Built by `Filters.parse`, which rejects bad input
    with a message naming the field, so the page can show it and the agent never guesses."""

    service: tuple[str, str, int] | None = None  # (proto, vip, port); fwmark services match nothing
    fwmark: bool = False
    client: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    real: str = ""  # address
    real_port: int | None = None
    state: str = ""
    port: int | None = None  # virtual or real-server port

    @classmethod
    def parse(
        cls, service: str | None = None, client: str = "", real: str = "", state: str = "", port=None
    ) -> Filters:
        out: dict = {}
        if service:
            parts = str(service).split("|")
            if parts[0] == "fwmark":
                # the fwmark is not in /proc/net/ip_vs_conn: a fwmark service cannot be told apart from its rows
                out["fwmark"] = True
            elif len(parts) != 3 or not parts[2].isdigit():
                raise ValueError(f"service: {service!r} is not a service id like tcp|172.16.10.52|80")
            else:
                out["service"] = (parts[0].lower(), _address("service", parts[1]), int(parts[2]))
        client = (client or "").strip()
        if client:
            try:
                out["client"] = ipaddress.ip_network(client, strict=False)
            except ValueError:
                raise ValueError(
                    f"client: {client!r} is not an address or a prefix like 172.16.10.0/24"
                ) from None
        real = (real or "").strip()
        if real:
            out["real"], out["real_port"] = _real(real)
        state = (state or "").strip().upper()
        if state:
            if not _STATE.match(state):
                raise ValueError(f"state: {state!r} is not a connection state like ESTABLISHED")
            out["state"] = state
        if port not in (None, ""):
            try:
                value = int(port)
            except (TypeError, ValueError):
                value = -1
            if not 0 < value < 65536:
                raise ValueError(f"port: {port!r} is not a port number from 1 to 65535")
            out["port"] = value
        return cls(**out)

    def matcher(self):
        """keep(conn) -> bool for these filters; a client prefix is tested once per distinct address."""
        inside: dict[str, bool] = {}

        def in_prefix(address: str) -> bool:
            if address not in inside:
                inside[address] = ipaddress.ip_address(address) in self.client
            return inside[address]

        def keep(conn: Conn) -> bool:
            if self.fwmark:
                return False
            if self.service is not None and (conn[0], conn[3], conn[4]) != self.service:
                return False
            if self.state and conn[7] != self.state:
                return False
            if self.real and (
                conn[5] != self.real or (self.real_port is not None and conn[6] != self.real_port)
            ):
                return False
            if self.port is not None and self.port not in (conn[4], conn[6]):
                return False
            return self.client is None or in_prefix(conn[1])

        return keep


def _address(field: str, text: str) -> str:
    try:
        return str(ipaddress.ip_address(text.strip("[]")))
    except ValueError:
        raise ValueError(f"{field}: {text!r} is not an IP address") from None


def _real(text: str) -> tuple[str, int | None]:
    """'192.168.1.4', '192.168.1.4:80', '2001:db8::4' or '[2001:db8::4]:80' -> (address, port or None)."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else None
        if rest and port is None:
            raise ValueError(f"real: {text!r} is not an address or address:port")
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, None
    address = _address("real", host)
    if port is None:
        return address, None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"real: {text!r} has no valid port")
    return address, int(port)


# -- one pass ----------------------------------------------------------------------------------------------
def order_key(conn: Conn):
    """Established first, then longest time to expiry first, then client (a stable order across refreshes)."""
    return (conn[7] != ESTABLISHED, -conn[8], conn[1], conn[2])


def summarize(conns, filters: Filters | None = None, limit: int = DEFAULT_LIMIT, read: int | None = None,
              truncated: bool = False) -> dict:  # fmt: skip
    """Filter, count, rank and cap `conns` (an iterable of Conn) in one pass.

    Answer: {"total": connections read, "truncated": the table had more than READ_MAX, "matched", "shown",
    "rows" (the first `limit` matches in order_key order), "states": {state: n}, "reals": {dest id: n},
    "talkers": {"services": {service id: [[client, n], ...]}, "reals": {dest id: [[client, n], ...]}}};
    counts and talkers are over the matched connections.
    """
    filters = filters or Filters()
    limit = max(0, min(int(limit), SHOW_MAX))
    keep = filters.matcher()
    matched: list[Conn] = []
    total = 0
    for conn in conns:
        total += 1
        if keep(conn):
            matched.append(conn)
    states = Counter(c[7] for c in matched)
    per_dest = Counter((c[0], c[3], c[4], c[5], c[6]) for c in matched)
    talk_dest = Counter((c[0], c[3], c[4], c[5], c[6], c[1]) for c in matched)
    talk_service: Counter = Counter()
    for (proto, vip, vport, _real, _rport, client), n in talk_dest.items():
        talk_service[(proto, vip, vport, client)] += n
    return {
        "total": total if read is None else read,
        "truncated": truncated,
        "matched": len(matched),
        "shown": min(limit, len(matched)),
        "rows": [as_row(c) for c in heapq.nsmallest(limit, matched, key=order_key)],
        "states": dict(states.most_common()),
        "reals": {
            keys.dest_id(keys.service_id(p, v, vp), r, rp): n for (p, v, vp, r, rp), n in per_dest.items()
        },
        "talkers": {
            "services": _top(talk_service, lambda g: keys.service_id(*g)),
            "reals": _top(talk_dest, lambda g: keys.dest_id(keys.service_id(*g[:3]), g[3], g[4])),
        },
    }


def _top(counter: Counter, group) -> dict[str, list]:
    """{group id: [[client, n], ...]} with the TALKERS largest n per group (ties: lower address first).

    Keys are (group fields..., client); `group` formats the id once per group, not once per client."""
    groups: dict[tuple, list] = {}
    for key, n in counter.items():
        groups.setdefault(key[:-1], []).append((-n, key[-1]))
    return {
        group(fields): [[client, -n] for n, client in heapq.nsmallest(TALKERS, items)]
        for fields, items in groups.items()
    }


def read_conns(netns: str | None = None, path: str = PROC_PATH, bound: int = READ_MAX):
    """(connections, truncated): at most `bound` connections of the kernel table, streamed line by line."""
    addresses = _Addresses()
    conns: list[Conn] = []
    truncated = False
    with in_netns(netns):
        try:
            f = open(path)
        except FileNotFoundError:  # ip_vs not loaded: no connections
            return conns, False
        with f:
            for line in f:
                conn = parse_conn(line.split(), addresses)
                if conn is None:
                    continue
                if len(conns) >= bound:
                    truncated = True
                    break
                conns.append(conn)
    return conns, truncated


# (netns, path) -> (monotonic time of the read, conns, truncated)
_recent: dict[tuple, tuple[float, list[Conn], bool]] = {}
_recent_lock = threading.Lock()


def recent_conns(netns: str | None = None, path: str = PROC_PATH, max_age: float = MAX_AGE):
    """read_conns(), reused for `max_age` seconds: every open connections page asks every 2 s, and one read
    per second serves them all (a page is at most MAX_AGE older than the kernel)."""
    key = (netns, path)
    with _recent_lock:
        hit = _recent.get(key)
        if hit is not None and time.monotonic() - hit[0] < max_age:
            return hit[1], hit[2]
        conns, truncated = read_conns(netns, path)
        _recent.clear()  # one table per agent: no growth
        _recent[key] = (time.monotonic(), conns, truncated)
        return conns, truncated


def query(
    service: str | None = None,
    client: str = "",
    real: str = "",
    state: str = "",
    port=None,
    limit: int = DEFAULT_LIMIT,
    netns: str | None = None,
    path: str = PROC_PATH,
    max_age: float = MAX_AGE,
) -> dict:
    """The live connection table, filtered and summarized (see summarize()); bad filters answer
    {"error": "..."} naming the field instead of a table."""
    try:
        filters = Filters.parse(service, client, real, state, port)
    except ValueError as exc:
        return {"error": str(exc)}
    conns, truncated = recent_conns(netns, path, max_age)
    answer = summarize(conns, filters, limit, truncated=truncated)
    answer["bound"] = READ_MAX
    return answer
