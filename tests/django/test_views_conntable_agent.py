"""The connection-table round trip through Redis: a stand-in agent (a real Celery worker in a thread,
consuming queue director.<name> with the agent's task name) answers, and the page prints its rows."""

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from django.urls import reverse

from .snapshots import fresh_celery_pools  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_celery_pools")]
ASKED = []


@pytest.fixture
def agent(redis_url, demo):
    # No Django fix-up: a real agent has no Django, and the fix-up would close the test's DB connection.
    app = Celery("stand_in_director", broker=redis_url, backend=redis_url, set_as_current=False, fixups=[])
    app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"])

    @app.task(name="director.conntable")
    def conntable(service=None, client="", real="", state="", limit=500):
        ASKED.append({"service": service, "client": client, "limit": limit})
        rows = [
            {
                "proto": "tcp",
                "client": f"10.0.0.{i}:{40000 + i}",
                "virtual": "172.16.10.52:80",
                "real": "192.168.1.4:80",
                "state": "ESTABLISHED",
                "expire": 890 - i,
            }
            for i in range(1, 4)
        ]
        return {"total": 10, "matched": 3, "shown": 3, "rows": rows}

    with start_worker(app, queues=[demo.queue], perform_ping_check=False, shutdown_timeout=5):
        yield
    ASKED.clear()


def test_it_shows_the_agents_connection_table(client, viewer, demo, agent, settings):
    settings.UMW_CONNTABLE_TIMEOUT = 5
    client.force_login(viewer)
    vs = demo.services.get(port=80)
    html = client.get(
        reverse("connections", args=[demo.pk]), {"service": vs.pk, "client": "10.0.0."}
    ).content.decode()
    assert "showing 3 of 3 connections matching (10 in the table)" in html
    assert "<td>10.0.0.1:40001</td><td>172.16.10.52:80</td><td>192.168.1.4:80</td>" in html
    assert ">14:49<" in html  # 889 s as ipvsadm -Lnc prints it
    assert ASKED == [{"service": "tcp|172.16.10.52|80", "client": "10.0.0.", "limit": 500}]
