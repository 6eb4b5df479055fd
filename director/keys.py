"""Redis key names and identity strings shared by the agent (writer) and the dashboard (reader).

Kept in the director package because the agent must not import Django; the web side imports this module.
"""

from __future__ import annotations

import ipaddress

EVENTS_STREAM = "umw:events"  # XADD by agents, consumed by the central worker into Event rows
EVENTS_MAXLEN = 100_000
HISTORY_POINTS = 1800  # one hour at one sample every 2 s
STATS_TTL = 30  # seconds a stats snapshot stays readable after the agent stops writing
HEARTBEAT_TTL = 300


def heartbeat_key(director: str) -> str:
    return f"umw:hb:{director}"


def stats_key(director: str) -> str:
    return f"umw:stats:{director}"


def history_key(director: str, dest_id: str) -> str:
    return f"umw:hist:{director}:{dest_id}"


def _host(address: str) -> str:
    return str(ipaddress.ip_address(address)) if address else ""


def service_id(protocol: str, address: str = "", port: int = 0, fwmark: int = 0, family: int = 4) -> str:
    """Stable text id of a virtual service: tcp|172.16.10.52|80 or fwmark|4|1."""
    if protocol == "fwmark":
        return f"fwmark|{family}|{int(fwmark)}"
    return f"{protocol}|{_host(address)}|{int(port)}"


def dest_id(svc_id: str, address: str, port: int) -> str:
    """Stable text id of a real server inside a service."""
    return f"{svc_id}|{_host(address)}|{int(port)}"
