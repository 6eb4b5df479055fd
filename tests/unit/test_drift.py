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
        "extra real server in the kernel: 192.168.1.9:80 in TCP 172.16.10.52:80 (gate, weight 5) is not in "
        "the desired state",
        "extra service in the kernel: TCP 172.16.10.52:443 (rr, 1 real server) is not in the desired state",
    ]


def test_it_names_what_is_missing():
    only = dataclasses.replace(WEB, dests=(RS1,))
    assert report([WEB], [only]) == [
        "missing real server: 192.168.1.5:80 in TCP 172.16.10.52:80 is not in the kernel"
    ]
    assert report([WEB], []) == [
        "missing service: TCP 172.16.10.52:80 is desired but not in the kernel",
        "missing real server: 192.168.1.4:80 in TCP 172.16.10.52:80 is not in the kernel",
        "missing real server: 192.168.1.5:80 in TCP 172.16.10.52:80 is not in the kernel",
    ]


def test_it_names_each_field_that_differs():
    kernel = dataclasses.replace(
        WEB, scheduler="rr", flags=("sh-port",), dests=(dataclasses.replace(RS1, weight=1, fwd="gate"), RS2)
    )
    assert report([WEB], [kernel]) == [
        "real server 192.168.1.4:80 in TCP 172.16.10.52:80: forwarding gate in the kernel, masq desired; "
        "weight 1 in the kernel, 3 desired",
        "service TCP 172.16.10.52:80: scheduler rr in the kernel, wlc desired; flags sh-port in the kernel, "
        "none desired",
    ]
