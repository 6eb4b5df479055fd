"""keepalived.conf: virtual_server blocks and checkers map onto our model; VRRP is reported, not imported."""

from clusters.importers import MemorySources, keepalived
from tests.configs import parse_file, read, short


def _services():
    return {s.label: s for s in parse_file("keepalived-full.conf").services}


def test_it_reports_vrrp_and_global_blocks_with_their_lines():
    plan = parse_file("keepalived-full.conf")
    assert plan.ok, plan.errors
    not_imported = [
        (m.line, m.text.split(" not imported")[0]) for m in plan.warnings if "not imported" in m.text
    ]
    assert not_imported == [(4, "global_defs"), (11, "vrrp_sync_group VG1"), (17, "vrrp_instance VI_1")]


def test_it_maps_http_get_with_status_code_and_sorry_server():
    web = _services()["TCP 172.16.10.52:80"]
    assert (web.checktype, web.check_service, web.request, web.expected_status) == (
        "negotiate",
        "http",
        "/index.html",
        "200",
    )
    assert (web.checktimeout, web.retries, web.delay_before_retry, web.checkinterval) == (3, 3, 2, 6)
    assert (web.fallback_address, web.fallback_port, web.fallback_forwarding, web.quiescent) == (
        "127.0.0.1",
        80,
        "masq",
        True,
    )


def test_it_maps_ssl_get_tcp_misc_smtp_and_dns_checks():
    s = _services()
    assert (s["TCP 172.16.10.52:443"].check_service, s["TCP 172.16.10.52:443"].expected_status) == (
        "https",
        "200,204",
    )
    assert s["TCP 172.16.10.52:443"].checkport == 443 and s["TCP 172.16.10.52:443"].netmask == "255.255.255.0"
    assert (s["TCP 172.16.10.52:5500"].checktype, s["TCP 172.16.10.52:5500"].checktimeout) == ("connect", 1)
    assert (s["FWM 7"].checktype, s["FWM 7"].external_program, s["FWM 7"].sched_flags) == (
        "external",
        "/usr/local/bin/check-mark 7",
        ["sh-port"],
    )
    assert (s["TCP 172.16.10.52:25"].check_service, s["TCP 172.16.10.52:25"].reals[0].forwarding) == (
        "smtp",
        "ipip",
    )
    assert (s["UDP 172.16.10.53:53"].check_service, s["UDP 172.16.10.53:53"].request) == (
        "dns",
        "www.example.com",
    )
    assert s["UDP 172.16.10.53:53"].sched_flags == ["ops"]


def test_it_expands_a_virtual_server_group_and_treats_no_checker_as_always_up():
    s = _services()
    for address in ("172.16.10.60", "172.16.10.61", "172.16.10.62"):
        assert s[f"TCP {address}:80"].checktype == "on"


def test_it_reads_included_files():
    service = _services()["TCP [2001:db8::52]:80"]
    assert service.file.endswith("keepalived-extra.conf") and service.checkport == 8080


def test_it_reads_includes_from_uploaded_files_by_name():
    sources = MemorySources({"keepalived-extra.conf": read("keepalived-extra.conf")})
    plan = keepalived.parse("include /etc/keepalived/keepalived-extra.conf\n", sources=sources)
    assert plan.ok and [s.label for s in plan.services] == ["TCP [2001:db8::52]:80"]


def test_it_warns_when_an_include_is_not_available():
    plan = keepalived.parse("include conf.d/*.conf\n")
    assert plan.ok and short(plan.warnings)[0][0] == 1


def test_it_reports_mistakes_with_their_lines():
    plan = parse_file("keepalived-bad.conf")
    assert [line for line, _ in short(plan.errors)] == [3, 6, 8, 12, 13, 14]
    assert "never closed" in dict(short(plan.errors))[12]


def test_it_warns_when_real_servers_check_differently():
    text = (
        "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n  TCP_CHECK {\n  }\n }\n"
        " real_server 10.0.0.3 80 {\n  HTTP_GET {\n   url {\n    path /\n   }\n  }\n }\n}\n"
    )
    plan = keepalived.parse(text)
    assert plan.services[0].checktype == "connect"
    assert [m.line for m in plan.warnings] == [6]


def test_it_applies_virtual_server_checker_defaults_and_url_regex():
    text = """virtual_server 10.0.0.1 80 {
    connect_timeout 7
    retry 4
    inhibit_on_failure
    real_server 10.0.0.2 80 {
        HTTP_GET {
            url {
                path /ping
                regex "^pong$"
            }
            delay_loop 9
        }
    }
}
"""
    plan = keepalived.parse(text)
    assert plan.ok, plan.errors
    (s,) = plan.services
    assert (s.checktimeout, s.negotiatetimeout, s.retries, s.quiescent) == (7, 7, 4, True)
    assert (s.request, s.receive, s.checkinterval) == ("/ping", "^pong$", 9)


def test_it_keeps_inhibit_on_failure_per_real_server():
    text = (
        "virtual_server 10.0.0.1 80 {\n"
        " real_server 10.0.0.2 80 {\n  inhibit_on_failure\n }\n"
        " real_server 10.0.0.3 80 {\n }\n"
        " real_server 10.0.0.4 80 {\n  inhibit_on_failure\n }\n}\n"
    )
    plan = keepalived.parse(text)
    assert plan.ok and not plan.warnings, plan.warnings
    (s,) = plan.services
    assert s.quiescent is False
    assert [r.quiescent for r in s.reals] == [True, None, True]
    every = keepalived.parse(text.replace(" real_server 10.0.0.3 80 {\n }\n", ""))
    assert every.services[0].quiescent is True and [r.quiescent for r in every.services[0].reals] == [
        None,
        None,
    ]


def test_it_takes_keepalived_semantics_where_the_daemons_differ():
    text = (
        "virtual_server 10.0.0.1 53 {\n protocol UDP\n alpha\n quorum 3\n hysteresis 1\n"
        " sorry_server 10.0.0.9 53\n"
        " real_server 10.0.0.2 53 {\n  TCP_CHECK {\n   connect_port 53\n  }\n }\n}\n"
    )
    plan = keepalived.parse(text)
    assert plan.ok and not plan.warnings, plan.warnings
    (s,) = plan.services
    assert (s.fallback_rule, s.redirects, s.tcp_on_udp, s.start_down) == ("keepalived", 0, True, True)
    assert (s.quorum, s.hysteresis, s.fallback_address) == (3, 1, "10.0.0.9")
    tcp = keepalived.parse(text.replace(" protocol UDP\n", "")).services[0]
    assert tcp.tcp_on_udp is False and tcp.checktype == "connect"
