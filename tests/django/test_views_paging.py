"""Long tables are paged (issue 17: a director of 2,284 services and 37,298 reals renders in <= 200 ms and
<= 200 KB per refresh, bench/scale_central.py): the director's services and hosts, a service's reals, the
overview's services per director and the drift list show a bounded slice, the page and filters live in the
URL, every live fragment polls the slice it shows, and the query count does not grow with the table."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from hypothesis import given
from hypothesis import strategies as st

from clusters import live
from clusters.models import Director, RealServer, VirtualService

from .snapshots import fresh_celery_pools, write_snapshot  # noqa: F401

pytestmark = pytest.mark.django_db
HX = {"HX-Request": "true"}


def _services(director, n, start=0):
    """`n` more services on `director`, one real each, the reals on distinct addresses (so distinct hosts)."""
    made = VirtualService.objects.bulk_create(
        VirtualService(director=director, protocol="tcp", address=f"10.9.{(start + i) // 250}.{1 + (start + i) % 250}", port=80)
        for i in range(n)
    )  # fmt: skip
    RealServer.objects.bulk_create(
        RealServer(service=vs, address=f"192.168.{100 + (start + i) // 250}.{1 + (start + i) % 250}", port=80)
        for i, vs in enumerate(made)
    )  # fmt: skip
    return made


def _reals(service, n, start=0):
    RealServer.objects.bulk_create(
        RealServer(service=service, address=f"192.168.{50 + (start + i) // 250}.{1 + (start + i) % 250}", port=80)
        for i in range(n)
    )  # fmt: skip


def _rows(html, pattern):
    return len(re.findall(pattern, html))


SERVICE_ROW = r'<td class="head"><a href="/services/\d+/">'
REAL_ROW = r'<tr id="real-\d+"'
HOST_ROW = r'<td class="head"><code>'


def test_it_pages_the_services_of_a_director(client, viewer):
    director = Director.objects.create(name="big", masquerade=False)
    _services(director, live.SERVICES_PAGE + 7)
    client.force_login(viewer)
    url = reverse("director_detail", args=[director.pk])
    first = client.get(url).content.decode()
    assert _rows(first, SERVICE_ROW) == live.SERVICES_PAGE
    assert "?page=2" in first and f"of {live.SERVICES_PAGE + 7}" in first
    second = client.get(url + "?page=2", headers=HX).content.decode()
    assert _rows(second, SERVICE_ROW) == 7
    assert f'hx-get="{url}?page=2"' in second  # the poll refreshes the page shown, not the first
    assert _rows(client.get(url + "?page=x").content.decode(), SERVICE_ROW) == live.SERVICES_PAGE


def test_it_filters_the_services_of_a_director(client, viewer):
    director = Director.objects.create(name="big", masquerade=False)
    _services(director, live.SERVICES_PAGE + 7)
    client.force_login(viewer)
    url = reverse("director_detail", args=[director.pk])
    html = client.get(url + "?q=10.9.0.17:").content.decode()
    assert _rows(html, SERVICE_ROW) == 1 and "TCP 10.9.0.17:80" in html
    assert "No virtual service matches" in client.get(url + "?q=nothing-like-it").content.decode()


def test_it_pages_and_filters_the_hosts_of_a_director(client, viewer):
    director = Director.objects.create(name="big", masquerade=False)
    _services(director, live.HOSTS_PAGE + 3)
    client.force_login(viewer)
    url = reverse("director_detail", args=[director.pk])
    html = client.get(url).content.decode()
    assert _rows(html, HOST_ROW) == live.HOSTS_PAGE
    hosts = re.findall(HOST_ROW + r"([0-9.]+)</code>", html)
    assert hosts[:3] == ["192.168.100.1", "192.168.100.2", "192.168.100.3"]  # IP order, not text order
    assert _rows(client.get(url + "?hosts=2").content.decode(), HOST_ROW) == 3
    assert re.findall(
        HOST_ROW + r"([0-9.]+)</code>", client.get(url + "?host=192.168.100.5").content.decode()
    ) == [
        "192.168.100.5",
        *(f"192.168.100.{n}" for n in range(50, 54)),
    ]


def test_it_lists_only_this_directors_servers_of_a_shared_host():
    """The page's servers are looked up by address alone (its index) and kept by director in Python."""
    a = Director.objects.create(name="a", masquerade=False)
    b = Director.objects.create(name="b", masquerade=False)
    for director, ports in ((a, (80, 443)), (b, (80, 8080, 8443))):
        for port in ports:
            vs = VirtualService.objects.create(
                director=director, protocol="tcp", address="10.0.0.1", port=port
            )
            RealServer.objects.create(service=vs, address="192.168.1.7", port=port)
    for director, count in ((a, 2), (b, 3)):
        (host,) = live.hosts(director).object_list
        assert host.address == "192.168.1.7" and len(host.servers) == count
        assert {s.service.director_id for s in host.servers} == {director.pk}


