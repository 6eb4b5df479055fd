"""The O(changed) path (a flip or an admin change patches only its services) against the full diff.

For random tables and random sequences of health flips and admin changes, a host that patches only the
touched services must send the kernel exactly the operations, in the same order, that a host rebuilding and
diffing the whole table sends, and its index of the kernel table must stay equal to what the kernel holds -
also after the kernel refused an operation (then it re-reads the kernel and converges like the full path).
"""

from __future__ import annotations

import dataclasses

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from director import keys
from director.desired import CheckSpec, DesiredState, RealSpec, ServiceSpec
from director.host import Host, kernel_table
from director.ipvs.model import Dest, Service
from director.ipvs.plan import Reconciler, advance, diff, diff_some

from .fakekernel import MemoryKernel


class RecordingKernel(MemoryKernel):
    """A memory kernel with the wire's batch `apply`, recording every operation it is sent, in order."""

    def __init__(self):
        super().__init__()
        self.sent: list = []

    def apply(self, ops):
        results = []
        for op in ops:
            self.sent.append(op)
            try:
                getattr(self, op.kind)(*([op.service] if op.dest is None else [op.service, op.dest]))
                results.append(None)
            except OSError as exc:
                results.append(exc)
        return results


def host_on(kernel: RecordingKernel) -> Host:
    host = Host()
    host.wire.close()
    host.wire = kernel
    host.reconciler = Reconciler(kernel, full_every=3600)
    return host


def table_of(services) -> dict:
    """What decides equality with the kernel: service settings and each dest's settings, by key."""
    return {
        s.key: (s.settings(), {d.key: d.settings() for d in s.dests})
        for s in (services.values() if isinstance(services, dict) else services)
    }


def same_table(kernel: dict, index: dict) -> bool:
    """The index describes the kernel: same services and settings, same dests; where either says "local"
    (a real kernel rewrites any method to it for the director's own address, and the index keeps it once
    read), weight and thresholds agree."""

    def dests(svc, local_as_any):
        return {d.key: d.settings()[1:4] if d.key in local_as_any else d.settings() for d in svc.dests}

    if kernel.keys() != index.keys():
        return False
    for key, svc in index.items():
        have = kernel[key]
        local = {d.key for d in svc.dests + have.dests if d.fwd == "local"}
        if have.settings() != svc.settings() or dests(have, local) != dests(svc, local):
            return False
    return True


# -- plan level ------------------------------------------------------------------------------------------

dests = st.lists(
    st.builds(
        Dest,
        address=st.sampled_from([f"192.168.1.{i}" for i in range(1, 7)] + ["2001:db8::5"]),
        port=st.sampled_from([80, 8080]),
        fwd=st.sampled_from(["masq", "gate", "ipip", "local"]),
        weight=st.integers(0, 4),
        u_threshold=st.sampled_from([0, 10]),
    ),
    max_size=6,
    unique_by=lambda d: d.key,  # the kernel holds one dest per (address, port)
)
services = st.lists(
    st.builds(
        Service,
        protocol=st.just("tcp"),
        address=st.sampled_from([f"10.0.0.{i}" for i in range(1, 9)]),
        port=st.sampled_from([80, 443]),
        scheduler=st.sampled_from(["wlc", "rr", "sh"]),
        timeout=st.sampled_from([0, 300]),
        dests=dests,
    ),
    max_size=8,
    unique_by=lambda s: s.key,
)


@settings(max_examples=200, deadline=None)
@given(known=services, data=st.data())
def test_it_patches_with_exactly_the_ops_of_the_full_diff(known, data):
    """Change some services of the known table (any way: dests added, removed, reweighted, settings); the
    patch of just those gives the full diff's ops, in order, and advancing the index by them gives what a
    kernel holds after them."""
    desired = list(known)
    touched = set()
    for _ in range(data.draw(st.integers(0, 4))):
        if not desired:
            break
        i = data.draw(st.integers(0, len(desired) - 1))
        new = data.draw(services.filter(bool))[0]
        desired[i] = dataclasses.replace(
            new, protocol=desired[i].protocol, address=desired[i].address, port=desired[i].port
        )
        touched.add(i)
    index = {s.key: s for s in known}
    patch = [desired[i] for i in sorted(touched)]
    ops = diff_some(patch, index)
    assert ops == diff(desired, known)
    kernel = RecordingKernel()
    kernel.table = dict(index)
    kernel.apply(ops)
    after = dict(index)
    for key, svc in advance(index, ops).items():
        if svc is None:
            after.pop(key, None)
        else:
            after[key] = svc
    assert same_table(kernel.table, after)


