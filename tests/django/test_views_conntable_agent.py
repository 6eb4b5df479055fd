"""The connection-table round trip through Redis: a stand-in agent (a real Celery worker in a thread,
consuming queue director.<name> with the agent's task name and query code) answers, and the page prints it."""

import pytest
from django.urls import reverse

from .conntables import line, proc_text, stand_in_agent
from .snapshots import fresh_celery_pools  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_celery_pools")]
VIP = "172.16.10.52"


@pytest.fixture
def agent(redis_server, demo, tmp_path):
    proc = tmp_path / "ip_vs_conn"
    lines = [
        line(f"10.0.0.{1 + i % 3}", 40000 + i, VIP, 80, "192.168.1.4", 80, "ESTABLISHED", 890 - i)
        for i in range(150)
    ]
    lines.append(line("10.0.0.9", 50000, VIP, 5500, "192.168.1.5", 5500, "TIME_WAIT", 30))
    proc.write_text(proc_text(lines))
    with stand_in_agent(redis_server, demo.name, demo.queue, str(proc)) as asked:
        yield asked


def test_it_shows_the_agents_connection_table_with_counts_and_talkers(client, viewer, demo, agent, settings):
    settings.UMW_CONNTABLE_TIMEOUT = 5
    client.force_login(viewer)
    vs = demo.services.get(port=80)
    url = reverse("connections", args=[demo.pk])
    html = client.get(url, {"service": vs.pk, "client": "10.0.0.0/24"}).content.decode()
    assert "showing 100 of 150 connections matching (151 in the table)" in html
    assert "<td>10.0.0.2:40001</td><td>172.16.10.52:80</td><td>192.168.1.4:80</td>" in html
    assert ">14:49<" in html  # 889 s as ipvsadm -Lnc prints it
    assert agent == [
        {"service": "tcp|172.16.10.52|80", "client": "10.0.0.0/24", "real": "", "state": "", "port": None,
         "limit": 100}
    ]  # fmt: skip
    assert '<dt>ESTABLISHED</dt><dd><a href="?service=' in html
    assert 'data-count-real="192.168.1.4:80">150</td>' in html
    assert (
        f'?service={vs.pk}&amp;client=10.0.0.0%2F24&amp;real=192.168.1.4%3A80">192.168.1.4:80 in TCP' in html
    )
    assert f'?service={vs.pk}&amp;client=10.0.0.1">10.0.0.1</a> <span class="muted">50</span>' in html
    assert html.count('data-talkers="service"') == 1 and html.count('data-talkers="real"') == 1
    more = f"{url}?service={vs.pk}&amp;client=10.0.0.0%2F24&amp;limit=150"
    assert f'id="conn-more" href="{more}"' in html and "Show 50 more" in html
    html = client.get(url, {"service": vs.pk, "client": "10.0.0.0/24", "limit": 150}).content.decode()
    assert "showing 150 of 150 connections" in html and 'id="conn-more"' not in html


def test_it_filters_by_state_and_port_through_the_agent(client, viewer, demo, agent, settings):
    settings.UMW_CONNTABLE_TIMEOUT = 5
    client.force_login(viewer)
    html = client.get(
        reverse("connections", args=[demo.pk]), {"state": "time_wait", "port": 5500}
    ).content.decode()
    assert "showing 1 of 1 connections matching (151 in the table)" in html
    assert "<td>10.0.0.9:50000</td>" in html
    assert agent[-1]["state"] == "TIME_WAIT" and agent[-1]["port"] == 5500
