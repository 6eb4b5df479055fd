"""What the kernel should hold, from the operator's wishes (admin state) and what checks observed (health).

Pure functions, so the rules that decide a real server's fate are tested without a kernel:

=============  ===========  ===========================================
admin state    health       in the kernel
=============  ===========  ===========================================
maintenance    any          absent
draining       any          weight 0 (established connections continue)
active         up/unknown   configured weight (unknown counts as failed with `start_down`, keepalived's alpha)
active         down         weight 0 if quiescent (the real's own setting, else the service's), else absent
=============  ===========  ===========================================

The fallback ("sorry") server follows the daemon the service came from (`CheckSpec.fallback_rule`):

* ``ldirectord``: added with weight 1 while no active real server passes its check, removed as soon as one
  does. A passing real server with weight 0 counts as passing (ldirectord's real_status does not look at
  weights), so it keeps the fallback out although nothing can take new connections.
* ``keepalived``: quorum on the *live weight* (sum of the configured weights of active, passing real servers),
  with hysteresis: lost when the live weight is 0 or below quorum - hysteresis, regained at quorum +
  hysteresis or more. While it is lost and a sorry server is configured, the sorry server (weight 1) replaces
  the live real servers (failed ones stay quiesced at weight 0 if they were); without a sorry server losing
  quorum changes nothing in the table.

checktype=off leaves the service empty (ldirectord adds neither real nor fallback servers then).
Hysteresis needs the previous verdict: `quorum_up` takes it and returns the new one; the host keeps it.
The kernel port of a gate/ipip destination is the virtual port whatever the configuration says
(ipvs/model.py real_port), so a fallback written with its own port behaves as under ldirectord.
"""

from __future__ import annotations

from .desired import RealSpec, ServiceSpec


def health_of(spec: ServiceSpec, up: bool | None) -> bool | None:
    """Observed health with the service's starting assumption applied to a real not checked yet."""
    if up is None and spec.check.start_down:
        return False
    return up


def real_weight(real: RealSpec, up: bool | None, quiescent: bool) -> int | None:
    """Kernel weight for one real server, or None when it must not be in the table."""
    if real.admin_state == "maintenance":
        return None
    if real.admin_state == "draining":
        return 0
    if up is False:
        quiet = quiescent if real.quiescent is None else real.quiescent
        return 0 if quiet else None
    return int(real.weight)


def passing(spec: ServiceSpec, real: RealSpec, health: dict) -> bool:
    """An active real server whose check passes (or has not run yet, unless the service starts down)."""
    return real.admin_state == "active" and health_of(spec, health.get(real.key)) is not False


def live_weight(spec: ServiceSpec, health: dict) -> int:
    """keepalived's weigh_live_realservers: the configured weights of the passing real servers."""
    return sum(int(r.weight) for r in spec.reals if passing(spec, r, health))


def quorum_up(spec: ServiceSpec, health: dict, was: bool | None) -> bool:
    """keepalived's update_quorum_state: the new quorum verdict from the live weight and the previous one."""
    weight = live_weight(spec, health)
    quorum, hysteresis = int(spec.check.quorum), int(spec.check.hysteresis)
    if was is None:  # keepalived starts with quorum down unless the weight already clears the upper bound
        return weight > 0 and weight >= quorum + hysteresis
    if was:
        return not (weight == 0 or weight < quorum - hysteresis)
    return weight > 0 and weight >= quorum + hysteresis


def kernel_reals(spec: ServiceSpec, health: dict, quorum: bool | None = None) -> list[tuple[RealSpec, int]]:
    """The (real, weight) pairs the kernel should hold for `spec`; health maps real.key -> True/False/None.

    `quorum` is the service's quorum verdict (`quorum_up`) for the keepalived rule; None computes it afresh.
    """
    if spec.check.checktype == "off":
        return []  # ldirectord's "checking off": no real or fallback server is added, quiescent or not
    out = []
    for real in spec.reals:
        weight = real_weight(real, health_of(spec, health.get(real.key)), spec.check.quiescent)
        if weight is not None:
            out.append((real, weight))
    sorry = spec.fallback
    if sorry is None:
        return out
    if spec.check.fallback_rule == "keepalived":
        if quorum is None:
            quorum = quorum_up(spec, health, None)
        if quorum:
            return out
        # the sorry server replaces the live ones; quiesced failed servers stay at 0
        out = [(r, w) for r, w in out if not passing(spec, r, health) and r.admin_state == "active"]
    elif any(passing(spec, r, health) for r in spec.reals):
        return out
    if all(sorry.key != r.key for r, _ in out):
        out.append((sorry, 1))
    return out
