"""The pure diff (ordering, set-not-replace, no flush), reconcile against an in-memory kernel, the model."""

from __future__ import annotations

import dataclasses

import pytest

from director import keys
from director.desired import RealSpec, ServiceSpec
from director.ipvs import model
from director.ipvs.model import Dest, Service, Stats
from director.ipvs.plan import diff, reconcile

from .fakekernel import MemoryKernel

RS1 = Dest("192.168.1.4", 80, weight=1)
RS2 = Dest("192.168.1.5", 80, weight=1)
WEB = Service("tcp", "172.16.10.52", 80, scheduler="rr", dests=(RS1, RS2))
DNS = Service("udp", "172.16.10.53", 53, scheduler="wlc", dests=(Dest("192.168.1.4", 53),))


def kinds(ops):
    return [op.kind for op in ops]


def with_dests(svc, *dests):
    return dataclasses.replace(svc, dests=tuple(dests))


def test_it_builds_an_empty_kernel_with_services_first_then_their_dests():
    ops = diff([WEB, DNS], [])
    assert kinds(ops) == ["add_service", "add_service", "add_dest", "add_dest", "add_dest"]


def test_it_does_nothing_when_the_kernel_already_matches():
    actual = [dataclasses.replace(WEB, stats=Stats(conns=5)), DNS]
    assert diff([WEB, DNS], actual) == []


def test_it_changes_a_weight_with_one_set_and_never_delete_and_add():
    changed = with_dests(WEB, dataclasses.replace(RS1, weight=0), RS2)
    ops = diff([changed], [WEB])
    assert kinds(ops) == ["set_dest"]
    assert ops[0].dest.weight == 0
    assert str(ops[0]) == "set real 192.168.1.4:80 in TCP 172.16.10.52:80: weight 1 -> 0"


@pytest.mark.parametrize(
    "change",
    [
        {"fwd": "gate"},
        {"u_threshold": 100, "l_threshold": 10},
        {"weight": 65535},
    ],
)
def test_it_sets_forwarding_thresholds_and_weights_in_place(change):
    ops = diff([with_dests(WEB, dataclasses.replace(RS1, **change), RS2)], [WEB])
    assert kinds(ops) == ["set_dest"]


@pytest.mark.parametrize(
    "change",
    [{"scheduler": "wrr"}, {"flags": ("sh-port",)}, {"timeout": 300}, {"netmask": "255.255.255.0"}],
)
def test_it_sets_service_settings_in_place(change):
    ops = diff([dataclasses.replace(WEB, **change)], [WEB])
    assert kinds(ops) == ["set_service"]


def test_a_new_real_server_address_is_added_before_the_old_one_is_removed():
    rs3 = Dest("192.168.1.6", 80)
    ops = diff([with_dests(WEB, rs3, RS2)], [WEB])
    assert kinds(ops) == ["add_dest", "del_dest"]
    assert (ops[0].dest, ops[1].dest) == (rs3, RS1)


def test_a_real_server_moving_from_ipv4_to_ipv6_is_a_new_dest():
    v6 = Dest("2001:db8::4", 80, fwd="ipip")
    ops = diff([with_dests(WEB, v6, RS2)], [WEB])
    assert kinds(ops) == ["add_dest", "del_dest"]


def test_it_deletes_services_and_dests_the_desired_table_does_not_name_and_never_flushes():
    stray = Service("tcp", "172.16.10.52", 443, dests=(RS1,))
    ops = diff([with_dests(WEB, RS1)], [WEB, stray, DNS])
    assert kinds(ops) == ["del_dest", "del_service", "del_service"]
    assert {op.service.key for op in ops if op.kind == "del_service"} == {stray.key, DNS.key}
    assert "flush" not in {op.kind for op in diff([], [WEB, DNS])}


def test_it_orders_every_kind_so_capacity_arrives_before_it_leaves():
    new = Service("tcp", "172.16.10.54", 80, dests=(RS1,))
    web = dataclasses.replace(
        WEB,
        scheduler="wlc",
        dests=(
            dataclasses.replace(RS1, weight=0),
            Dest("192.168.1.6", 80),
            dataclasses.replace(RS2, weight=9),
        ),
    )
    actual = [with_dests(WEB, RS1, RS2, Dest("192.168.1.7", 80)), DNS]
    ops = diff([new, web], actual)
    assert kinds(ops) == [
        "add_service",
        "add_dest",  # new's RS1
        "add_dest",  # 192.168.1.6
        "set_dest",  # RS2 9: increases first
        "set_dest",  # RS1 0: decreases after
        "del_dest",  # 192.168.1.7
        "set_service",  # scheduler
        "del_service",  # DNS
    ]
    assert ops[3].dest.weight == 9 and ops[4].dest.weight == 0


