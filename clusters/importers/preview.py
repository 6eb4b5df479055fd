"""A plan as plain text lines: what `import_config` prints and what the preview page shows in <pre> blocks."""

from __future__ import annotations

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
