"""The O(changed) path in a real kernel: flips and admin changes patched one service at a time leave the IPVS
table exactly as a full reconcile would, and the agent's index of it stays the kernel's - also when the kernel
refuses an operation or someone changed the table by hand (the host re-reads it and converges).

The random tables and change sequences are the unit tier's (tests/unit/test_ipvs_incremental.py); here
they run against the guest's kernel, including 192.168.1.1, the director's own LAN address, which the
kernel turns into a "local" destination.
"""

from __future__ import annotations

import dataclasses
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings

from director import keys
from director.desired import DesiredState, RealSpec, ServiceSpec
from director.host import Host, kernel_table
from director.ipvs.plan import diff
from tests.unit.test_ipvs_incremental import change, same_table, specs, steps

pytestmark = pytest.mark.kernel


def by_key(services):
    return {s.key: s for s in services}


def settled(host: Host, state: DesiredState, health: dict) -> None:
    """The kernel holds what a full rebuild says, and the host's index says what the kernel holds."""
    kernel = host.wire.dump()
    assert diff(kernel_table(state, health, dict(host.quorum)), kernel) == []
    assert same_table(by_key(kernel), host.reconciler.known)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(first=specs, sequence=steps)
def test_patched_flips_and_admin_changes_leave_the_kernel_as_a_full_reconcile_would(wire, first, sequence):
    state = DesiredState(director="lab", revision=1, ip_forward=False, services=tuple(first))
    health: dict = {}
    host = Host()
    try:
        assert host.reconcile(state, health, (), None, full=True)["errors"] == []
        settled(host, state, health)
        for step in sequence:
            state, health, touched = change(state, health, step)
            result = host.reconcile(state, health, (), None, services=touched)
            if result["errors"]:  # refused (lower threshold > upper): re-read, the index was dropped
                assert host.reconciler.known is None
                continue
            settled(host, state, health)
        # a fresh host that dumps the kernel and diffs the whole table finds nothing left to do
        fresh = Host()
        fresh.quorum = dict(host.quorum)
        again = fresh.reconcile(state, health, (), None, full=True)
        fresh.wire.close()
        refused = any(r.l_threshold > r.u_threshold for s in state.services for r in s.reals)
        assert again["ops"] == 0 or refused
    finally:
        host.reconcile(dataclasses.replace(state, services=()), {}, (), None, full=True)
        host.wire.close()


def two_services():
    web = ServiceSpec(
        "tcp", "10.9.0.1", 80, reals=(RealSpec("192.168.1.4", 80, weight=3), RealSpec("192.168.1.5", 80))
    )
    mail = ServiceSpec("tcp", "10.9.0.2", 25, reals=(RealSpec("192.168.1.4", 25, weight=2),))
    return DesiredState(director="lab", revision=1, ip_forward=False, services=(web, mail))


def test_a_flip_into_a_service_deleted_by_hand_re_reads_the_kernel_and_puts_it_back(wire):
    state, health = two_services(), {}
    web = state.services[0]
    host = Host()
    try:
        assert host.reconcile(state, health, (), None, full=True)["errors"] == []
        subprocess.run(["ipvsadm", "-D", "-t", "10.9.0.1:80"], check=True, timeout=20)
        health[keys.dest_id(keys.service_key_for(web), "192.168.1.4", 80)] = False
        result = host.reconcile(state, health, (), None, services=[web])
        assert result["errors"] == [] and result["ops"] == 3  # the set is refused; then service + 2 dests
        settled(host, state, health)
        assert {d.address: d.weight for d in by_key(wire.dump())[("tcp", "10.9.0.1", 80)].dests} == {
            "192.168.1.4": 0,
            "192.168.1.5": 1,
        }
    finally:
        host.wire.close()


def test_a_refused_admin_change_keeps_what_was_applied_and_the_next_patch_starts_from_the_kernel(wire):
    state, health = two_services(), {}
    web, mail = state.services
    host = Host()
    try:
        assert host.reconcile(state, health, (), None, full=True)["errors"] == []
        heavier = dataclasses.replace(web, reals=(RealSpec("192.168.1.4", 80, weight=9), web.reals[1]))
        bad = dataclasses.replace(mail, reals=(RealSpec("192.168.1.4", 25, u_threshold=1, l_threshold=5),))
        broken = dataclasses.replace(state, revision=2, services=(heavier, bad))
        result = host.reconcile(broken, health, (), None, services=[heavier, bad])
        assert result["errors"] and "192.168.1.4:25" in result["errors"][0]
        assert host.reconciler.known is None  # never a half-applied index
        kernel = by_key(wire.dump())
        assert {d.address: d.weight for d in kernel[("tcp", "10.9.0.1", 80)].dests}["192.168.1.4"] == 9
        assert kernel[("tcp", "10.9.0.2", 25)].dests[0].weight == 2  # the refused change left it as it was
        fixed = dataclasses.replace(broken, revision=3, services=(heavier, mail))
        assert host.reconcile(fixed, health, (), None, services=[mail]) == {"ops": 0, "errors": []}
        settled(host, fixed, health)
    finally:
        host.wire.close()
