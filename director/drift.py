"""Drift: how the kernel differs from what the agent last applied - e.g. someone ran ipvsadm by hand.

The differences are exactly the operations a reconcile would perform (plan.diff), each told by the one
operation describer (ipvs/ops.py) after what it means for the kernel: an entry missing from it, an extra one in
it, or one it holds with other settings.
"""

from __future__ import annotations

from .ipvs.model import Service
from .ipvs.plan import diff

WHAT = {"add": "missing from the kernel", "del": "extra in the kernel", "set": "changed in the kernel"}


def report(desired_table: list[Service], actual: list[Service]) -> list[str]:
    """Human-readable differences, one line each ('extra in the kernel, a reconcile would delete ...');
    [] when the kernel matches."""
    return [f"{WHAT[op.kind[:3]]}, a reconcile would {op}" for op in diff(desired_table, actual)]
