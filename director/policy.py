"""What the kernel should hold, from the operator's wishes (admin state) and what checks observed (health).

Pure functions, so the rules that decide a real server's fate are tested without a kernel:

=============  ===========  ===========================================
admin state    health       in the kernel
=============  ===========  ===========================================
maintenance    any          absent
draining       any          weight 0 (established connections continue)
active         up/unknown   configured weight
active         down         weight 0 if quiescent, else absent
=============  ===========  ===========================================

The fallback ("sorry") server is added with weight 1 only while no real server can take new connections,
and removed as soon as one can - the ldirectord behaviour.
"""

from __future__ import annotations

from .desired import RealSpec, ServiceSpec


def real_weight(real: RealSpec, up: bool | None, quiescent: bool) -> int | None:
    """Kernel weight for one real server, or None when it must not be in the table."""
    if real.admin_state == "maintenance":
        return None
    if real.admin_state == "draining":
        return 0
    if up is False:
        return 0 if quiescent else None
    return int(real.weight)


def kernel_reals(spec: ServiceSpec, health: dict) -> list[tuple[RealSpec, int]]:
    """The (real, weight) pairs the kernel should hold for `spec`; health maps real.key -> True/False/None."""
    out = []
    for real in spec.reals:
        weight = real_weight(real, health.get(real.key), spec.check.quiescent)
        if weight is not None:
            out.append((real, weight))
    if spec.fallback is not None and not any(w > 0 for _, w in out):
        if all(spec.fallback.key != r.key for r, _ in out):
            out.append((spec.fallback, 1))
    return out
