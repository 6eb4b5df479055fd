"""The import preview states, per virtual service, the kernel table when every check passes and when every
check fails (the agent's own policy computes both), and in words which daemon's behaviour the service follows."""

from clusters.importers import keepalived, ldirectord
from clusters.importers.preview import plan_lines
from tests.configs import parse_file


def _lines(plan) -> list[str]:
    return [line.strip() for line in plan_lines(plan)]


def test_it_states_both_tables_with_an_ldirectord_fallback_on_the_virtual_port():
    lines = _lines(parse_file("oracle/ld06-fallback-gate.cf"))
    assert "every check passes: 192.168.1.4:8001 weight 1, 192.168.1.5:8001 weight 1" in lines
    assert (
        "every check fails:  192.168.1.4:8001 weight 0, 192.168.1.5:8001 weight 0, 192.168.1.9:80 weight 1"
        in lines
    )
    assert any(line.startswith("fallback as ldirectord: added while no real server passes") for line in lines)
    assert "HTTP check follows up to 7 redirects, then needs status 2xx" in lines


def test_it_states_an_empty_service_when_failed_servers_are_removed():
    plan = ldirectord.parse(
        "virtual=10.0.0.1:80\n\treal=10.0.0.2:80 masq 3\n\tquiescent=no\n\tchecktype=connect\n"
    )
    lines = _lines(plan)
    assert "every check passes: 10.0.0.2:80 weight 3" in lines
    assert "every check fails:  no real server (the service stays, empty)" in lines


def test_it_names_the_check_port_choice_and_the_keepalived_behaviours():
    ld = _lines(parse_file("oracle/ld09-gate-check-port.cf"))
    assert (
        "checks 192.168.1.4 on 8005, 192.168.1.5 on 8005 as the source daemon did "
        "('check the traffic port' changes that)" in ld
    )
    ka = _lines(
        keepalived.parse(
            "virtual_server 10.0.0.1 53 {\n protocol UDP\n alpha\n"
            " real_server 10.0.0.2 53 {\n  weight 0\n  TCP_CHECK {\n  }\n }\n}\n"
        )
    )
    assert "connect check of this UDP service: a TCP handshake (keepalived TCP_CHECK)" in ka
    assert "real servers start down until their first check passes (keepalived alpha)" in ka
    assert "every check passes: 10.0.0.2:53 weight 0" in ka
