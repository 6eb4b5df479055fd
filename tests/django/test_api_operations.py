"""Operations over the API: token-authenticated POSTs through services.*, answered 202 with the apply job."""

import json

import pytest
from django.urls import reverse

from clusters.models import ApiToken, ApplyJob, Event, RealServer

from .snapshots import fresh_celery_pools  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_celery_pools")]


def _rs(demo, address="192.168.1.4", port=80):
    return RealServer.objects.get(service__director=demo, address=address, port=port)


def _post(client, user, url, payload=None):
    _, secret = ApiToken.issue(user)
    return client.post(
        url,
        json.dumps(payload) if payload is not None else "",
        content_type="application/json",
        headers={"Authorization": f"Bearer {secret}"},
    )


def _action(server, action):
    return reverse("api_server_action", kwargs={"pk": server.pk, "action": action})


def test_it_refuses_a_viewer_token_with_403(client, viewer, demo):
    rs1 = _rs(demo)
    response = _post(client, viewer, _action(rs1, "drain"))
    assert response.status_code == 403 and "operate_realserver" in response.json()["error"]
    rs1.refresh_from_db()
    assert rs1.admin_state == "active" and not Event.objects.exists() and not ApplyJob.objects.exists()


def test_it_drains_for_an_operator_token(
    client, operator, demo, redis_client, django_capture_on_commit_callbacks
):
    rs1 = _rs(demo)
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(client, operator, _action(rs1, "drain"), {"then": "maintenance"})
    assert response.status_code == 202, response.content
    rs1.refresh_from_db()
    assert (rs1.admin_state, rs1.after_drain) == ("draining", "maintenance")
    event = Event.objects.get(kind="user", server=rs1)
    assert event.user == operator and "drain" in event.message
    job = ApplyJob.objects.get()
    assert job.user == operator and job.server == rs1
    assert response.json()["job"] == {
        "id": job.pk,
        "status": "pending",
        "error": "",
        "revision": 1,
        "director": demo.pk,
        "server": rs1.pk,
        "created": response.json()["job"]["created"],
        "finished": None,
    }
    assert response.json()["server"] == {"id": rs1.pk, "admin_state": "draining", "weight": 1}
    queued = json.loads(redis_client.lindex("director.lab1", 0))
    assert queued["headers"]["task"] == "director.apply"


def test_it_needs_no_csrf_token_for_a_bearer_post(operator, demo):
    from django.test import Client

    response = _post(Client(enforce_csrf_checks=True), operator, _action(_rs(demo), "maintenance"))
    assert response.status_code == 202


def test_it_puts_in_maintenance_and_enables(client, operator, demo):
    rs1 = _rs(demo)
    assert (
        _post(client, operator, _action(rs1, "maintenance")).json()["server"]["admin_state"] == "maintenance"
    )
    assert _post(client, operator, _action(rs1, "enable")).json()["server"]["admin_state"] == "active"
    assert ApplyJob.objects.count() == 2


def test_it_sets_the_weight(client, operator, demo):
    rs1 = _rs(demo)
    response = _post(client, operator, _action(rs1, "weight"), {"weight": 7})
    assert response.status_code == 202 and response.json()["server"]["weight"] == 7
    rs1.refresh_from_db()
    assert rs1.weight == 7


@pytest.mark.parametrize("payload", [{"weight": 70000}, {"weight": "heavy"}, {"weight": 1.5}, {}])
def test_it_answers_400_naming_the_weight_field(client, operator, demo, payload):
    rs1 = _rs(demo)
    response = _post(client, operator, _action(rs1, "weight"), payload)
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert list(errors) == ["weight"] and errors["weight"][0]
    rs1.refresh_from_db()
    assert rs1.weight == 1 and not ApplyJob.objects.exists()


def test_it_answers_400_for_an_unknown_after_drain_step(client, operator, demo):
    response = _post(client, operator, _action(_rs(demo), "drain"), {"then": "explode"})
    assert response.status_code == 400 and list(response.json()["errors"]) == ["then"]


def test_it_answers_400_for_a_body_that_is_not_json(client, operator, demo):
    _, secret = ApiToken.issue(operator)
    response = client.post(
        _action(_rs(demo), "weight"),
        "{not json",
        content_type="application/json",
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert response.status_code == 400 and list(response.json()["errors"]) == ["body"]


def test_it_answers_404_json_for_a_missing_server(client, operator, demo):
    response = _post(client, operator, reverse("api_server_action", kwargs={"pk": 999999, "action": "drain"}))
    assert response.status_code == 404 and response["Content-Type"] == "application/json"


def test_it_drains_a_host_in_every_service_of_the_director(client, operator, demo):
    url = reverse("api_host_action", kwargs={"pk": demo.pk, "address": "192.168.1.4", "action": "drain"})
    response = _post(client, operator, url)
    assert response.status_code == 202
    (job,) = response.json()["jobs"]
    assert job["status"] == "pending" and job["director"] == demo.pk
    states = RealServer.objects.filter(service__director=demo).values_list("address", "admin_state")
    assert sorted(set(states)) == [("192.168.1.4", "draining"), ("192.168.1.5", "active")]
    assert Event.objects.get(kind="user").user == operator


def test_it_answers_400_or_404_for_a_bad_or_unknown_host(client, operator, viewer, demo):
    bad = reverse("api_host_action", kwargs={"pk": demo.pk, "address": "not-an-ip", "action": "drain"})
    assert list(_post(client, operator, bad).json()["errors"]) == ["address"]
    unknown = reverse("api_host_action", kwargs={"pk": demo.pk, "address": "10.9.9.9", "action": "enable"})
    assert _post(client, operator, unknown).status_code == 404
    assert _post(client, viewer, unknown).status_code == 403


def test_it_reports_a_job(client, operator, viewer, demo):
    job_id = _post(client, operator, _action(_rs(demo), "enable")).json()["job"]["id"]
    ApplyJob.objects.filter(pk=job_id).update(status="failed", error="agent exploded")
    _, secret = ApiToken.issue(viewer)
    response = client.get(reverse("api_job", args=[job_id]), headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 200
    assert {k: response.json()[k] for k in ("id", "status", "error", "revision", "finished")} == {
        "id": job_id,
        "status": "failed",
        "error": "agent exploded",
        "revision": 1,
        "finished": None,
    }
