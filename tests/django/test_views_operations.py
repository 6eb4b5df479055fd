"""One-click operations: a POST with CSRF, permission-checked, through services.*, answered with the row."""

import json

import pytest
from django.test import Client
from django.urls import reverse

from clusters.models import ApplyJob, Event, RealServer

from .snapshots import fresh_celery_pools  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_celery_pools")]
HX = {"HX-Request": "true"}


def _rs(demo, address="192.168.1.4", port=80):
    return RealServer.objects.get(service__director=demo, address=address, port=port)


def _post(client, server, action, **data):
    return client.post(reverse("server_action", args=[server.pk, action]), data, headers=HX)


def test_it_refuses_a_forged_post_from_a_viewer(client, viewer, demo):
    client.force_login(viewer)
    rs1 = _rs(demo)
    assert _post(client, rs1, "drain").status_code == 403
    rs1.refresh_from_db()
    assert rs1.admin_state == "active" and not Event.objects.exists() and not ApplyJob.objects.exists()


def test_it_shows_no_operation_buttons_to_a_viewer(client, viewer, demo):
    client.force_login(viewer)
    html = client.get(reverse("service_detail", args=[_rs(demo).service_id])).content.decode()
    assert "/drain/" not in html and "/maintenance/" not in html and "<th>Actions</th>" not in html


def test_it_drains_for_an_operator_and_returns_the_row_with_a_pending_job(
    client, operator, demo, redis_client, django_capture_on_commit_callbacks
):
    client.force_login(operator)
    rs1 = _rs(demo)
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(client, rs1, "drain")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.strip().startswith(f'<tr id="real-{rs1.pk}"') and "Draining" in html
    rs1.refresh_from_db()
    assert rs1.admin_state == "draining"
    event = Event.objects.get(kind="user")
    assert event.user == operator and event.server == rs1 and "drain" in event.message
    job = ApplyJob.objects.get()
    assert job.status == "pending", job.error
    assert job.server == rs1 and job.user == operator
    assert f'hx-get="{reverse("job_status", args=[job.pk])}"' in html and "pending" in html
    queued = json.loads(redis_client.lindex("director.lab1", 0))
    assert queued["headers"]["task"] == "director.apply"


def test_it_needs_the_csrf_token(operator, demo):
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    assert _post(client, _rs(demo), "drain").status_code == 403


def test_it_offers_maintenance_when_drained(client, operator, demo):
    client.force_login(operator)
    rs1 = _rs(demo)
    html = _post(client, rs1, "drain").content.decode()
    assert "Maintenance when drained" in html
    html = _post(client, rs1, "drain", then="maintenance").content.decode()
    rs1.refresh_from_db()
    assert rs1.after_drain == "maintenance" and "→ maintenance" in html


def test_it_puts_in_maintenance_and_enables(client, operator, demo):
    client.force_login(operator)
    rs1 = _rs(demo)
    _post(client, rs1, "maintenance")
    rs1.refresh_from_db()
    assert rs1.admin_state == "maintenance"
    html = _post(client, rs1, "enable").content.decode()
    rs1.refresh_from_db()
    assert rs1.admin_state == "active" and "badge state-active" in html


def test_it_changes_the_weight_inline(client, operator, demo):
    client.force_login(operator)
    rs1 = _rs(demo)
    _post(client, rs1, "weight", weight="5")
    rs1.refresh_from_db()
    assert rs1.weight == 5 and Event.objects.filter(data__action="weight").exists()


def test_it_shows_an_invalid_weight_in_the_row(client, operator, demo):
    client.force_login(operator)
    rs1 = _rs(demo)
    html = _post(client, rs1, "weight", weight="70000").content.decode()
    rs1.refresh_from_db()
    assert rs1.weight == 1 and "Weight must be a whole number" in html and not ApplyJob.objects.exists()


def test_it_drains_a_whole_host_from_the_director_page(client, operator, demo):
    client.force_login(operator)
    response = client.post(
        reverse("host_action", args=[demo.pk]), {"address": "192.168.1.5", "action": "drain"}
    )
    assert response.status_code == 302
    states = RealServer.objects.filter(service__director=demo, address="192.168.1.5")
    assert set(states.values_list("admin_state", flat=True)) == {"draining"}
    assert ApplyJob.objects.count() == 1


def test_it_refuses_a_host_action_from_a_viewer(client, viewer, demo):
    client.force_login(viewer)
    response = client.post(
        reverse("host_action", args=[demo.pk]), {"address": "192.168.1.5", "action": "drain"}
    )
    assert response.status_code == 403


def test_it_polls_fast_while_an_apply_is_pending(client, operator, demo):
    client.force_login(operator)
    rs1 = _rs(demo)
    url = reverse("service_detail", args=[rs1.service_id])
    assert 'data-poll="10"' in client.get(url).content.decode()
    _post(client, rs1, "drain")
    assert 'data-poll="2"' in client.get(url).content.decode()


def test_it_answers_an_htmx_host_action_with_the_live_fragment(client, operator, demo):
    client.force_login(operator)
    response = client.post(
        reverse("host_action", args=[demo.pk]),
        {"address": "192.168.1.4", "action": "maintenance"},
        headers=HX,
    )
    html = response.content.decode()
    assert response.status_code == 200 and html.strip().startswith('<div id="live"')
    assert "maintenance 192.168.1.4: revision 1 sent to lab1." in html and "2 maintenance" in html
    assert "r1 pending" in html
