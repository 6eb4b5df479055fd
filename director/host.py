"""The director host: the IPVS table, the VIPs, ip_forward, masquerade and the IPVS sync daemons.

The one part of the agent that changes the kernel. It has no opinion about roles: the caller says which VIPs to
hold and which sync daemons to run (in a pair, the pair part decides that), so the pair protocol can be
replaced without touching how the kernel is programmed. Not thread-safe: the agent calls it under its lock.
"""

from __future__ import annotations

import logging

from . import conntable, keys, netfilter, policy, sysctl, vip
from .desired import DesiredState
from .ipvs import model as ipvs_model
from .ipvs import plan as ipvs_plan
from .ipvs import wire as ipvs_wire

log = logging.getLogger(__name__)

Sync = tuple[str, int]  # (WAN interface, sync id) of the IPVS connection sync daemons


def kernel_table(
    state: DesiredState | None, health: dict[str, bool | None], quorum: dict | None = None
) -> list[ipvs_model.Service]:
    """Desired kernel services with their dests, from desired state and health (policy.py decides weights).

    `quorum` (service id -> last verdict) is the memory keepalived's hysteresis needs; it is updated in place
    (the same inputs give the same verdict again, so a second call for a drift check changes nothing).
    """
    memory = {} if quorum is None else quorum
    return [kernel_service(spec, health, memory) for spec in (state.services if state else ())]


def kernel_service(spec, health: dict[str, bool | None], quorum: dict) -> ipvs_model.Service:
    """One desired kernel service from its spec and health: what a flip or an admin change recomputes.

    Only the service's own reals and its quorum verdict (updated in `quorum`) go in, so the cost is the
    service's size, not the table's."""
    sid = keys.service_key_for(spec)
    by_real = {r.key: health.get(keys.dest_id(sid, r.address, r.port)) for r in spec.reals}
    quorum[sid] = verdict = policy.quorum_up(spec, by_real, quorum.get(sid))
    return ipvs_model.service_from_spec(spec, policy.kernel_reals(spec, by_real, verdict))


class Host:
    """Makes this director's kernel match a desired state, touching only what changed."""

    def __init__(self, netns: str | None = None):
        self.netns = netns
        self.wire = ipvs_wire.Wire(netns=netns) if netns else ipvs_wire.Wire()
        # remembers the kernel table it last left, so a drain or a flip costs its own ops, not a full dump
        # (a full dump still happens on start, after an error, and at least once a minute)
        self.reconciler = ipvs_plan.Reconciler(self.wire, full_every=60.0)
        self._applied: tuple | None = None  # host settings last applied without error
        self.quorum: dict = {}  # service id -> keepalived quorum verdict (policy.quorum_up's memory)

    def reconcile(
        self,
        state: DesiredState,
        health: dict[str, bool | None],
        vips: tuple[str, ...],
        sync: Sync | None,
        force_host: bool = False,
        full: bool = False,
        services=None,
    ) -> dict:
        """Make the kernel match; returns {"ops": n, "errors": [...]}.

        `services` (specs of `state`, in the state's order) names the only services whose policy may have
        changed - a health flip's, an admin change's: then only those are recomputed, diffed against the
        known kernel table and changed (Reconciler.patch), O(changed); in the state's order, the ops are
        exactly those of the full diff (tests/unit/test_ipvs_incremental.py). Without it, or when the known
        table is not to be trusted (none yet, an op failed), the whole table is rebuilt and diffed, and on
        an error the kernel is re-read and the diff applied again; when the periodic full reconcile is due,
        it follows the patch.

        The host settings (ip_forward, VIPs, masquerade, sync daemons) are only touched when they changed since
        the last successful apply, or when forced (agent start): a drain click must cost one netlink diff, not
        an nft run. A failing host setting is reported and the IPVS part still goes ahead.
        """
        errors: list[str] = []
        ops = 0
        host = (state.ip_forward, state.wan_interface, vips, state.masquerade, sync)
        if force_host or host != self._applied:
            host_errors = []
            for label, fn in (
                (
                    "ip_forward",
                    lambda: sysctl.set_ip_forward(True, netns=self.netns) if state.ip_forward else None,
                ),
                ("vips", lambda: vip.ensure(state.wan_interface, list(vips), netns=self.netns)),
                (
                    "masquerade",
                    lambda: netfilter.ensure_masquerade(
                        state.wan_interface, list(state.masquerade), netns=self.netns
                    ),
                ),
                ("sync", lambda: self.ensure_sync(*sync) if sync else None),
            ):
                if label != "ip_forward" and not state.wan_interface:
                    continue
                try:
                    fn()
                except Exception as exc:  # reported; the IPVS part still goes ahead
                    host_errors.append(f"{label}: {exc}")
            errors += host_errors
            self._applied = None if host_errors else host
        try:
            report = None
            if services is not None and not full:
                report = self.reconciler.patch(self._changed_table(health, services))
                # a refusal dropped the index: re-read, diff it all; or the periodic full one is due (it
                # comes after the patch, so the flip is in the kernel first)
                if report is not None and (report.errors or self.reconciler.due()):
                    ops += report.ops_done
                    report = None
            if report is None:
                report = self.reconciler(kernel_table(state, health, self.quorum), full=full)
            ops += report.ops_done
            errors += [str(e) for e in report.errors]
        except Exception as exc:
            log.exception("IPVS apply failed")
            errors.append(f"ipvs: {exc}")
        return {"ops": ops, "errors": errors}

    def _changed_table(self, health: dict, services) -> list[ipvs_model.Service]:
        """The desired kernel services for `services` only (each once), in the order given."""
        seen: set[tuple] = set()
        out = []
        for spec in services:
            if spec.key not in seen:
                seen.add(spec.key)
                out.append(kernel_service(spec, health, self.quorum))
        return out

    def ensure_sync(self, wan: str, sync_id: int) -> None:
        """Both IPVS sync daemons on both directors of a pair, whatever the role: the MASTER's master daemon
        multicasts its connections on the WAN, the BACKUP's backup daemon keeps a copy, so a new MASTER finds
        the established connections already in its table. A BACKUP's master daemon has nothing to send, and
        not switching daemons (kernel threads) on a role change keeps that work off the takeover's path."""
        running = self.wire.daemons()
        for role in ("master", "backup"):
            current = running.get(role)
            if current == {"ifname": wan, "sync_id": sync_id}:
                continue
            if current:
                self.wire.stop_daemon(role)
            self.wire.start_daemon(role, wan, sync_id)

    def dump(self) -> list[ipvs_model.Service]:
        """The kernel's IPVS table with counters (one netlink dump)."""
        return self.wire.dump()

    def conntable(
        self,
        service: str | None = None,
        client: str = "",
        real: str = "",
        state: str = "",
        port: int | None = None,
        limit: int = conntable.DEFAULT_LIMIT,
    ) -> dict:
        """The connection table in this director's namespace (conntable.query; bounded by its READ_MAX)."""
        return conntable.query(
            service=service, client=client, real=real, state=state, port=port, limit=limit, netns=self.netns
        )
