"""Drift report: the kernel against the table the agent last applied."""

import dataclasses

from director.drift import report
from director.ipvs.model import Dest, Service

RS1 = Dest("192.168.1.4", 80, weight=3)
RS2 = Dest("192.168.1.5", 80)
WEB = Service("tcp", "172.16.10.52", 80, scheduler="wlc", dests=(RS1, RS2))


def test_it_reports_nothing_when_the_kernel_matches():
    assert report([WEB], [WEB]) == []


def test_it_names_a_service_and_a_real_server_added_by_hand():
    by_hand = Service("tcp", "172.16.10.52", 443, scheduler="rr", dests=(RS1,))
    extra_dest = dataclasses.replace(WEB, dests=(RS1, RS2, Dest("192.168.1.9", 80, fwd="gate", weight=5)))
    assert report([WEB], [extra_dest, by_hand]) == [
        "extra in the kernel, a reconcile would delete real 192.168.1.9:80 in TCP 172.16.10.52:80 (gate, weight 5)",
        "extra in the kernel, a reconcile would delete service TCP 172.16.10.52:443 (rr, 1 real server)",
    ]


def test_it_names_what_is_missing():
    only = dataclasses.replace(WEB, dests=(RS1,))
    assert report([WEB], [only]) == [
        "missing from the kernel, a reconcile would add real 192.168.1.5:80 in TCP 172.16.10.52:80 (masq, weight 1)"
    ]
    assert report([WEB], []) == [
        "missing from the kernel, a reconcile would add service TCP 172.16.10.52:80 (wlc)",
        "missing from the kernel, a reconcile would add real 192.168.1.4:80 in TCP 172.16.10.52:80 (masq, weight 3)",
        "missing from the kernel, a reconcile would add real 192.168.1.5:80 in TCP 172.16.10.52:80 (masq, weight 1)",
    ]


def test_it_names_each_field_that_differs():
    kernel = dataclasses.replace(
        WEB, scheduler="rr", flags=("sh-port",), dests=(dataclasses.replace(RS1, weight=1, fwd="gate"), RS2)
    )
    assert report([WEB], [kernel]) == [
        "changed in the kernel, a reconcile would set real 192.168.1.4:80 in TCP 172.16.10.52:80: "
        "forwarding gate -> masq; weight 1 -> 3",
        "changed in the kernel, a reconcile would set service TCP 172.16.10.52:80: "
        "scheduler rr -> wlc; flags sh-port -> none",
    ]
