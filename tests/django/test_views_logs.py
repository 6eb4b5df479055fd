"""Logs: newest first, filterable, and the poll fetches only what is newer than the last row shown."""

import pytest
from django.urls import reverse

from clusters import services
from clusters.models import RealServer

pytestmark = pytest.mark.django_db
HX = {"HX-Request": "true"}


@pytest.fixture
def as_viewer(client, viewer):
    client.force_login(viewer)
    return client


def test_it_shows_who_did_what_newest_first(as_viewer, demo, operator):
    rs1 = RealServer.objects.get(service__director=demo, address="192.168.1.4", port=80)
    services.drain(rs1, operator)
    services.enable(rs1, operator)
    html = as_viewer.get(reverse("logs")).content.decode()
    assert html.index("enable 192.168.1.4:80") < html.index("drain 192.168.1.4:80")
    assert ">operator<" in html


def test_it_polls_only_for_newer_events(as_viewer, demo):
    old = services.record("agent", "old news", director=demo)
    first = as_viewer.get(reverse("logs")).content.decode()
    assert f"after={old.pk}" in first
    new = services.record("check", "rs2 is down", director=demo, level="warning")
    response = as_viewer.get(reverse("logs"), {"after": old.pk}, headers=HX)
    html = response.content.decode()
    assert "rs2 is down" in html and "old news" not in html
    assert f"after={new.pk}" in html and 'id="log-poller"' in html and "<html" not in html


def test_it_filters_by_kind_level_director_and_server(as_viewer, demo):
    rs1 = RealServer.objects.get(service__director=demo, address="192.168.1.4", port=80)
    services.record("check", "rs1 check failed", server=rs1, level="warning")
    services.record("agent", "agent restarted", director=demo)
    assert "agent restarted" not in as_viewer.get(reverse("logs"), {"kind": "check"}).content.decode()
    html = as_viewer.get(reverse("logs"), {"level": "warning", "director": demo.pk}).content.decode()
    assert "rs1 check failed" in html and "agent restarted" not in html
    html = as_viewer.get(reverse("logs"), {"server": "192.168.1.5"}).content.decode()
    assert "rs1 check failed" not in html


def test_it_keeps_filters_in_the_poll_url(as_viewer, demo):
    html = as_viewer.get(reverse("logs"), {"kind": "check"}).content.decode()
    assert "kind=check" in html.split('id="log-poller"')[1].split(">")[0]
