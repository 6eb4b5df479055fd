"""The IPVS connection table, from /proc/net/ip_vs_conn, filtered for the dashboard.

Kernel format (net/netfilter/ipvs/ip_vs_conn.c, ip_vs_conn_seq_show), one connection per line after a
header line starting with "Pro"::

    IPv4:  "%-3s %08X %04X %08X %04X %s %04X %-11s %7lu%s"
    IPv6:  "%-3s %pI6 %04X %pI6 %04X %s %04X %-11s %7lu%s"

= protocol, client address/port, virtual address/port, real address ("%08X" or "%pI6": a v4 real server in
an IPv6 service is printed as hex) and port, state, seconds to expiry, optional " <pe name> <pe data>".
IPv4 addresses and all ports are upper-case hex in host order of the number; "%pI6" is the full
colon-separated form (2001:0db8:0000:...).
"""

from __future__ import annotations

import ipaddress

from .sysctl import in_netns

PROC_PATH = "/proc/thread-self/net/ip_vs_conn"  # thread-self: honours a per-thread setns


def _addr(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if ":" in text:
        return ipaddress.IPv6Address(text)
    return ipaddress.IPv4Address(int(text, 16))


def _endpoint(addr_text: str, port_hex: str) -> str:
    addr = _addr(addr_text)
    port = int(port_hex, 16)
    return f"[{addr}]:{port}" if addr.version == 6 else f"{addr}:{port}"


def parse_line(line: str) -> dict | None:
    """One connection row, or None for the header / a line we cannot read."""
    parts = line.split()
    if len(parts) < 9 or parts[0] == "Pro":
        return None
    try:
        row = {
            "proto": parts[0].lower(),
            "client": _endpoint(parts[1], parts[2]),
            "virtual": _endpoint(parts[3], parts[4]),
            "real": _endpoint(parts[5], parts[6]),
            "state": parts[7],
            "expire": int(parts[8]),
        }
    except ValueError:
        return None
    if len(parts) >= 10:
        row["pe"] = " ".join(parts[9:])
    return row


def parse(text: str) -> list[dict]:
    return [row for row in map(parse_line, text.splitlines()) if row is not None]


def _service_filter(service: str | None):
    """keys.service_id text -> (proto, "vip:port") to match, or None for no filter."""
    if not service:
        return None
    parts = service.split("|")
    if parts[0] == "fwmark":
        # fwmark is not in /proc/net/ip_vs_conn: a fwmark service cannot be told apart from its rows
        return ("fwmark", None)
    if len(parts) != 3:
        raise ValueError(f"invalid service id {service!r}")
    addr = ipaddress.ip_address(parts[1])
    virtual = f"[{addr}]:{int(parts[2])}" if addr.version == 6 else f"{addr}:{int(parts[2])}"
    return (parts[0].lower(), virtual)


def filter_rows(
    rows: list[dict],
    service: str | None = None,
    client: str = "",
    real: str = "",
    state: str = "",
    limit: int = 500,
) -> dict:
    """{"total", "matched", "shown", "rows"}: filters combine (AND); client/real match any part of the text."""
    svc = _service_filter(service)
    state = (state or "").strip().lower()
    client = (client or "").strip()
    real = (real or "").strip()
    limit = max(0, int(limit))
    matched = 0
    shown = []
    for row in rows:
        if svc is not None and (svc[1] is None or row["proto"] != svc[0] or row["virtual"] != svc[1]):
            continue
        if client and client not in row["client"]:
            continue
        if real and real not in row["real"]:
            continue
        if state and row["state"].lower() != state:
            continue
        matched += 1
        if len(shown) < limit:
            shown.append(row)
    return {"total": len(rows), "matched": matched, "shown": len(shown), "rows": shown}


def read(netns: str | None = None, path: str = PROC_PATH) -> str:
    with in_netns(netns):
        try:
            with open(path) as f:
                return f.read()
        except FileNotFoundError:  # ip_vs not loaded: no connections
            return ""


def query(
    service: str | None = None,
    client: str = "",
    real: str = "",
    state: str = "",
    limit: int = 500,
    netns: str | None = None,
) -> dict:
    """The live connection table, filtered; see filter_rows()."""
    return filter_rows(parse(read(netns)), service, client, real, state, limit)
