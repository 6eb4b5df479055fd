"""Configuration importers: ldirectord.cf, keepalived.conf and `ipvsadm -S` text -> a neutral Plan.

`parse(text, fmt)` picks the parser (or guesses the format with `detect_format`); parsers are pure and never
touch the database or the network. `apply.apply_plan` turns a Plan into rows (that module needs Django).
"""

from __future__ import annotations

import re

from . import ipvsadm, keepalived, ldirectord
from .plan import FileSources, HostsMap, MemorySources, Message, Plan, RealPlan, ServicePlan, Sources

FORMATS = ("ldirectord", "keepalived", "ipvsadm")
PARSERS = {"ldirectord": ldirectord.parse, "keepalived": keepalived.parse, "ipvsadm": ipvsadm.parse}

__all__ = [
    "FORMATS", "FileSources", "HostsMap", "MemorySources", "Message", "Plan", "RealPlan", "ServicePlan",
    "Sources", "detect_format", "parse",
]  # fmt: skip


def detect_format(text: str) -> str | None:
    """Guess the format from the first statements that only one of them has; None when unsure."""
    for raw in text.splitlines()[:2000]:
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        if re.match(r"^(ipvsadm\s+)?-[AaEeDdC]\b|^(ipvsadm\s+)?--(add|edit|delete)-(service|server)\b", line):
            return "ipvsadm"
        if re.match(
            r"^(virtual6?|real6?|checktimeout|checkinterval|quiescent|fallback6?|autoreload|logfile)\s*=",
            line,
        ):
            return "ldirectord"
        if re.match(
            r"^(virtual_server|virtual_server_group|vrrp_\w+|global_defs|real_server|include)\b", line
        ):
            return "keepalived"
    return None


def parse(
    text: str,
    fmt: str = "auto",
    *,
    filename: str | None = None,
    hosts: HostsMap | None = None,
    sources: Sources | None = None,
) -> Plan:
    """Parse `text` as `fmt` ("auto" guesses); an undetectable format is an error in the returned Plan."""
    if fmt == "auto":
        fmt = detect_format(text) or ""
        if not fmt:
            plan = Plan(format="unknown", source=filename or "upload")
            plan.error(plan.source, 0, "cannot tell the format: choose ldirectord, keepalived or ipvsadm")
            return plan
    if fmt not in PARSERS:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)} or auto")
    kwargs = {"hosts": hosts, "sources": sources}
    if filename:
        kwargs["filename"] = filename
    return PARSERS[fmt](text, **kwargs)
