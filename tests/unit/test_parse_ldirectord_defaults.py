"""ldirectord's own defaults, as read_config/ld_setup set them, end up in the plan."""

from clusters.exporters import export
from clusters.importers import ldirectord


def _one(text: str):
    plan = ldirectord.parse(text)
    assert plan.ok, plan.errors
    (service,) = plan.services
    return service


def test_it_uses_ldirectords_defaults_for_a_bare_virtual():
    s = _one("virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n")
    assert (s.protocol, s.scheduler, s.checktype, s.check_service) == ("tcp", "wrr", "negotiate", "http")
    assert (s.checkinterval, s.checktimeout, s.negotiatetimeout, s.failurecount) == (10, 5, 30, 1)
    assert s.quiescent is False  # set_defaults says "no", whatever the man page claims
    assert [(r.address, r.port, r.forwarding, r.weight) for r in s.reals] == [("10.0.0.2", 80, "gate", 1)]


def test_it_builds_the_table_ldirectord_builds_from_defaults():
    plan = ldirectord.parse("virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\treal=10.0.0.3:80 masq 5\n")
    assert export(plan.services, "ipvsadm") == (
        "-A -t 10.0.0.1:80 -s wrr\n-a -t 10.0.0.1:80 -r 10.0.0.2:80 -g -w 1\n-a -t 10.0.0.1:80 -r 10.0.0.3:80 -m -w 5\n"
    )


def test_it_makes_port_53_udp_and_picks_the_check_service_from_the_port():
    s = _one("virtual=10.0.0.1:53\n\treal=10.0.0.2:53 gate\n")
    assert (s.protocol, s.check_service) == ("udp", "dns")
    assert _one("virtual=10.0.0.1:5500\n\treal=10.0.0.2:5500 gate\n").check_service == "none"


def test_it_lets_checktimeout_and_negotiatetimeout_default_to_each_other():
    s = _one("negotiatetimeout=12\nvirtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n")
    assert (s.checktimeout, s.negotiatetimeout) == (12, 12)
    s = _one("virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\tchecktimeout=7\n")
    assert (s.checktimeout, s.negotiatetimeout) == (7, 7)


def test_it_applies_globals_unless_the_virtual_overrides_them():
    text = "quiescent=yes\nfailurecount=3\nvirtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\tquiescent=no\n"
    s = _one(text)
    assert (s.quiescent, s.failurecount) == (False, 3)


def test_it_honours_a_per_virtual_checkinterval_only_with_fork():
    text = "checkinterval=4\nvirtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\tcheckinterval=9\n"
    plan = ldirectord.parse(text)
    assert plan.services[0].checkinterval == 4
    assert [(m.line, "fork=no" in m.text) for m in plan.warnings] == [(4, True)]
    assert _one("fork=yes\n" + text).checkinterval == 9


def test_it_gives_gate_reals_and_portless_reals_the_virtual_port():
    plan = ldirectord.parse("virtual=10.0.0.1:80\n\treal=10.0.0.2:8080 gate\n\treal=10.0.0.3 masq\n")
    assert [(r.address, r.port) for r in plan.services[0].reals] == [("10.0.0.2", 80), ("10.0.0.3", 80)]
    assert [m.line for m in plan.warnings] == [2, 2, 3]
    assert [r.check_port for r in plan.services[0].reals] == [8080, 0]  # ld_checkport: the configured port
    assert "checks it on port 8080, traffic goes to port 80" in str(plan.warnings[1])


def test_it_keeps_the_service_port_ldirectord_checks_a_portless_real_on():
    plan = ldirectord.parse("virtual=10.0.0.1:8080\n\treal=10.0.0.3 masq\n\tservice=http\n")
    (real,) = plan.services[0].reals
    assert (real.port, real.check_port) == (8080, 80)
    assert any("'check the traffic port' moves the check to 8080" in str(w) for w in plan.warnings)
    text = "virtual=10.0.0.1:8080\n\treal=10.0.0.3 masq\n\tservice=http\n\tcheckport=81\n"
    assert (
        ldirectord.parse(text).services[0].reals[0].check_port == 0
    )  # checkport decides, as in ld_checkport


def test_it_keeps_real_ports_of_a_firewall_mark_service():
    s = _one("virtual=5\n\treal=10.0.0.2 gate\n\treal=10.0.0.3:80 masq\n")
    assert (s.protocol, s.fwmark, s.address, s.check_service) == ("fwmark", 5, None, "none")
    assert [r.port for r in s.reals] == [0, 80]


def test_it_reads_a_combined_checktype_as_connect_then_every_nth_negotiate():
    s = _one("virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\tchecktype=4\n")
    assert (s.checktype, s.check_every) == ("negotiate", 4)


def test_it_prefixes_the_request_with_a_slash_as_ldirectord_does():
    assert (
        _one('virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\trequest="index.html"\n').request
        == "/index.html"
    )


def test_it_uses_the_global_fallback_with_the_virtual_port():
    s = _one("fallback=127.0.0.1\nvirtual=10.0.0.1:443\n\treal=10.0.0.2:443 gate\n")
    assert (s.fallback_address, s.fallback_port, s.fallback_forwarding) == ("127.0.0.1", 443, "gate")


def test_it_reports_directives_it_accepts_but_does_not_use():
    plan = ldirectord.parse(
        'logfile="/var/log/ld.log"\nemailalert="a@b.c"\nvirtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n'
    )
    assert plan.ok
    assert [m.line for m in plan.warnings] == [1, 2]
    assert all("not used" in m.text for m in plan.warnings)
