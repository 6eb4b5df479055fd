"""Connection table: the agent's answer is shaped like `ipvsadm -Lnc`; a silent director is a message, not a 500."""

import time

import pytest
from django.urls import reverse

from clusters.live import format_expire, parse_conntable


def _row(client, real, state, expire):
    """One row as director/conntable.py answers it (parsed from /proc/net/ip_vs_conn)."""
    return {
        "proto": "tcp",
        "client": client,
        "virtual": "172.16.10.52:80",
        "real": real,
        "state": state,
        "expire": expire,
    }


def test_it_formats_expire_like_ipvsadm():
    assert (
        format_expire(899) == "14:59" and format_expire(5.7) == "00:05" and format_expire("01:02") == "01:02"
    )


def test_it_parses_the_agents_answer_and_counts_what_matched():
    answer = {
        "total": 3,
        "matched": 2,
        "shown": 1,
        "rows": [_row("10.0.0.1:5000", "192.168.1.4:80", "ESTABLISHED", 899)],
    }
    table = parse_conntable(answer)
    assert (table.shown, table.total, table.in_table, table.error) == (1, 2, 3, "")
    assert table.rows[0] == {
        "protocol": "TCP",
        "state": "ESTABLISHED",
        "expire": "14:59",
        "client": "10.0.0.1:5000",
        "virtual": "172.16.10.52:80",
        "destination": "192.168.1.4:80",
    }


def test_it_parses_proc_style_fields_and_brackets_ipv6():
    answer = [
        {
            "pro": "UDP",
            "state": "UDP",
            "expire": 120,
            "caddr": "2001:db8::1",
            "cport": 53,
            "vaddr": "2001:db8::53",
            "vport": 53,
            "daddr": "2001:db8:1::4",
            "dport": 53,
        }
    ]
    row = parse_conntable(answer).rows[0]
    assert row["client"] == "[2001:db8::1]:53" and row["destination"] == "[2001:db8:1::4]:53"
    assert row["expire"] == "02:00"


def test_it_reports_an_agent_error_and_an_odd_answer():
    assert parse_conntable({"error": "no /proc/net/ip_vs_conn"}).error == "no /proc/net/ip_vs_conn"
    assert parse_conntable("nonsense").error


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
def test_it_returns_the_table_fragment_for_htmx(client, viewer, demo, settings):
    settings.UMW_CONNTABLE_TIMEOUT = 0.2
    client.force_login(viewer)
    vs = demo.services.first()
    response = client.get(
        reverse("connections", args=[demo.pk]), {"service": vs.pk}, headers={"HX-Request": "true"}
    )
    html = response.content.decode()
    assert html.strip().startswith('<section class="card" id="conntable">') and "<html" not in html