def test_a_dest_the_kernel_reports_as_local_matches_the_desired_forwarding():
    local = dataclasses.replace(RS1, fwd="local")
    assert diff([WEB], [with_dests(WEB, local, RS2)]) == []
    assert kinds(diff([WEB], [with_dests(WEB, dataclasses.replace(local, weight=3), RS2)])) == ["set_dest"]


def test_fwmark_services_are_keyed_by_family_and_mark():
    v4 = Service("fwmark", fwmark=1, family=4, dests=(RS1,))
    v6 = Service("fwmark", fwmark=1, family=6, dests=(Dest("2001:db8::4", 0),))
    assert kinds(diff([v4, v6], [v4])) == ["add_service", "add_dest"]


# ---- reconcile against an in-memory kernel --------------------------------------------------------------


def test_reconcile_applies_rereads_and_a_second_run_does_nothing():
    kernel = MemoryKernel([Service("tcp", "172.16.10.52", 8080)])
    first = reconcile(kernel, [WEB, DNS])
    assert first.errors == [] and first.ops_done == 6
    assert sorted(s.key for s in first.actual) == sorted([WEB.key, DNS.key])
    second = reconcile(kernel, [WEB, DNS])
    assert second.ops_done == 0 and second.ops == [] and second.errors == []


def test_reconcile_reports_a_refused_op_and_applies_the_rest():
    bad = Dest("192.168.1.6", 80, u_threshold=1, l_threshold=5)
    kernel = MemoryKernel()
    report = reconcile(kernel, [with_dests(WEB, RS1, bad, RS2), DNS])
    assert report.ops_done == 5
    assert [str(e) for e in report.errors] == [
        "add real 192.168.1.6:80 in TCP 172.16.10.52:80 (masq, weight 1, thresholds 5..1): "
        "Numerical result out of range (errno 34)"
    ]
    assert {d.key for d in kernel.table[WEB.key].dests} == {RS1.key, RS2.key}
    assert kernel.table[DNS.key].dests


def test_reconcile_uses_a_wire_batch_apply_when_there_is_one():
    class Batching(MemoryKernel):
        def apply(self, ops):
            out = []
            for op in ops:
                try:
                    getattr(self, op.kind)(*([op.service] if op.dest is None else [op.service, op.dest]))
                    out.append(None)
                except OSError as exc:
                    out.append(exc)
            return out

    kernel = Batching()
    report = reconcile(kernel, [WEB, dataclasses.replace(DNS, scheduler="nope")])
    assert report.ops_done == 3 and len(report.errors) == 2  # the service and its dest
    assert str(report.errors[0]).startswith("add service UDP 172.16.10.53:53 (nope): ")


def test_reconcile_with_a_known_actual_state_skips_the_first_dump():
    kernel = MemoryKernel([WEB])
    changed = with_dests(WEB, dataclasses.replace(RS1, weight=7), RS2)
    report = reconcile(kernel, [changed], actual=[WEB])
    assert kernel.calls == ["set_dest"] and kernel.dumps == 1  # the re-read only
    assert report.ops_done == 1


class ScopedKernel(MemoryKernel):
    def __init__(self, services=()):
        super().__init__(services)
        self.scoped = []

    def dump_services(self, service_keys):
        self.scoped.append(list(service_keys))
        return [self.table[k] for k in service_keys if k in self.table]


def test_with_a_known_state_only_the_touched_services_are_read_back():
    kernel = ScopedKernel([WEB, DNS])
    changed = with_dests(WEB, dataclasses.replace(RS1, weight=7), RS2)
    new = Service("tcp", "172.16.10.60", 80, dests=(RS1,))
    report = reconcile(kernel, [changed, new], actual=[WEB, DNS])
    assert kernel.dumps == 0
    assert sorted(kernel.scoped[0], key=str) == sorted([WEB.key, new.key, DNS.key], key=str)
    assert {s.key: s for s in report.actual} == {changed.key: changed, new.key: new}
    assert reconcile(kernel, [changed, new], actual=report.actual).ops == []


def test_a_stale_known_state_falls_back_to_a_full_dump_and_still_converges():
    kernel = ScopedKernel([WEB])
    kernel.table[WEB.key] = with_dests(WEB, RS2)  # someone deleted RS1 by hand
    wanted = with_dests(WEB, dataclasses.replace(RS1, weight=5), RS2)
    report = reconcile(kernel, [wanted], actual=[WEB])
    assert report.errors == [] and kernel.dumps == 2
    assert kernel.table[WEB.key] == wanted
    assert [op.kind for op in report.ops] == ["set_dest", "add_dest"]  # the failed set, then the fix