def test_advance_keeps_a_local_dest_local_and_its_counters():
    """The kernel rewrites any method to "local" for one of the director's own addresses: a weight change
    does not make the index believe otherwise."""
    local = Dest("192.168.1.1", 80, fwd="local", weight=1)
    svc = Service("tcp", "10.0.0.1", 80, dests=(local,))
    want = Service("tcp", "10.0.0.1", 80, dests=(Dest("192.168.1.1", 80, fwd="masq", weight=3),))
    ops = diff([want], [svc])
    assert [op.kind for op in ops] == ["set_dest"]
    assert advance({svc.key: svc}, ops)[svc.key].dests[0] == Dest("192.168.1.1", 80, fwd="local", weight=3)


# -- host level: policy + plan, flips and admin changes -------------------------------------------------

ADDRESSES = [f"192.168.1.{i}" for i in range(1, 8)]
reals = st.lists(
    st.builds(
        RealSpec,
        address=st.sampled_from(ADDRESSES),
        port=st.just(80),
        forwarding=st.sampled_from(["masq", "gate"]),
        weight=st.integers(0, 5),
        admin_state=st.sampled_from(["active", "active", "draining", "maintenance"]),
        quiescent=st.sampled_from([None, True, False]),
    ),
    max_size=5,
    unique_by=lambda r: r.address,
)
checks = st.builds(
    CheckSpec,
    checktype=st.sampled_from(["connect", "connect", "connect", "off"]),
    quiescent=st.booleans(),
    quorum=st.integers(1, 6),
    hysteresis=st.integers(0, 2),
    fallback_rule=st.sampled_from(["ldirectord", "keepalived"]),
    start_down=st.booleans(),
)
specs = st.lists(
    st.builds(
        ServiceSpec,
        protocol=st.just("tcp"),
        address=st.sampled_from([f"10.0.0.{i}" for i in range(1, 7)]),
        port=st.just(80),
        scheduler=st.sampled_from(["wlc", "rr"]),
        check=checks,
        fallback=st.one_of(st.none(), st.just(RealSpec("192.168.9.9", 80))),
        reals=reals,
    ),
    min_size=1,
    max_size=6,
    unique_by=lambda s: s.address,
)
steps = st.lists(
    st.tuples(
        st.sampled_from(["flip", "flip", "flip", "weight", "admin", "add", "remove", "refused", "burst"]),
        st.integers(0, 5),
        st.integers(0, 6),
        st.sampled_from([True, False, None]),
        st.integers(0, 5),
    ),
    min_size=1,
    max_size=25,
)


def change(state, health, step):
    """Apply one step to (state, health); returns the new state, the new health and the touched specs."""
    kind, si, ri, up, n = step
    svcs = list(state.services)
    si %= len(svcs)
    spec = svcs[si]
    sid = keys.service_key_for(spec)
    health = dict(health)
    if kind in ("flip", "burst"):
        touched = []
        for j, target in enumerate(svcs if kind == "burst" else [spec]):
            if target.reals:
                real = target.reals[(ri + j) % len(target.reals)]
                health[keys.dest_id(keys.service_key_for(target), real.address, real.port)] = up
                touched.append(target)
        return state, health, touched
    reals_ = list(spec.reals)
    if kind == "add":
        free = [a for a in ADDRESSES if all(r.address != a for r in reals_)]
        if free:
            reals_.append(RealSpec(free[ri % len(free)], 80, weight=n))
    elif reals_:
        r = ri % len(reals_)
        if kind == "weight":
            reals_[r] = dataclasses.replace(reals_[r], weight=n)
        elif kind == "admin":
            reals_[r] = dataclasses.replace(
                reals_[r], admin_state=["active", "draining", "maintenance"][n % 3]
            )
        elif kind == "remove":
            health.pop(keys.dest_id(sid, reals_[r].address, reals_[r].port), None)
            del reals_[r]
        elif kind == "refused":  # the kernel refuses lower > upper threshold (the memory kernel does)
            reals_[r] = dataclasses.replace(reals_[r], u_threshold=1, l_threshold=2, admin_state="active")
    svcs[si] = dataclasses.replace(spec, reals=tuple(reals_))
    return dataclasses.replace(state, revision=state.revision + 1, services=tuple(svcs)), health, [svcs[si]]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=specs, sequence=steps)
