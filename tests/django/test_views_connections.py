"""Connection table page: the agent's answer (made by director.conntable) shaped for the page; filters checked
by the agent's own parser; a silent director is a message, not a 500."""

import time

import pytest
from django.urls import reverse

from clusters.live import format_expire, parse_conntable

from .conntables import answer, line

VIP = "172.16.10.52"
LINES = [
    line("10.0.0.1", 40001, VIP, 80, "192.168.1.4", 80, "ESTABLISHED", 899),
    line("10.0.0.1", 40002, VIP, 80, "192.168.1.4", 80, "TIME_WAIT", 100),
    line("10.0.0.2", 40003, VIP, 80, "192.168.1.5", 80, "ESTABLISHED", 500),
    line("10.0.0.1", 40004, VIP, 5500, "192.168.1.5", 5500, "ESTABLISHED", 800),
]


def test_it_formats_expire_like_ipvsadm():
    assert (format_expire(899), format_expire(5.7), format_expire(None)) == ("14:59", "00:05", "")


@pytest.mark.django_db
def test_it_shapes_the_agents_answer_with_counts_and_talkers_linked_to_filters(demo):
    http = demo.services.get(port=80)
    table = parse_conntable(answer(LINES, service=f"tcp|{VIP}|80"), demo)
    assert (table.shown, table.total, table.in_table, table.error, table.more) == (3, 3, 4, "", 0)
    assert table.rows[0] == {
        "protocol": "TCP",
        "state": "ESTABLISHED",
        "expire": "14:59",
        "client": "10.0.0.1:40001",
        "virtual": f"{VIP}:80",
        "destination": "192.168.1.4:80",
    }
    assert [r["expire"] for r in table.rows] == ["14:59", "08:20", "01:40"]  # established first, then expiry
    assert [(c.label, c.n, c.query) for c in table.states] == [
        ("ESTABLISHED", 2, {"state": "ESTABLISHED"}),
        ("TIME_WAIT", 1, {"state": "TIME_WAIT"}),
    ]
    assert [(c.label, c.n, c.query) for c in table.reals] == [
        (f"192.168.1.4:80 in TCP {VIP}:80", 2, {"service": http.pk, "real": "192.168.1.4:80"}),
        (f"192.168.1.5:80 in TCP {VIP}:80", 1, {"service": http.pk, "real": "192.168.1.5:80"}),
    ]
    assert [(t.label, t.clients) for t in table.service_talkers] == [
        (f"TCP {VIP}:80", [("10.0.0.1", 2), ("10.0.0.2", 1)])
    ]
    assert [t.clients for t in table.real_talkers] == [[("10.0.0.1", 2)], [("10.0.0.2", 1)]]


@pytest.mark.django_db
def test_it_offers_more_rows_until_the_agents_cap(demo):
    many = [line("10.0.1.1", 1000 + i, VIP, 80, "192.168.1.4", 80, "ESTABLISHED", 900) for i in range(250)]
    table = parse_conntable(answer(many, limit=100), demo, limit=100)
    assert (table.shown, table.total, table.more) == (100, 250, 100)
    table = parse_conntable(answer(many, limit=200), demo, limit=200)
    assert (table.shown, table.more) == (200, 50)
    assert parse_conntable(answer(many, limit=250), demo, limit=250).more == 0


@pytest.mark.django_db
def test_it_reports_an_agent_error_and_an_odd_answer(demo):
    assert (
        parse_conntable({"error": "client: 'x' is not an address"}, demo).error
        == "client: 'x' is not an address"
    )
    assert parse_conntable("nonsense", demo).error == "unexpected answer from the director"
    assert parse_conntable([{"proto": "tcp"}], demo).error == "unexpected answer from the director"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "field,value,message",
    [
        ("client", "172.16", "&#x27;172.16&#x27; is not an address or a prefix like 172.16.10.0/24"),
        ("real", "rs1", "&#x27;rs1&#x27; is not an IP address"),
        ("state", "ESTAB-LISHED", "&#x27;ESTAB-LISHED&#x27; is not a connection state like ESTABLISHED"),
        ("port", "70000", "Ensure this value is less than or equal to 65535."),
    ],
)
def test_it_refuses_a_bad_filter_with_the_agents_message_and_asks_nothing(
    client, viewer, demo, settings, field, value, message
):
    settings.UMW_CONNTABLE_TIMEOUT = 30  # asking would wait: the answer must come from the form alone
    client.force_login(viewer)
    started = time.monotonic()
    html = client.get(reverse("connections", args=[demo.pk]), {field: value}).content.decode()
    assert message in html and "Fix the filters above" in html
    assert time.monotonic() - started < 20


@pytest.mark.django_db
def test_it_says_the_director_is_not_answering_instead_of_failing(client, viewer, demo, settings):
    settings.UMW_CONNTABLE_TIMEOUT = 0.5
    client.force_login(viewer)
    started = time.monotonic()
    response = client.get(reverse("connections", args=[demo.pk]), {"client": "10.0.0.1"})
    assert response.status_code == 200
    assert "director lab1 not answering" in response.content.decode()
    assert time.monotonic() - started < 5


@pytest.mark.django_db
def test_it_returns_the_table_fragment_polling_its_own_filters(client, viewer, demo, settings):
    settings.UMW_CONNTABLE_TIMEOUT = 0.2
    client.force_login(viewer)
    vs = demo.services.first()
    url = reverse("connections", args=[demo.pk])
    response = client.get(url, {"service": vs.pk, "state": "established"}, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert html.strip().startswith('<section class="card" id="conntable"') and "<html" not in html
    assert f'hx-get="{url}?service={vs.pk}&amp;state=established"' in html
    assert 'hx-trigger="every 2s, umw:visible"' in html and 'data-pause="conn-pause"' in html


@pytest.mark.django_db
def test_each_real_server_row_links_to_its_connections(client, viewer, demo):
    client.force_login(viewer)
    vs = demo.services.get(port=5500)
    html = client.get(reverse("service_detail", args=[vs.pk])).content.decode()
    url = reverse("connections", args=[demo.pk])
    for address in ("192.168.1.4", "192.168.1.5"):
        assert f'href="{url}?service={vs.pk}&amp;real={address}%3A5500">connections</a>' in html
