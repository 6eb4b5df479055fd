"""Every directive ldirectord documents is accepted; the ones without a use here are reported, line by line."""

from clusters.exporters import export
from clusters.importers import ldirectord
from tests.configs import parse_file, short


def test_it_accepts_every_documented_directive():
    plan = parse_file("ldirectord-every-directive.cf")
    assert plan.errors == []
    not_used = [line for line, text in short(plan.warnings) if "not used" in text]
    assert not_used == [7, 8, 11, 12, 13, 14, 15, 16, 17, 18, 21, 22, 23, 29, 47, 54, 55, 56, 57, 58, 59, 61]
    deprecated = [line for line, text in short(plan.warnings) if "deprecated" in text]
    assert deprecated == [5, 34]  # ldirectord's own warning for checkcount


def test_it_maps_every_check_setting_of_a_virtual():
    web, radius = parse_file("ldirectord-every-directive.cf").services
    assert (web.checkinterval, web.checktimeout, web.negotiatetimeout, web.failurecount, web.retries) == (
        4,
        3,
        6,
        3,
        2,
    )
    assert (web.httpmethod, web.virtualhost, web.checkport, web.request, web.receive) == (
        "HEAD",
        "www.example.com",
        80,
        "/alive",
        "yes",
    )
    assert (web.login, web.passwd, web.database, web.secret, web.name) == (
        "monitor",
        "secret",
        "none",
        "radius",
        "Web site",
    )
    assert (web.scheduler, web.sched_flags, web.persistence, web.netmask) == (
        "sh",
        ["sh-port", "sh-fallback"],
        30,
        "255.255.255.0",
    )
    assert [(r.weight, r.l_threshold, r.u_threshold) for r in web.reals] == [(1, 5, 50), (2, 0, 0)]
    assert (radius.protocol, radius.sched_flags, radius.checktype) == ("udp", ["ops"], "external")
    assert radius.external_program == "perl /usr/local/lib/check_radius.pl"
    assert (radius.fallback_address, radius.fallback_port, radius.fallback_forwarding) == (
        "127.0.0.1",
        80,
        "gate",
    )


def test_it_refuses_what_ldirectord_refuses():
    cases = {
        "connecttimeout=5\n": "deprecated in favour of negotiatetimeout",
        "timeout=5\n": "deprecated in favour of checktimeout",
        "logfile=/var/log/ld.log\n": "Unknown command",  # ldirectord wants the quotes
        "autoreload=maybe\n": "autoreload must be 'yes' or 'no'",
        "checktimeout=0\n": "invalid check timeout value",
        "emailalertstatus=none,all\n": 'specified with "none"',
        "virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\tchecktype=sometimes\n": "checktype must be",
        "virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\tservice=gopher\n": "service must be one of",
        "virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\tprotocol=fwm\n": "protocol must be tcp or udp",
        "virtual=1\n\treal=10.0.0.2 gate\n\tprotocol=tcp\n": "protocol must be fwm",
        "virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\tnetmask=24\n": "dotted quad",
        "virtual=10.0.0.1:80\n\treal6=[::1]:80 gate\n": 'please use "real" instead',
        "virtual=10.0.0.1:80\n\treal=10.0.0.2:80\n": "forwarding method gate, masq or ipip is missing",
        "virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\tcheckport=70000\n": "checkport must be in range",
        "virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\thttpmethod=POST\n": "httpmethod must be GET or HEAD",
        'virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\treceive=""\n': "invalid receive string",
        "virtual6=[2001:db8::1]:80\n\treal6=[2001:db8::2]->[2001:db8::4]:80 masq\n": "Address range for IPv6",
    }
    for text, needle in cases.items():
        plan = ldirectord.parse(text)
        assert any(needle in m.text for m in plan.errors), (text, [str(m) for m in plan.errors])


def test_it_builds_no_real_servers_into_the_table_for_checktype_off():
    plan = ldirectord.parse("virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\tchecktype=off\n")
    assert export(plan.services, "ipvsadm") == "-A -t 10.0.0.1:80 -s wrr\n"