def test_a_reconciler_dumps_in_full_first_then_works_from_what_it_knows():
    from director.ipvs.plan import Reconciler

    now = [0.0]
    kernel = ScopedKernel()
    rec = Reconciler(kernel, full_every=60, clock=lambda: now[0])
    assert rec([WEB]).ops_done == 3 and kernel.dumps == 2  # first call: dump, apply, re-read
    changed = with_dests(WEB, dataclasses.replace(RS1, weight=0), RS2)
    assert rec([changed]).ops_done == 1 and kernel.dumps == 2  # no dump: scoped re-read only
    assert kernel.scoped[-1] == [WEB.key]
    assert rec([changed], full=True).ops_done == 0 and kernel.dumps == 3
    now[0] = 61.0
    assert rec([changed]).ops_done == 0 and kernel.dumps == 4  # periodic full dump
    bad = with_dests(WEB, Dest("192.168.1.9", 80, u_threshold=1, l_threshold=2))
    assert rec([bad]).errors and rec.known is None  # errors: the next call dumps in full again


# ---- model ----------------------------------------------------------------------------------------------


def test_service_from_spec_uses_the_service_port_for_port_zero_gate_and_ipip_and_kernel_weights():
    spec = ServiceSpec(
        "tcp",
        "172.16.10.52",
        80,
        scheduler="sh",
        flags=("sh-port", "sh-fallback"),
        persistence=300,
        reals=(RealSpec("192.168.1.4", 0, weight=5), RealSpec("192.168.1.5", 8080, "gate", u_threshold=9)),
    )
    svc = model.service_from_spec(spec, [(spec.reals[0], 0), (spec.reals[1], 3)])
    assert svc.dests == (
        Dest("192.168.1.4", 80, weight=0),
        Dest("192.168.1.5", 80, fwd="gate", weight=3, u_threshold=9),  # ipvsadm: DR/TUN get the virtual port
    )
    assert svc.flags == ("sh-fallback", "sh-port") and svc.timeout == 300 and svc.persistent
    assert svc.flag_bits == model.F_PERSISTENT | model.F_SCHED1 | model.F_SCHED2
    assert svc.netmask == "255.255.255.255"


def test_real_port_gives_spec_based_dest_ids_that_match_the_kernel_dests():
    spec = ServiceSpec(
        "tcp", "172.16.10.52", 80, reals=(RealSpec("192.168.1.4", 0), RealSpec("192.168.1.5", 81))
    )
    svc = model.service_from_spec(spec, [(r, 1) for r in spec.reals])
    sid = model.service_id_of(svc)
    from_spec = [keys.dest_id(sid, r.address, model.real_port(spec, r)) for r in spec.reals]
    assert from_spec == [model.dest_id_of(sid, d) for d in svc.dests]
    fwm = ServiceSpec("fwmark", fwmark=1, reals=(RealSpec("192.168.1.4", 0),))
    assert model.real_port(fwm, fwm.reals[0]) == 0


def test_service_from_spec_keeps_the_real_port_for_fwmark_services():
    spec = ServiceSpec("fwmark", fwmark=9, family=6, netmask="64", reals=(RealSpec("2001:db8::4", 0),))
    svc = model.service_from_spec(spec, [(spec.reals[0], 1)])
    assert svc.key == ("fwmark", 6, 9) and svc.dests[0].port == 0 and svc.netmask == "64"


def test_ids_are_the_ones_keys_py_defines():
    sid = model.service_id_of(WEB)
    assert sid == keys.service_id("tcp", "172.16.10.52", 80) == "tcp|172.16.10.52|80"
    assert model.dest_id_of(sid, RS1) == keys.dest_id(sid, "192.168.1.4", 80)
    fwm = Service("fwmark", fwmark=4, family=6)
    assert model.service_id_of(fwm) == "fwmark|6|4"


def test_flags_are_named_after_the_scheduler_and_netmasks_are_normalised():
    assert Service("tcp", "10.0.0.1", 1, scheduler="mh", flags=("sh-fallback",)).flags == ("mh-fallback",)
    assert Service("tcp", "10.0.0.1", 1, netmask="24").netmask == "255.255.255.0"
    assert Service("tcp", "2001:db8::1", 1).netmask == "128"
    with pytest.raises(ValueError):
        Service("tcp", "2001:db8::1", 1, netmask="129")
    with pytest.raises(ValueError):
        Service("tcp", "10.0.0.1", 1, flags=("bogus",))


def test_stats_dict_has_every_counter_and_rate_as_plain_numbers():
    d = model.stats_dict(Stats(conns=2**63, cps=4, active=1))
    assert {
        "cps",
        "inbps",
        "outbps",
        "inpps",
        "outpps",
        "conns",
        "inpkts",
        "outpkts",
        "inbytes",
        "outbytes",
    } <= set(d)
    assert d["conns"] == 2**63 and d["active"] == 1 and d["persistent"] == 0
    assert model.stats_dict(None)["conns"] == 0
