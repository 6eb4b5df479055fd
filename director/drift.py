"""Drift: how the kernel differs from what the agent last applied - e.g. someone ran ipvsadm by hand.

The differences are exactly the operations a reconcile would perform (plan.diff), told the other way round:
what is in the kernel and should not be, what is missing, and what differs, field by field.
"""

from __future__ import annotations

from .ipvs.model import Dest, Service, dest_label
from .ipvs.plan import diff


def _fields(old, new, names: tuple[tuple[str, str], ...]) -> str:
    parts = []
    for attr, label in names:
        have, want = getattr(old, attr), getattr(new, attr)
        if have != want:
            fmt = lambda v: ",".join(v) or "none" if isinstance(v, tuple) else v  # noqa: E731
            parts.append(f"{label} {fmt(have)} in the kernel, {fmt(want)} desired")
    return "; ".join(parts)


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


def report(desired_table: list[Service], actual: list[Service]) -> list[str]:
    """Human-readable differences, one line each; [] when the kernel matches."""
    out = []
    for op in diff(desired_table, actual):
        svc = op.service
        if op.kind == "del_service":
            n = len(svc.dests)
            out.append(
                f"extra service in the kernel: {svc.label()} ({svc.scheduler}, {n} real server"
                f"{'s' if n != 1 else ''}) is not in the desired state"
            )
        elif op.kind == "add_service":
            out.append(f"missing service: {svc.label()} is desired but not in the kernel")
        elif op.kind == "set_service":
            out.append(f"service {svc.label()}: {_fields(op.old, svc, SERVICE_FIELDS)}")
        elif op.kind == "del_dest":
            d: Dest = op.dest
            out.append(
                f"extra real server in the kernel: {dest_label(d)} in {svc.label()} "
                f"({d.fwd}, weight {d.weight}) is not in the desired state"
            )
        elif op.kind == "add_dest":
            out.append(f"missing real server: {dest_label(op.dest)} in {svc.label()} is not in the kernel")
        elif op.kind == "set_dest":
            out.append(
                f"real server {dest_label(op.dest)} in {svc.label()}: {_fields(op.old, op.dest, DEST_FIELDS)}"
            )
    return out
