"""ipvsadm -S output and -R scripts, read with ipvsadm's option parser and defaults."""

from clusters.importers import ipvsadm
from tests.configs import parse_file, short


def test_it_reads_every_flag_of_a_save_file():
    plan = parse_file("ipvsadm-save.rules")
    s = {x.label: x for x in plan.services}
    assert (s["TCP 172.16.10.54:443"].sched_flags, s["TCP 172.16.10.54:443"].netmask) == (
        ["sh-port", "sh-fallback"],
        "255.255.255.0",
    )
    real = s["TCP 172.16.10.54:443"].reals[0]
    assert (real.forwarding, real.weight, real.u_threshold, real.l_threshold) == ("ipip", 3, 1000, 100)
    assert (s["FWM 2 IPv6"].family, s["TCP [2001:db8::52]:80"].netmask) == (6, "64")
    assert s["SCTP 172.16.10.55:3868"].protocol == "sctp"
    assert all(x.checktype == "on" for x in plan.services)


def test_it_uses_ipvsadm_defaults():
    plan = ipvsadm.parse("-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.0.2\n-A -t 10.0.0.1:81 -p\n")
    a, b = plan.services
    assert (a.scheduler, a.reals[0].forwarding, a.reals[0].port, a.reals[0].weight) == ("wlc", "gate", 80, 1)
    assert b.persistence == 300


def test_it_runs_clear_edit_and_delete_in_order():
    plan = ipvsadm.parse(
        "-A -t 10.0.0.1:80\n-C\n-A -t 10.0.0.1:81 -s rr\n-E -t 10.0.0.1:81 -s lc\n-A -t 10.0.0.1:82\n-D -t 10.0.0.1:82\n"
    )
    assert [(s.port, s.scheduler) for s in plan.services] == [(81, "lc")]


def test_it_reports_mistakes_with_their_lines():
    plan = parse_file("ipvsadm-bad.rules")
    assert [line for line, _ in short(plan.errors)] == [1, 2, 3, 5, 6]


def test_it_refuses_ipv6_flag_without_fwmark():
    plan = ipvsadm.parse("-A -t 10.0.0.1:80 -6\n")
    assert short(plan.errors) == [(1, "-6 only goes with -f (a firewall-mark service)")]