@pytest.mark.parametrize("prefix", ["\x00", "192.168.100.1\x00", "x", "<b>", "%", "_"])
def test_it_matches_no_host_with_a_prefix_no_address_has(client, viewer, prefix):
    director = Director.objects.create(name="big", masquerade=False)
    _services(director, 3)
    client.force_login(viewer)
    response = client.get(reverse("director_detail", args=[director.pk]), {"host": prefix})
    assert response.status_code == 200 and _rows(response.content.decode(), HOST_ROW) == 0
    assert "No real-server address starts with" in response.content.decode()


@pytest.mark.usefixtures("fresh_celery_pools")
def test_it_keeps_the_page_after_a_host_action(client, operator):
    director = Director.objects.create(name="big", masquerade=False)
    _services(director, live.SERVICES_PAGE + 7)
    client.force_login(operator)
    url = reverse("host_action", args=[director.pk]) + "?page=2"
    response = client.post(url, {"address": "192.168.100.1", "action": "drain"}, headers=HX)
    html = response.content.decode()
    assert response.status_code == 200 and _rows(html, SERVICE_ROW) == 7
    assert f'hx-get="{reverse("director_detail", args=[director.pk])}?page=2"' in html
    assert RealServer.objects.get(address="192.168.100.1").admin_state == "draining"


def test_it_pages_the_reals_of_a_service(client, viewer, demo):
    service = demo.services.get(port=80)
    _reals(service, live.REALS_PAGE + 3)
    total = service.reals.count()
    client.force_login(viewer)
    url = reverse("service_detail", args=[service.pk])
    html = client.get(url).content.decode()
    assert _rows(html, REAL_ROW) == live.REALS_PAGE and f"of {total}" in html
    last = client.get(url + "?page=2", headers=HX).content.decode()
    assert _rows(last, REAL_ROW) == total - live.REALS_PAGE
    assert f'hx-get="{url}?page=2"' in last


def test_it_counts_every_real_of_a_paged_service(client, viewer, demo):
    service = demo.services.get(port=80)
    _reals(service, live.REALS_PAGE + 3)
    RealServer.objects.filter(service=service).update(health="up")
    total = service.reals.count()
    client.force_login(viewer)
    html = client.get(reverse("service_detail", args=[service.pk])).content.decode()
    assert f"{total}/{total} healthy" in html


def test_it_lists_services_with_problems_first_on_a_crowded_overview(client, viewer):
    director = Director.objects.create(name="big", masquerade=False)
    made = _services(director, live.OVERVIEW_SERVICES + 5)
    RealServer.objects.filter(service__director=director).update(health="up")
    RealServer.objects.filter(service=made[-1]).update(health="down")  # sorts last by address
    client.force_login(viewer)
    html = client.get(reverse("overview")).content.decode()
    assert _rows(html, SERVICE_ROW) == live.OVERVIEW_SERVICES
    assert made[-1].label in html
    assert f"{live.OVERVIEW_SERVICES} of {live.OVERVIEW_SERVICES + 5} virtual services shown" in html


def test_it_lists_only_the_first_drift_lines(client, viewer, demo, redis_client):
    lines = [f"-a -t 10.0.0.1:80 -r 10.1.0.{n}:80 (not desired)" for n in range(live.DRIFT_SHOWN + 9)]
    write_snapshot(redis_client, demo, drift=lines)
    client.force_login(viewer)
    html = client.get(reverse("director_detail", args=[demo.pk]), headers=HX).content.decode()
    assert _rows(html, r"<li><code>-a -t 10\.0\.0\.1") == live.DRIFT_SHOWN
    assert f"{live.DRIFT_SHOWN + 9} differences in all" in html


@pytest.mark.parametrize("name", ["overview", "director_detail", "service_detail"])
@pytest.mark.parametrize("headers", [{}, HX], ids=["page", "fragment"])
def test_it_keeps_the_query_count_flat_past_a_page(
    client, viewer, django_assert_max_num_queries, name, headers
):
    """From a few rows to several pages of services, reals and hosts: not one query more."""
    director = Director.objects.create(name="big", masquerade=False)
    _services(director, 3)
    service = director.services.first()
    _reals(service, 3)
    client.force_login(viewer)
    url = reverse(
        name, args={"overview": [], "director_detail": [director.pk], "service_detail": [service.pk]}[name]
    )
    with CaptureQueriesContext(connection) as few:
        assert client.get(url, headers=headers).status_code == 200
    _services(director, live.SERVICES_PAGE * 2 + live.OVERVIEW_SERVICES, start=3)
    _reals(service, live.REALS_PAGE * 2, start=3)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get(url, headers=headers).status_code == 200


@given(st.lists(st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)), max_size=60, unique=True))
def test_it_orders_hosts_like_ipaddress_does(addresses):
    """The fast sort of the hosts table is ipaddress's order: IPv4 before IPv6, numeric within each."""
    texts = [str(a) for a in addresses]
    assert live.ip_sorted(texts) == [str(a) for a in sorted(addresses, key=lambda a: (a.version, int(a)))]
