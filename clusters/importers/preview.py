"""A plan as plain text lines: what `import_config` prints and what the preview page shows in <pre> blocks.

Each virtual service also gets the kernel table it will have when every check passes and when every check
fails (computed by the agent's own policy, so the preview cannot drift from what the director does), and,
in words, which daemon's behaviour it follows where ldirectord and keepalived differ.
"""

from __future__ import annotations

from director import policy
from director.desired import RealSpec, ServiceSpec
from director.ipvs.model import real_port

from ..checkfields import check_spec
from .plan import Plan, ServicePlan


def check_summary(s: ServicePlan) -> str:
    """negotiate/http GET /index.html, connect, external /bin/check ... in a few words."""
    if s.check_every:
        kind = f"connect, negotiate every {s.check_every}"
    else:
        kind = s.checktype
    if s.checktype == "negotiate" or s.check_every:
        kind += f"/{s.check_service}"
        if s.request:
            kind += f" {s.request}"
    elif s.checktype == "external":
        kind += f" {s.external_program}"
    return kind


def agent_spec(s: ServicePlan) -> ServiceSpec:
    """The ServiceSpec the agent will receive for this planned service (as clusters/desired.py builds it)."""
    fallback = None
    if s.fallback_address:
        fallback = RealSpec(s.fallback_address, s.fallback_port or s.port or 0, s.fallback_forwarding, 1)
    reals = tuple(
        RealSpec(
            r.address, r.port, r.forwarding, r.weight, r.u_threshold, r.l_threshold,
            quiescent=r.quiescent, check_port=r.check_port,
        )
        for r in s.reals
    )  # fmt: skip
    return ServiceSpec(
        s.protocol, s.address or "", s.port or 0, s.fwmark or 0, s.family, s.scheduler,
        check=check_spec(s), fallback=fallback, reals=reals,
    )  # fmt: skip


def table_when(s: ServicePlan, passing: bool) -> str:
    """The kernel destinations when every check passes (or every check fails), in ipvsadm's words."""
    spec = agent_spec(s)
    pairs = policy.kernel_reals(spec, {r.key: passing for r in spec.reals})
    if not pairs:
        return "no real server (the service stays, empty)"
    return ", ".join(f"{r.address}:{real_port(spec, r)} weight {w}" for r, w in pairs)


def behaviour(s: ServicePlan) -> list[str]:
    """Where ldirectord and keepalived differ: what this service does, in words."""
    out = []
    if s.fallback_address:
        if s.fallback_rule == "keepalived":
            out.append(
                f"sorry server as keepalived: replaces the live servers while their weight is below quorum "
                f"{s.quorum} (hysteresis {s.hysteresis}); a passing server with weight 0 adds nothing"
            )
        else:
            out.append(
                "fallback as ldirectord: added while no real server passes its check "
                "(a passing server with weight 0 counts)"
            )
    if s.check_service in ("http", "https", "http_proxy") and (s.checktype == "negotiate" or s.check_every):
        codes = s.expected_status or "2xx"
        follow = f"follows up to {s.redirects} redirects" if s.redirects else "follows no redirect"
        out.append(f"HTTP check {follow}, then needs status {codes}")
    if s.protocol == "udp" and (s.checktype == "connect" or s.check_every):
        out.append(
            "connect check of this UDP service: a TCP handshake (keepalived TCP_CHECK)"
            if s.tcp_on_udp
            else "connect check of this UDP service: a ping (ldirectord)"
        )
    moved = [r for r in s.reals if r.check_port and r.check_port != r.port]
    if moved and not s.checkport:
        where = ", ".join(f"{r.address} on {r.check_port}" for r in moved)
        if s.check_traffic_port:
            out.append(f"checks every server on its traffic port (the source daemon checked {where})")
        else:
            out.append(f"checks {where} as the source daemon did ('check the traffic port' changes that)")
    if s.start_down:
        out.append("real servers start down until their first check passes (keepalived alpha)")
    return out


def outlook(s: ServicePlan) -> dict:
    """What the preview page shows under a service: the daemon behaviour in words and the two tables."""
    return {"behaviour": behaviour(s), "passing": table_when(s, True), "failing": table_when(s, False)}


def service_lines(s: ServicePlan) -> list[str]:
    head = f"{s.label}  {s.scheduler}"
    if s.sched_flags:
        head += f" [{','.join(s.sched_flags)}]"
    if s.persistence:
        head += f"  persistent {s.persistence}s" + (f" /{s.netmask}" if s.netmask else "")
    head += f"  check {check_summary(s)} every {s.checkinterval:g}s"
    if s.name:
        head += f"  \u201c{s.name}\u201d"
    out = [f"+ {head}  ({s.where})"]
    for r in s.reals:
        threshold = f" x{r.u_threshold}/y{r.l_threshold}" if (r.u_threshold or r.l_threshold) else ""
        out.append(f"    -> {r.address}:{r.port} {r.forwarding} weight {r.weight}{threshold}")
    if s.fallback_address:
        port = f":{s.fallback_port}" if s.fallback_port else ""
        out.append(f"    fallback {s.fallback_address}{port} {s.fallback_forwarding}")
    out.extend(f"    {line}" for line in behaviour(s))
    out.append(f"    every check passes: {table_when(s, True)}")
    out.append(f"    every check fails:  {table_when(s, False)}")
    return out


def plan_lines(plan: Plan) -> list[str]:
    out = [
        f"{plan.format} configuration from {', '.join(plan.files) or plan.source}: "
        f"{len(plan.services)} virtual services, {plan.real_count} real servers"
    ]
    for name, values in plan.settings.items():
        if isinstance(values, dict):
            values = ", ".join(f"{k}={v}" for k, v in values.items())
        elif isinstance(values, list):
            values = "; ".join(values)
        out.append(f"settings ({name}): {values}")
    for s in plan.services:
        out.extend(service_lines(s))
    return out
