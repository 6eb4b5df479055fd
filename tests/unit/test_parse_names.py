"""Host and port names are resolved from local tables only: never a DNS query."""

import socket

import pytest

from clusters.importers import HostsMap, ipvsadm, ldirectord


@pytest.fixture(autouse=True)
def no_resolver(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("an importer tried to resolve a name through the system resolver")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "gethostbyname", refuse)


HOSTS = HostsMap.from_text("192.0.2.10 lvs\n192.0.2.11 web1 web1.example.com\n2001:db8::11 web1\n")


def test_it_resolves_names_from_the_hosts_map_by_family():
    plan = ldirectord.parse("virtual=lvs:http\n\treal=web1.example.com:www masq\n", hosts=HOSTS)
    assert plan.ok
    (s,) = plan.services
    assert (s.address, s.port, s.reals[0].address, s.reals[0].port) == ("192.0.2.10", 80, "192.0.2.11", 80)
    assert HOSTS.resolve("web1", 6) == "2001:db8::11"


def test_it_refuses_a_name_missing_from_the_map():
    plan = ldirectord.parse("virtual=www.example.org:80\n\treal=10.0.0.1:80 gate\n", hosts=HOSTS)
    assert len(plan.errors) == 1 and "DNS is never queried" in plan.errors[0].text


def test_it_expands_a_range_between_two_names():
    hosts = HostsMap.from_text("10.0.0.1 a\n10.0.0.3 c\n")
    plan = ldirectord.parse("virtual=10.0.0.100:80\n\treal=a->c:80 gate\n", hosts=hosts)
    assert [r.address for r in plan.services[0].reals] == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]


def test_it_bounds_and_orders_ranges():
    plan = ldirectord.parse(
        "virtual=10.0.0.100:80\n\treal=10.0.0.9->10.0.0.1:80 gate\n\treal=10.0.0.1->10.1.0.0:80 gate\n"
    )
    assert [m.line for m in plan.errors] == [2, 3]


def test_it_resolves_ipvsadm_names_from_the_map():
    plan = ipvsadm.parse("-A -t lvs:http -s rr\n-a -t lvs:http -r web1 -m\n", hosts=HOSTS)
    assert plan.ok and plan.services[0].reals[0].address == "192.0.2.11"
