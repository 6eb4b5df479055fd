"""The corpus imports to exactly the IPVS table ldirectord builds from it (hand-derived expected tables)."""

import pytest

from clusters.exporters import export
from tests.configs import parse_file, read, short


@pytest.mark.parametrize(
    "config, expected",
    [
        ("ldirectord-ultramonkey.cf", "ldirectord-ultramonkey.expected.rules"),
        ("ldirectord-full.cf", "ldirectord-full.expected.rules"),
        ("keepalived-full.conf", "keepalived-full.expected.rules"),
        ("ipvsadm-save.rules", "ipvsadm-save.rules"),
        ("ipvsadm-script.sh", "ipvsadm-script.expected.rules"),
    ],
)
def test_it_builds_the_expected_ipvs_table(config, expected):
    plan = parse_file(config)
    assert plan.ok, [str(m) for m in plan.errors]
    assert export(plan.services, "ipvsadm") == read(expected)


def test_it_reads_the_classic_ultra_monkey_checks():
    plan = parse_file("ldirectord-ultramonkey.cf")
    web, vnc = plan.services
    assert (web.name, web.check_service, web.request, web.receive) == (
        "Web Site",
        "http",
        "/index.html",
        "Test Page",
    )
    assert (web.checkinterval, web.checktimeout, web.quiescent) == (2, 10, True)
    assert (web.fallback_address, web.fallback_port, web.fallback_forwarding) == ("127.0.0.1", 80, "masq")
    assert (vnc.checktype, vnc.persistence) == ("connect", 300)


def test_it_follows_execute_into_a_second_instance_with_its_own_defaults():
    plan = parse_file("ldirectord-full.cf")
    extra = next(s for s in plan.services if s.port == 443)
    assert extra.file.endswith("ldirectord-extra.cf") and extra.line == 2
    assert (extra.checkinterval, extra.checktimeout, extra.failurecount) == (10, 5, 1)  # not the first file's
    assert any(m.line == 16 and "execute" in m.text for m in plan.warnings)


def test_it_carries_check_settings_of_the_busy_config():
    services = {s.label: s for s in parse_file("ldirectord-full.cf").services}
    web = services["TCP 172.16.10.52:80"]
    assert (web.virtualhost, web.checktimeout, web.negotiatetimeout, web.failurecount) == (
        "www.example.com",
        4,
        4,
        2,
    )
    sql = services["TCP 172.16.10.52:3306"]
    assert (sql.check_every, sql.login, sql.database, sql.request) == (3, "readuser", "portal", "/SELECT 1")
    ext = services["TCP 172.16.10.52:8080"]
    assert (ext.checktype, ext.external_program) == ("external", "/usr/local/bin/check-app --quick")
    v6 = services["TCP [2001:db8::52]:80"]
    assert (v6.family, v6.fallback_address, v6.fallback_forwarding) == (6, "::1", "gate")
    assert services["FWM 1"].fallback_port is None


def test_it_reports_every_mistake_of_the_bad_config_with_its_line():
    plan = parse_file("ldirectord-bad.cf")
    assert [line for line, _ in short(plan.errors)] == [3, 5, 6, 7, 8, 9, 11, 12, 13, 15]
    texts = dict(short(plan.errors))
    assert "forward method must be gate, masq or ipip" in texts[6]
    assert "DNS is never queried" in texts[9]
    assert "duplicate virtual server" in texts[13]
