"""Every service and dest attribute goes into the kernel and comes back out unchanged; reconcile is a diff."""

from __future__ import annotations

import dataclasses
import errno
import os
import subprocess

import pytest

from director.ipvs.model import SCHEDULERS, Dest, Service
from director.ipvs.plan import diff, reconcile
from director.ipvs.wire import Wire, WireError

pytestmark = pytest.mark.kernel


def by_key(services):
    return {s.key: s for s in services}


def scheduler_available(name: str) -> bool:
    if os.path.exists(f"/sys/module/ip_vs_{name}"):
        return True
    # the kernel loads schedulers on demand; in the lab modprobe needs the UML module tree
    return (
        subprocess.run(["modprobe", "-q", f"ip_vs_{name}"], capture_output=True, timeout=20).returncode == 0
    )


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_it_round_trips_every_kernel_scheduler(wire, scheduler):
    svc = Service("tcp", "10.1.0.1", 80, scheduler=scheduler, dests=(Dest("192.168.1.4", 80, weight=2),))
    report = reconcile(wire, [svc])
    if report.errors and not scheduler_available(scheduler):
        err = report.errors[0].error
        pytest.skip(f"ip_vs_{scheduler} is not available in this kernel ({err.strerror})")
    assert report.errors == []
    assert by_key(wire.dump()) == {svc.key: svc}


# the SIP persistence engine is a module of its own (ip_vs_pe_sip): part of the table where it is loaded
SIP = (
    [
        Service(
            "udp",
            "10.2.0.4",
            5060,
            scheduler="rr",
            timeout=60,
            pe_name="sip",
            dests=(Dest("192.168.1.4", 5060),),
        )
    ]
    if os.path.exists("/sys/module/ip_vs_pe_sip")
    else []
)


def entries(services) -> int:
    return len(services) + sum(len(s.dests) for s in services)


def table() -> list[Service]:
    """One of everything: protocols, families, fwmark, flags, persistence + netmask, fwd methods, weights."""
    rs1, rs2 = "192.168.1.4", "192.168.1.5"
    return [
        Service(
            "tcp",
            "10.2.0.1",
            80,
            scheduler="wlc",
            dests=(
                Dest(rs1, 80, fwd="masq", weight=0),
                Dest(rs2, 8080, fwd="masq", weight=65535, u_threshold=1000, l_threshold=10),
                Dest("192.168.1.6", 80, fwd="gate", weight=1),
                Dest("192.168.1.7", 80, fwd="ipip", weight=7),
                Dest("192.168.1.8", 80, fwd="ipip", tun_type="gue", tun_port=6080, weight=8),
                Dest("192.168.1.9", 80, fwd="ipip", tun_type="gre", weight=9),
            ),
        ),
        Service("udp", "10.2.0.1", 53, scheduler="rr", flags=("ops",), dests=(Dest(rs1, 53),)),
        Service("sctp", "10.2.0.1", 3000, scheduler="lc", dests=(Dest(rs1, 3000), Dest(rs2, 3001, weight=4))),
        Service(
            "tcp", "10.2.0.2", 443, scheduler="sh", flags=("sh-fallback", "sh-port"), dests=(Dest(rs1, 443),)
        ),
        Service(
            "tcp", "10.2.0.3", 443, scheduler="mh", flags=("mh-fallback", "mh-port"), dests=(Dest(rs2, 443),)
        ),
        Service(
            "tcp",
            "10.2.0.4",
            80,
            scheduler="rr",
            timeout=300,
            netmask="255.255.255.0",
            dests=(Dest(rs1, 80),),
        ),
        *SIP,
        Service(
            "tcp",
            "2001:db8:2::1",
            80,
            scheduler="wrr",
            timeout=1800,
            netmask="64",
            dests=(
                Dest("2001:db8:1::4", 80, weight=3, u_threshold=5, l_threshold=2),
                Dest("2001:db8:1::5", 80, fwd="gate"),
                Dest(rs1, 80, fwd="ipip"),  # an IPv4 tunnel endpoint in an IPv6 service
            ),
        ),
        Service("udp", "2001:db8:2::1", 53, scheduler="sed", dests=(Dest("2001:db8:1::4", 53),)),
        Service(
            "fwmark", fwmark=1, family=4, scheduler="nq", dests=(Dest(rs1, 0), Dest(rs2, 80, fwd="gate"))
        ),
        Service(
            "fwmark",
            fwmark=1,
            family=6,
            scheduler="sh",
            flags=("sh-port",),
            timeout=120,
            netmask="48",
            dests=(Dest("2001:db8:1::4", 0),),
        ),
        Service("fwmark", fwmark=2**32 - 1, family=4, scheduler="dh", dests=(Dest(rs2, 0, weight=100),)),
    ]


def test_it_round_trips_every_service_and_dest_attribute(wire):
    report = reconcile(wire, table())
    assert [str(e) for e in report.errors] == []
    assert report.ops_done == entries(table())
    assert by_key(wire.dump()) == by_key(table())
    assert by_key(report.actual) == by_key(table())


def test_the_sip_persistence_engine_round_trips(wire):
    if not SIP:
        pytest.skip("ip_vs_pe_sip is not loaded in this kernel")
    assert reconcile(wire, SIP).errors == []
    assert by_key(wire.dump()) == by_key(SIP)


def test_a_second_reconcile_does_nothing(wire):
    reconcile(wire, table())
    again = reconcile(wire, table())
    assert (again.ops, again.ops_done, again.errors) == ([], 0, [])


