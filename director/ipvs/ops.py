"""One IPVS operation, and the one way it is told to a human.

plan.py computes operations, wire.py sends them (a refusal names the operation), drift.py tells the operator
what a reconcile would do to the kernel; all three use `describe()`, so an operation reads the same in an
apply error, a kernel refusal and the drift list:

    add service TCP 172.16.10.52:80 (wlc, persistent 300s netmask 255.255.255.255)
    set real 192.168.1.4:80 in TCP 172.16.10.52:80: weight 1 -> 0
    delete real 192.168.1.9:80 in TCP 172.16.10.52:80 (gate, weight 5)
    delete service UDP 172.16.10.52:53 (rr, 1 real server)
"""

from __future__ import annotations

from dataclasses import dataclass

from .model import Dest, Service, dest_label

VERBS = {"add": "add", "set": "set", "del": "delete"}

SERVICE_FIELDS = (
    ("scheduler", "scheduler"),
    ("flags", "flags"),
    ("timeout", "persistence"),
    ("netmask", "netmask"),
    ("pe_name", "persistence engine"),
)
DEST_FIELDS = (
    ("fwd", "forwarding"),
    ("weight", "weight"),
    ("u_threshold", "upper threshold"),
    ("l_threshold", "lower threshold"),
    ("tun_type", "tunnel type"),
    ("tun_port", "tunnel port"),
    ("tun_flags", "tunnel flags"),
)


@dataclass(frozen=True)
class Op:
    """One kernel operation: kind is add_service|set_service|del_service|add_dest|set_dest|del_dest."""

    kind: str
    service: Service
    dest: Dest | None = None
    old: Dest | Service | None = None  # for sets: what the kernel held (only for the text)

    def __str__(self) -> str:
        return describe(self)


def _value(value) -> str:
    if isinstance(value, tuple):
        return ",".join(value) or "none"
    return str(value)


def _service_settings(svc: Service) -> list[str]:
    out = [svc.scheduler]
    if svc.flags:
        out.append(f"flags {','.join(svc.flags)}")
    if svc.timeout:
        out.append(f"persistent {svc.timeout}s netmask {svc.netmask}")
    if svc.pe_name:
        out.append(f"persistence engine {svc.pe_name}")
    return out


def _dest_settings(dest: Dest) -> list[str]:
    out = [dest.fwd, f"weight {dest.weight}"]
    if dest.u_threshold or dest.l_threshold:
        out.append(f"thresholds {dest.l_threshold}..{dest.u_threshold}")
    if dest.fwd == "ipip" and (dest.tun_type != "ipip" or dest.tun_port or dest.tun_flags):
        out.append(f"tunnel {dest.tun_type} port {dest.tun_port} flags {dest.tun_flags}")
    return out


def changes(old: Dest | Service, new: Dest | Service) -> list[str]:
    """'weight 1 -> 0', one per field that differs. A kernel "local" forwarding (the kernel rewrote it, plan.py
    accepts it as any method) is no difference."""
    names = DEST_FIELDS if isinstance(new, Dest) else SERVICE_FIELDS
    out = []
    for attr, label in names:
        have, want = getattr(old, attr), getattr(new, attr)
        if have != want and not (attr == "fwd" and have == "local"):
            out.append(f"{label} {_value(have)} -> {_value(want)}")
    return out


def describe(op: Op) -> str:
    """'<verb> <entry> (<settings>)', or for a set whose old value is known '<verb> <entry>: <changes>'."""
    svc, dest = op.service, op.dest
    verb = VERBS[op.kind[:3]]
    if dest is None:
        entry = f"service {svc.label()}"
        settings = _service_settings(svc)
        if op.kind == "del_service":  # what goes with it
            n = len(svc.dests)
            settings.append(f"{n} real server{'s' if n != 1 else ''}")
    else:
        entry = f"real {dest_label(dest)} in {svc.label()}"
        settings = _dest_settings(dest)
    if op.kind.startswith("set") and op.old is not None:
        diff = changes(op.old, dest if dest is not None else svc)
        if diff:
            return f"{verb} {entry}: {'; '.join(diff)}"
    return f"{verb} {entry} ({', '.join(settings)})"
