"""The one IPVS operation describer (director/ipvs/ops.py): what plan errors, kernel refusals and drift say."""

from __future__ import annotations

import dataclasses
import errno

from director import drift
from director.ipvs.model import Dest, Service
from director.ipvs.ops import Op
from director.ipvs.plan import OpError, diff
from director.ipvs.wire import WireError

RS1 = Dest("192.168.1.4", 80, weight=3)
RS2 = Dest("192.168.1.5", 80)
WEB = Service("tcp", "172.16.10.52", 80, scheduler="wlc", dests=(RS1, RS2))


def test_it_names_services_and_reals_like_ipvsadm():
    fwm = Service("fwmark", fwmark=3, family=6, scheduler="sh", flags=("sh-port",), timeout=60)
    assert (
        str(Op("add_service", fwm))
        == "add service FWM 3 IPv6 (sh, flags sh-port, persistent 60s netmask 128)"
    )
    v6 = Service("tcp", "2001:db8::52", 443)
    assert (
        str(Op("del_dest", v6, Dest("2001:db8::4", 443)))
        == "delete real [2001:db8::4]:443 in TCP [2001:db8::52]:443 (masq, weight 1)"
    )
    assert str(Op("del_service", WEB)) == "delete service TCP 172.16.10.52:80 (wlc, 2 real servers)"
    tunnel = Dest("10.0.0.9", 80, fwd="ipip", tun_type="gue", tun_port=6080, u_threshold=9)
    assert (
        str(Op("add_dest", WEB, tunnel))
        == "add real 10.0.0.9:80 in TCP 172.16.10.52:80 (ipip, weight 1, thresholds 0..9, tunnel gue port 6080 flags 0)"
    )


def test_it_tells_a_set_by_what_changes_when_the_kernel_value_is_known():
    new = dataclasses.replace(WEB, scheduler="rr", flags=("sh-port",))
    assert str(Op("set_service", new, old=WEB)) == (
        "set service TCP 172.16.10.52:80: scheduler wlc -> rr; flags none -> sh-port"
    )
    assert str(Op("set_service", new)) == "set service TCP 172.16.10.52:80 (rr, flags sh-port)"
    lowered = dataclasses.replace(RS1, weight=0, fwd="gate")
    assert str(Op("set_dest", WEB, lowered, old=RS1)) == (
        "set real 192.168.1.4:80 in TCP 172.16.10.52:80: forwarding masq -> gate; weight 3 -> 0"
    )


def test_it_does_not_call_the_kernels_local_forwarding_a_change():
    local = dataclasses.replace(RS1, fwd="local", weight=1)
    assert str(Op("set_dest", WEB, RS1, old=local)) == (
        "set real 192.168.1.4:80 in TCP 172.16.10.52:80: weight 1 -> 3"
    )


def test_it_reads_the_same_in_an_apply_error_a_kernel_refusal_and_the_drift_list():
    kernel = dataclasses.replace(WEB, scheduler="rr", dests=(dataclasses.replace(RS1, weight=1),))
    ops = diff([WEB], [kernel])
    texts = [str(op) for op in ops]
    assert texts == [
        "add real 192.168.1.5:80 in TCP 172.16.10.52:80 (masq, weight 1)",
        "set real 192.168.1.4:80 in TCP 172.16.10.52:80: weight 1 -> 3",
        "set service TCP 172.16.10.52:80: scheduler rr -> wlc",
    ]
    refused = WireError(errno.EINVAL, texts[1])
    assert str(OpError(ops[1], refused)) == str(refused) == f"{texts[1]}: Invalid argument (EINVAL)"
    assert drift.report([WEB], [kernel]) == [
        f"missing from the kernel, a reconcile would {texts[0]}",
        f"changed in the kernel, a reconcile would {texts[1]}",
        f"changed in the kernel, a reconcile would {texts[2]}",
    ]