def test_every_settable_attribute_changes_in_place(wire):
    before = table()
    reconcile(wire, before)
    changed = []
    for svc in before:
        scheduler = {"sh": "mh", "mh": "sh"}.get(svc.scheduler, "rr" if svc.scheduler != "rr" else "wrr")
        dests = tuple(
            dataclasses.replace(
                d,
                weight=(d.weight + 1) % 65536,
                u_threshold=d.u_threshold + 50,
                l_threshold=d.l_threshold + 1,
                fwd={"masq": "gate", "gate": "masq"}.get(d.fwd, d.fwd),
            )
            for d in svc.dests
            if not (svc.family == 6 and d.family == 4)  # mixed family stays ipip: see the test below
        )
        changed.append(
            dataclasses.replace(
                svc,
                scheduler=scheduler,
                timeout=svc.timeout * 2 if svc.pe_name else (0 if svc.timeout else 30),
                dests=dests + tuple(d for d in svc.dests if svc.family == 6 and d.family == 4),
            )
        )
    ops = diff(changed, wire.dump())
    assert {op.kind for op in ops} == {"set_service", "set_dest"}
    report = reconcile(wire, changed)
    assert [str(e) for e in report.errors] == []
    assert by_key(wire.dump()) == by_key(changed)


def test_the_kernel_refuses_a_non_tunnel_dest_of_another_family_and_reconcile_says_so(wire):
    svc = Service("tcp", "2001:db8:2::9", 80, dests=(Dest("192.168.1.4", 80, fwd="masq"),))
    report = reconcile(wire, [svc])
    assert len(report.errors) == 1
    assert report.errors[0].op.kind == "add_dest"
    assert report.errors[0].error.errno == errno.EINVAL
    assert "add real 192.168.1.4:80 in TCP [2001:db8:2::9]:80" in str(report.errors[0])


def test_a_partial_failure_is_reported_per_op_and_the_rest_is_applied(wire):
    good = table()
    bad_dest = Dest("192.168.1.20", 80, u_threshold=5, l_threshold=50)  # lower > upper: ERANGE
    bad_sched = Service("tcp", "10.9.0.1", 80, scheduler="nosuch", dests=(Dest("192.168.1.4", 80),))
    good[0] = dataclasses.replace(good[0], dests=good[0].dests + (bad_dest,))
    report = reconcile(wire, good + [bad_sched])
    failed = sorted(str(e) for e in report.errors)
    assert len(failed) == 3, failed  # the dest, the service and the dest of the missing service
    assert any("192.168.1.20:80" in e and "Numerical result out of range" in e for e in failed)
    assert any(e.startswith("add service TCP 10.9.0.1:80 (nosuch)") for e in failed)
    assert report.ops_done == entries(table())
    kernel = by_key(report.actual)
    assert kernel[good[0].key] == table()[0]
    assert set(kernel) == set(by_key(table()))


def test_single_verbs_and_dest_weight(wire):
    svc = Service("tcp", "10.3.0.1", 80, scheduler="rr")
    d = Dest("192.168.1.4", 80, weight=5)
    wire.add_service(svc)
    wire.add_dest(svc, d)
    assert wire.dest_weight(svc.key, d.key) == 5
    wire.set_dest(svc, dataclasses.replace(d, weight=9))
    assert wire.dest_weight(svc.key, ("192.168.1.4", 80)) == 9
    assert wire.dest_weight(svc.key, ("192.168.1.5", 80)) is None
    assert wire.dest_weight(("tcp", "10.3.0.99", 80), ("192.168.1.4", 80)) is None
    with pytest.raises(WireError) as exc:
        wire.add_service(svc)
    assert exc.value.errno == errno.EEXIST
    wire.set_service(dataclasses.replace(svc, scheduler="wrr"))
    assert wire.services()[0].scheduler == "wrr"
    wire.del_dest(svc, d)
    wire.del_service(svc)
    assert wire.dump() == []


def test_a_wire_in_another_network_namespace_sees_its_own_table(wire):
    svc = Service("tcp", "10.4.0.1", 80, dests=(Dest("192.168.1.4", 80),))
    with Wire(netns="rs1") as other:
        try:
            assert reconcile(other, [svc]).errors == []
            assert by_key(other.dump()) == {svc.key: svc}
            assert wire.dump() == []
        finally:
            reconcile(other, [])
        assert other.dump() == []


def test_a_reconcile_from_a_known_state_reads_back_only_what_it_touched(wire):
    before = table()
    first = reconcile(wire, before)
    changed = list(before)
    changed[0] = dataclasses.replace(
        before[0], dests=(dataclasses.replace(before[0].dests[0], weight=42),) + before[0].dests[1:]
    )
    report = reconcile(wire, changed, actual=first.actual)
    assert report.errors == [] and report.ops_done == 1
    assert by_key(report.actual) == by_key(changed) == by_key(wire.dump())
    assert wire.dump_services([before[0].key, ("tcp", "10.99.0.1", 80)]) == [changed[0]]
    # someone removes the dest we are about to change by hand: the set fails, reconcile falls back to a
    # full dump and still converges (hand-made changes the diff does not touch wait for the next full
    # reconcile or drift check)
    subprocess.run(["ipvsadm", "-d", "-t", "10.2.0.1:80", "-r", "192.168.1.4:80"], check=True, timeout=20)
    again = reconcile(wire, before, actual=report.actual)
    assert again.errors == []
    assert [op.kind for op in again.ops] == ["set_dest", "add_dest"]
    assert by_key(wire.dump()) == by_key(before)
