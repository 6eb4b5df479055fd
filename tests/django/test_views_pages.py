"""Every page renders for a viewer; with HX-Request the same URL returns only its live fragment."""

import pytest
from django.urls import reverse

from .snapshots import write_snapshot

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_viewer(client, viewer):
    client.force_login(viewer)
    return client


def _pages(demo):
    vs = demo.services.get(port=80)
    return {
        "overview": reverse("overview"),
        "director": reverse("director_detail", args=[demo.pk]),
        "service": reverse("service_detail", args=[vs.pk]),
        "logs": reverse("logs"),
    }


def test_it_sends_anonymous_users_to_the_login_page(client, demo):
    response = client.get(reverse("overview"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_it_renders_every_page_with_navigation(client_viewer, demo):
    for name, url in _pages(demo).items():
        response = client_viewer.get(url)
        html = response.content.decode()
        assert response.status_code == 200, name
        assert "<html" in html and 'href="/logs/"' in html and "htmx.min.js" in html, name
        assert '"X-CSRFToken"' in html, name


def test_it_returns_only_the_fragment_for_htmx(client_viewer, demo):
    fragments = {"overview": 'id="directors"', "director": 'id="live"', "service": 'id="reals"'}
    urls = _pages(demo)
    for name, marker in fragments.items():
        response = client_viewer.get(urls[name], headers={"HX-Request": "true"})
        html = response.content.decode()
        assert response.status_code == 200
        assert "<html" not in html and html.strip().startswith("<div " + marker), name


def test_it_polls_only_while_visible_and_slowly_while_nothing_can_change(client_viewer, demo, redis_client):
    url = _pages(demo)["service"]
    assert 'hx-trigger="every 10s, umw:visible"' in client_viewer.get(url).content.decode()
    write_snapshot(redis_client, demo)
    assert 'hx-trigger="every 2s, umw:visible"' in client_viewer.get(url).content.decode()
    js = client_viewer.get("/static/js/app.js")
    body = b"".join(js.streaming_content) if js.streaming else js.content
    assert b"visibilityState" in body and b"htmx:beforeRequest" in body


def test_it_lists_services_with_healthy_and_total(client_viewer, demo):
    html = client_viewer.get(reverse("overview")).content.decode()
    assert "TCP 172.16.10.52:80" in html and "TCP 172.16.10.52:5500" in html
    assert "0/2" in html  # nothing reported yet: health unknown


def test_it_shows_the_agent_as_never_seen_without_a_heartbeat(client_viewer, demo):
    html = client_viewer.get(reverse("overview")).content.decode()
    assert "agent unknown" in html
