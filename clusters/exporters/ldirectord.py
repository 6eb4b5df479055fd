"""ServicePlans -> ldirectord.cf that ldirectord accepts and that imports back to the same model.

Every setting is written per virtual service and explicitly (service=, protocol=, quiescent=, timeouts), so
nothing depends on ldirectord's port-derived defaults. ldirectord only honours a per-virtual checkinterval
with fork=yes: one shared interval is written globally, different ones switch fork on. Settings ldirectord
cannot express (keepalived's status codes, retries, quorum...) and values it would misread (a `#` inside a
value starts a comment there) are listed as comments inside the section, where ldirectord skips them.
"""

from __future__ import annotations

import math

from clusters.importers.plan import ServicePlan

DEFAULTS = ServicePlan()


def _int(value: float) -> int:
    """ldirectord takes whole seconds (at least 1)."""
    return max(1, math.ceil(value))


def _host(address: str, family: int) -> str:
    return f"[{address}]" if family == 6 else address


def _lossy(s: ServicePlan) -> list[str]:
    notes = []
    for name, label in (
        ("expected_status", "status codes"),
        ("delay_before_retry", "delay_before_retry"),
        ("rise", "rise"),
        ("quorum", "quorum"),
        ("hysteresis", "hysteresis"),
        ("verify_tls", "verify_tls"),
        ("redirects", "redirects followed"),
        ("tcp_on_udp", "TCP connect on UDP"),
        ("fallback_rule", "fallback rule"),
        ("check_traffic_port", "check the traffic port"),
        ("start_down", "start down"),
    ):
        if getattr(s, name) != getattr(DEFAULTS, name):
            notes.append(f"{label}={getattr(s, name)}")
    for r in s.reals:
        if r.quiescent is not None and r.quiescent != s.quiescent:
            notes.append(f"{r.address}:{r.port} quiescent={'yes' if r.quiescent else 'no'}")
    for name in ("checkinterval", "checktimeout", "negotiatetimeout"):
        if getattr(s, name) != int(getattr(s, name)):
            notes.append(f"{name}={getattr(s, name)} (rounded up to whole seconds)")
    return notes


def _section(s: ServicePlan, fork: bool) -> list[str]:
    from . import ordered_reals

    six = "6" if s.family == 6 else ""
    if s.protocol == "sctp":
        return [f"# {s.label}: SCTP services cannot be expressed in ldirectord.cf (not exported)", ""]
    head = str(s.fwmark) if s.protocol == "fwmark" else f"{_host(s.address, s.family)}:{s.port}"
    out = [f"virtual{six}={head}"]
    notes = _lossy(s)
    if notes:
        out.append("\t# not expressible in ldirectord.cf: " + ", ".join(notes))
    if s.name:
        out.append(f"\tservicename={s.name.replace('#', '')}")
    for r in ordered_reals(s):
        port = f":{r.port}" if r.port else ""
        line = f"\treal{six}={_host(r.address, 6 if ':' in r.address else 4)}{port} {r.forwarding} {r.weight}"
        if r.l_threshold:
            line += f" l:{r.l_threshold}"
        if r.u_threshold:
            line += f" u:{r.u_threshold}"
        out.append(line)
    if s.fallback_address:
        port = f":{s.fallback_port}" if s.fallback_port else ""
        out.append(f"\tfallback{six}={_host(s.fallback_address, s.family)}{port} {s.fallback_forwarding}")
    out.append(f"\tscheduler={s.scheduler}")
    out.append(f"\tprotocol={'fwm' if s.protocol == 'fwmark' else s.protocol}")
    if s.persistence:
        out.append(f"\tpersistent={s.persistence}")
        if s.netmask:
            out.append(f"\tnetmask={s.netmask}")
    flags = [f for f in s.sched_flags if f != "ops"]
    if flags:
        out.append(f"\tschedflags={','.join(flags)}")
    if "ops" in s.sched_flags:
        out.append("\tops=yes")
    out.append(f"\tchecktype={s.check_every if s.check_every else s.checktype}")
    if s.external_program:
        out.append(f'\tcheckcommand="{s.external_program}"')
    out.append(f"\tservice={s.check_service}")
    for name in ("request", "receive", "login", "passwd", "database", "secret"):
        value = getattr(s, name)
        if value:
            if "#" in value:
                out.append(f"\t# {name} contains '#', which ldirectord reads as the start of a comment")
            out.append(f'\t{name}="{value}"')
    if s.httpmethod != "GET":
        out.append(f"\thttpmethod={s.httpmethod}")
    if s.virtualhost:
        out.append(f"\tvirtualhost={s.virtualhost}")
    if s.checkport:
        out.append(f"\tcheckport={s.checkport}")
    out.append(f"\tchecktimeout={_int(s.checktimeout)}")
    out.append(f"\tnegotiatetimeout={_int(s.negotiatetimeout)}")
    out.append(f"\tfailurecount={s.failurecount}")
    if s.retries != 1:  # read back as retries; ldirectord itself uses it for ping checks
        out.append(f"\tcheckcount={s.retries}")
    if fork:
        out.append(f"\tcheckinterval={_int(s.checkinterval)}")
    out.append(f"\tquiescent={'yes' if s.quiescent else 'no'}")
    out.append("")
    return out


def render(services: list[ServicePlan], *, title: str = "") -> str:
    intervals = {_int(s.checkinterval) for s in services}
    fork = len(intervals) > 1
    out = [f"# {title or 'ldirectord.cf'}, written by Ultra Monkey Web", ""]
    if fork:
        out.append("# The virtual services are checked at different intervals: ldirectord needs fork=yes.")
        out.append("fork=yes")
    elif intervals:
        out.append(f"checkinterval={intervals.pop()}")
    out.append("")
    for s in services:
        out.extend(_section(s, fork))
    return "\n".join(out)