def test_flips_and_admin_changes_patched_send_the_full_reconciles_ops(first, sequence):
    state = DesiredState(director="d1", revision=1, ip_forward=False, services=tuple(first))
    health: dict = {}
    patched, rebuilt = RecordingKernel(), RecordingKernel()
    fast, full = host_on(patched), host_on(rebuilt)
    assert fast.reconcile(state, health, (), None, full=True) == full.reconcile(
        state, health, (), None, full=True
    )
    for step in sequence:
        state, health, touched = change(state, health, step)
        patched.sent.clear()
        rebuilt.sent.clear()
        a = fast.reconcile(state, health, (), None, services=touched)
        b = full.reconcile(state, health, (), None)
        assert table_of(patched.table) == table_of(rebuilt.table)
        assert bool(a["errors"]) == bool(b["errors"])
        if not a["errors"]:
            assert patched.sent == rebuilt.sent  # the same operations, in the same order
            assert table_of(fast.reconciler.known) == table_of(patched.table)  # index == kernel
        else:
            assert fast.reconciler.known is None  # a refusal: the next call re-reads the kernel
        assert fast.quorum == full.quorum
    expected = kernel_table(state, health, dict(full.quorum))
    assert diff(expected, list(patched.table.values())) == [] or any(
        d.l_threshold > d.u_threshold for s in expected for d in s.dests
    )


def test_a_refused_patch_re_reads_the_kernel_and_leaves_nothing_half_applied():
    """Two changes in one patch, the second refused: the first stays, the index is dropped, the full
    reconcile that follows re-reads the kernel and the next patch starts from the kernel's own table."""
    good = ServiceSpec("tcp", "10.0.0.1", 80, reals=(RealSpec("192.168.1.1", 80, weight=1),))
    other = ServiceSpec("tcp", "10.0.0.2", 80, reals=(RealSpec("192.168.1.2", 80, weight=1),))
    state = DesiredState(director="d1", revision=1, ip_forward=False, services=(good, other))
    kernel = RecordingKernel()
    host = host_on(kernel)
    assert host.reconcile(state, {}, (), None, full=True)["errors"] == []
    dumps = kernel.dumps
    good2 = dataclasses.replace(good, reals=(RealSpec("192.168.1.1", 80, weight=7),))
    bad = dataclasses.replace(other, reals=(RealSpec("192.168.1.2", 80, u_threshold=1, l_threshold=2),))
    state2 = dataclasses.replace(state, revision=2, services=(good2, bad))
    result = host.reconcile(state2, {}, (), None, services=[good2, bad])
    assert result["errors"] and "192.168.1.2" in result["errors"][0]
    assert kernel.dumps > dumps  # re-read
    assert kernel.table[("tcp", "10.0.0.1", 80)].dests[0].weight == 7
    assert host.reconciler.known is None
    fixed = dataclasses.replace(state2, revision=3, services=(good2, other))
    assert host.reconcile(fixed, {}, (), None, services=[other])["errors"] == []
    assert table_of(host.reconciler.known) == table_of(kernel.table)


def test_when_the_periodic_full_reconcile_is_due_the_flip_goes_first_and_the_kernel_is_read_after():
    web = ServiceSpec("tcp", "10.0.0.1", 80, reals=(RealSpec("192.168.1.1", 80), RealSpec("192.168.1.2", 80)))
    state = DesiredState(director="d1", revision=1, ip_forward=False, services=(web,))
    kernel, now = RecordingKernel(), [0.0]
    host = host_on(kernel)
    host.reconciler = Reconciler(kernel, full_every=60, clock=lambda: now[0])
    assert host.reconcile(state, {}, (), None, full=True)["errors"] == []
    dumps = kernel.dumps
    kernel.sent.clear()
    health = {keys.dest_id(keys.service_key_for(web), "192.168.1.2", 80): False}
    now[0] = 30.0
    assert host.reconcile(state, health, (), None, services=[web]) == {"ops": 1, "errors": []}
    assert kernel.dumps == dumps  # within the period: no dump
    stray = Service("udp", "10.0.0.9", 53)
    kernel.table[stray.key] = stray  # made by hand: no patch runs into it, only a dump finds it
    health[keys.dest_id(keys.service_key_for(web), "192.168.1.1", 80)] = False
    now[0] = 61.0
    assert host.reconcile(state, health, (), None, services=[web]) == {"ops": 2, "errors": []}
    assert [(op.kind, op.service.key) for op in kernel.sent[1:]] == [
        ("set_dest", web.key),  # the flip first
        ("del_service", stray.key),  # then the periodic full reconcile
    ]
    assert kernel.dumps == dumps + 2  # the full reconcile: a dump before, a re-read after
