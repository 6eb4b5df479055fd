"""Writes over the API: the web pages' ModelForms fed with JSON, so the same checks and the same errors."""

import json

import pytest
from django.urls import reverse

from clusters.models import ApiToken, ApplyJob, Director, Event, RealServer, VirtualService

from .queued import last_apply
from .snapshots import fresh_celery_pools  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_celery_pools")]


def _call(client, user, method, url, payload=None):
    _, secret = ApiToken.issue(user)
    return getattr(client, method)(
        url,
        json.dumps(payload) if payload is not None else "",
        content_type="application/json",
        headers={"Authorization": f"Bearer {secret}"},
    )


def _rs(demo, address="192.168.1.4", port=80):
    return RealServer.objects.get(service__director=demo, address=address, port=port)


WEB = {
    "name": "api-web",
    "protocol": "tcp",
    "address": "172.16.10.60",
    "port": 8080,
    "scheduler": "wlc",
    "checktype": "negotiate",
    "check_service": "http",
    "request": "/health",
    "receive": "ok",
    "checkinterval": 3,
}


def test_it_creates_a_service_and_its_reals(
    client, admin_user, demo, redis_client, django_capture_on_commit_callbacks
):
    url = reverse("api_director_services", args=[demo.pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = _call(client, admin_user, "post", url, WEB)
    assert response.status_code == 201, response.content
    vs = VirtualService.objects.get(name="api-web")
    got = response.json()
    assert got["id"] == vs.pk and got["director"] == demo.pk and got["reals"] == []
    assert (vs.address, vs.port, vs.scheduler, vs.request, vs.checkinterval) == (
        "172.16.10.60",
        8080,
        "wlc",
        "/health",
        3,
    )
    assert vs.enabled  # a default the body did not name stays the model's default
    event = Event.objects.get(kind="user", service=vs)
    assert event.user == admin_user and event.message.startswith("created virtual service")
    assert ApplyJob.objects.filter(director=demo, user=admin_user).count() == 1
    assert any(s["port"] == 8080 for s in last_apply(redis_client, "director.lab1")["services"])

    url = reverse("api_service_reals", args=[vs.pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = _call(client, admin_user, "post", url, {"address": "192.168.1.9", "weight": 3})
    assert response.status_code == 201, response.content
    rs = RealServer.objects.get(service=vs)
    assert (rs.address, rs.port, rs.weight, rs.forwarding) == ("192.168.1.9", 8080, 3, "masq")
    assert response.json()["id"] == rs.pk and response.json()["weight"] == 3
    assert Event.objects.filter(kind="user", server=rs, user=admin_user).exists()
    assert ApplyJob.objects.filter(director=demo).count() == 2
    (svc,) = [s for s in last_apply(redis_client, "director.lab1")["services"] if s["port"] == 8080]
    assert [r["address"] for r in svc["reals"]] == ["192.168.1.9"]


@pytest.mark.parametrize(
    "change, field",
    [
        ({"port": 70000}, "port"),
        ({"port": "http"}, "port"),
        ({"scheduler": "fastest"}, "scheduler"),
        ({"address": "172.16.10.999"}, "address"),
        ({"protocol": "fwmark", "address": None, "fwmark": 7}, "port"),
    ],
)
def test_it_refuses_a_bad_service_naming_the_field(client, admin_user, demo, change, field):
    url = reverse("api_director_services", args=[demo.pk])
    response = _call(client, admin_user, "post", url, {**WEB, **change})
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert field in errors and errors[field][0]
    assert not VirtualService.objects.filter(name="api-web").exists() and not ApplyJob.objects.exists()


def test_it_refuses_a_firewall_mark_service_with_a_port_as_the_form_does(client, admin_user, demo):
    from clusters.forms import VirtualServiceForm

    payload = {**WEB, "protocol": "fwmark", "address": None, "fwmark": 7}
    response = _call(client, admin_user, "post", reverse("api_director_services", args=[demo.pk]), payload)
    page = VirtualServiceForm({**{k: v for k, v in payload.items() if v is not None}, "director": demo.pk})
    assert not page.is_valid()
    assert response.json()["errors"]["port"] == page.errors["port"]


@pytest.mark.parametrize(
    "payload, field", [({"weight": 70000}, "weight"), ({"address": "nohost"}, "address")]
)
def test_it_refuses_a_bad_real_server_naming_the_field(client, admin_user, demo, payload, field):
    vs = VirtualService.objects.get(director=demo, port=80)
    url = reverse("api_service_reals", args=[vs.pk])
    response = _call(client, admin_user, "post", url, {"address": "192.168.1.9", **payload})
    assert response.status_code == 400 and field in response.json()["errors"]
    assert vs.reals.count() == 2


def test_it_names_unknown_fields(client, admin_user, demo):
    url = reverse("api_director_services", args=[demo.pk])
    response = _call(client, admin_user, "post", url, {**WEB, "colour": "blue", "director": 99})
    assert response.status_code == 400
    assert sorted(response.json()["errors"]) == ["colour", "director"]


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_it_refuses_a_create_without_the_add_permission(client, request, demo, role):
    user = request.getfixturevalue(role)
    vs = VirtualService.objects.get(director=demo, port=80)
    for url, payload in (
        (reverse("api_director_services", args=[demo.pk]), WEB),
        (reverse("api_service_reals", args=[vs.pk]), {"address": "192.168.1.9"}),
        (reverse("api_directors"), {"name": "lab9"}),
    ):
        response = _call(client, user, "post", url, payload)
        assert response.status_code == 403 and "add_" in response.json()["error"]
    assert not Event.objects.exists() and not ApplyJob.objects.exists()


def test_it_patches_the_weight_and_pushes(
    client, admin_user, demo, redis_client, django_capture_on_commit_callbacks
):
    rs1 = _rs(demo)
    with django_capture_on_commit_callbacks(execute=True):
        response = _call(client, admin_user, "patch", reverse("api_server", args=[rs1.pk]), {"weight": 9})
    assert response.status_code == 200, response.content
    assert response.json()["weight"] == 9 and response.json()["address"] == "192.168.1.4"
    rs1.refresh_from_db()
    assert (rs1.weight, rs1.port, rs1.forwarding) == (9, 80, "masq")  # the rest kept
    event = Event.objects.get(kind="user", server=rs1)
    assert event.user == admin_user and event.data == {"changed": ["weight"]}
    assert ApplyJob.objects.get().user == admin_user
    (web,) = [s for s in last_apply(redis_client, "director.lab1")["services"] if s["port"] == 80]
    assert {r["address"]: r["weight"] for r in web["reals"]}["192.168.1.4"] == 9


def test_it_patches_a_service_keeping_the_rest(client, admin_user, demo):
    vs = VirtualService.objects.get(director=demo, port=80)
    response = _call(client, admin_user, "patch", reverse("api_service", args=[vs.pk]), {"scheduler": "wrr"})
    assert response.status_code == 200, response.content
    vs.refresh_from_db()
    assert (vs.scheduler, vs.request, vs.quiescent, vs.enabled) == ("wrr", "/index.html", True, True)
    assert len(response.json()["reals"]) == 2
    bad = _call(client, admin_user, "patch", reverse("api_service", args=[vs.pk]), {"port": 0})
    assert bad.status_code == 400 and "port" in bad.json()["errors"]


def test_it_refuses_an_operator_patch_and_delete(client, operator, demo):
    rs1 = _rs(demo)
    url = reverse("api_server", args=[rs1.pk])
    assert _call(client, operator, "patch", url, {"weight": 9}).status_code == 403
    assert _call(client, operator, "delete", url).status_code == 403
    rs1.refresh_from_db()
    assert rs1.weight == 1


def test_it_deletes_a_real_server_and_a_service(client, admin_user, demo):
    rs1 = _rs(demo)
    assert _call(client, admin_user, "delete", reverse("api_server", args=[rs1.pk])).status_code == 204
    assert not RealServer.objects.filter(pk=rs1.pk).exists()
    vs = VirtualService.objects.get(director=demo, port=5500)
    assert _call(client, admin_user, "delete", reverse("api_service", args=[vs.pk])).status_code == 204
    assert not VirtualService.objects.filter(pk=vs.pk).exists()
    assert Event.objects.filter(kind="user", user=admin_user, message__startswith="deleted").count() == 2
    assert ApplyJob.objects.filter(director=demo).count() == 2
    assert _call(client, admin_user, "delete", reverse("api_service", args=[vs.pk])).status_code == 404


def test_it_creates_and_patches_a_director(client, admin_user, db):
    payload = {"name": "lab7", "wan_interface": "wan", "lan_subnet": "192.168.7.0/24"}
    response = _call(client, admin_user, "post", reverse("api_directors"), payload)
    assert response.status_code == 201, response.content
    d = Director.objects.get(name="lab7")
    assert response.json()["id"] == d.pk and response.json()["services"] == []
    assert d.masquerade and d.manage_vips and d.ha_priority == 100
    url = reverse("api_director", args=[d.pk])
    response = _call(client, admin_user, "patch", url, {"description": "seven"})
    assert response.status_code == 200 and response.json()["description"] == "seven"
    bad = _call(client, admin_user, "patch", url, {"lan_subnet": ""})
    assert bad.status_code == 400 and list(bad.json()["errors"]) == ["lan_subnet"]
    assert ApplyJob.objects.filter(director=d).count() == 2


def test_it_decommissions_a_deleted_director(
    client, admin_user, demo, redis_client, django_capture_on_commit_callbacks
):
    revision = demo.desired_revision
    with django_capture_on_commit_callbacks(execute=True):
        response = _call(client, admin_user, "delete", reverse("api_director", args=[demo.pk]))
    assert response.status_code == 204
    assert not Director.objects.filter(pk=demo.pk).exists()
    desired = last_apply(redis_client, "director.lab1")
    assert desired["revision"] == revision + 1 and desired["services"] == [] and desired["vips"] == []
    assert Event.objects.get(message__startswith="deleted director lab1").user == admin_user


def _raw(client, user, method, url, raw: str | bytes):
    _, secret = ApiToken.issue(user)
    return getattr(client, method)(
        url, raw, content_type="application/json", headers={"Authorization": f"Bearer {secret}"}
    )


@pytest.mark.parametrize(
    "raw, status, field, message",
    [
        ("[" * 50_000, 400, "body", "Not valid JSON"),
        ('{"name": "x", "address": {"a": 1}}', 400, "address", "not an object"),
        ('{"name": "x", "address": [[1]]}', 400, "address", "not nested"),
        ('{"name": "x", "port": 1e400}', 400, "port", "finite number"),
        ('{"name": "x", "name": "\\ud800"}', 400, "name", "lone surrogate"),
        (b"\xff\xfe{}", 400, "body", "Not valid JSON"),
        ('{"name": "' + "x" * 70_000 + '"}', 413, "body", "larger than 64 KiB"),
        ('{"address": 0, "port": 80}', 400, "address", "valid IPv4 or IPv6"),
        ('{"address": "172.16.10.61", "port": "²0"}', 400, "port", "whole number"),
    ],
)
def test_it_refuses_malformed_bodies_naming_the_field(client, admin_user, demo, raw, status, field, message):
    response = _raw(client, admin_user, "post", reverse("api_director_services", args=[demo.pk]), raw)
    assert response.status_code == status and response["Content-Type"] == "application/json"
    errors = response.json()["errors"]
    assert message in " ".join(errors[field]), errors
    assert VirtualService.objects.count() == 2 and not Event.objects.exists()


def test_it_answers_unknown_urls_and_overlong_ids_with_json_404(client, viewer):
    _, secret = ApiToken.issue(viewer)
    for url in ("/api/v1/directors/" + "9" * 40, "/api/v1/nothing", "/api/v1/servers/1/explode"):
        response = client.get(url, headers={"Authorization": f"Bearer {secret}"})
        assert response.status_code == 404 and "error" in response.json(), url
