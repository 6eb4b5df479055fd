"""Create / edit / delete through forms: errors inline, admins only, every save audited and pushed."""

import pytest
from django.urls import reverse

from clusters.models import ApplyJob, Director, Event, RealServer, VirtualService

pytestmark = pytest.mark.django_db

VS = {
    "director": None,
    "name": "smtp",
    "protocol": "tcp",
    "address": "172.16.10.52",
    "port": "25",
    "family": "4",
    "scheduler": "wlc",
    "persistence": "0",
    "enabled": "on",
    "checktype": "negotiate",
    "check_every": "0",
    "check_service": "smtp",
    "httpmethod": "GET",
    "checkinterval": "5",
    "checktimeout": "5",
    "negotiatetimeout": "5",
    "failurecount": "1",
    "quiescent": "on",
    "retries": "1",
    "delay_before_retry": "1",
    "rise": "1",
    "quorum": "1",
    "hysteresis": "0",
    "redirects": "7",
    "fallback_rule": "ldirectord",
    "fallback_forwarding": "masq",
}


def _vs(demo, **changes):
    return {**VS, "director": demo.pk, **changes}


def test_it_creates_a_virtual_service_with_history_and_a_push(client, admin_user, demo):
    client.force_login(admin_user)
    response = client.post(reverse("service_create", args=[demo.pk]), _vs(demo))
    vs = VirtualService.objects.get(port=25)
    assert response.status_code == 302 and response["Location"] == vs.get_absolute_url()
    assert Event.objects.filter(
        kind="user", service=vs, user=admin_user, message__contains="created"
    ).exists()
    job = ApplyJob.objects.get()
    assert job.reason.startswith("created virtual service") and job.director == demo


def test_it_shows_field_errors_inline(client, admin_user, demo):
    client.force_login(admin_user)
    response = client.post(reverse("service_create", args=[demo.pk]), _vs(demo, port="", address="not-an-ip"))
    html = response.content.decode()
    assert response.status_code == 200 and not VirtualService.objects.filter(name="smtp").exists()
    address = html.split('id="field-address"')[1].split('id="field-port"')[0]
    assert "Enter a valid IPv4 or IPv6 address." in address
    assert "Enter the virtual IP address." not in address  # the model's "missing" would only repeat it
    assert "Enter a port between 1 and 65535." in html.split('id="field-port"')[1]
    assert "has-error" in html.split('id="field-address"')[0][-40:]


def test_it_reports_a_duplicate_service_on_the_form(client, admin_user, demo):
    client.force_login(admin_user)
    response = client.post(reverse("service_create", args=[demo.pk]), _vs(demo, port="80"))
    assert "already has a virtual service on that address" in response.content.decode()


def test_it_groups_service_fields_sensibly(client, admin_user, demo):
    client.force_login(admin_user)
    html = client.get(reverse("service_create", args=[demo.pk])).content.decode()
    assert html.index("<legend>Service</legend>") < html.index("<legend>Health check</legend>")
    assert f'<option value="{demo.pk}" selected>' in html


def test_it_edits_a_real_server_and_pushes(client, admin_user, demo):
    client.force_login(admin_user)
    rs = RealServer.objects.get(service__director=demo, address="192.168.1.4", port=80)
    data = {
        "service": rs.service_id,
        "address": rs.address,
        "port": "80",
        "forwarding": "masq",
        "weight": "3",
        "u_threshold": "0",
        "l_threshold": "0",
        "check_port": "0",
    }
    assert client.post(reverse("server_edit", args=[rs.pk]), data).status_code == 302
    rs.refresh_from_db()
    assert rs.weight == 3
    assert Event.objects.get(kind="user").message.endswith("(weight)")
    assert ApplyJob.objects.count() == 1


def test_it_rejects_a_duplicate_real_server(client, admin_user, demo):
    client.force_login(admin_user)
    vs = demo.services.get(port=80)
    data = {
        "service": vs.pk,
        "address": "192.168.1.4",
        "port": "80",
        "forwarding": "masq",
        "weight": "1",
        "u_threshold": "0",
        "l_threshold": "0",
    }
    response = client.post(reverse("server_create", args=[vs.pk]), data)
    assert response.status_code == 200 and "already in the virtual service" in response.content.decode()


def test_it_creates_a_director_and_checks_its_subnet(client, admin_user, db):
    client.force_login(admin_user)
    data = {"name": "lb2", "wan_interface": "eth0", "masquerade": "on", "lan_subnet": ""}
    html = client.post(reverse("director_create"), data).content.decode()
    assert "Masquerading needs the LAN subnet." in html.split('id="field-lan_subnet"')[1]
    data["lan_subnet"] = "10.1.0.7/24"
    assert client.post(reverse("director_create"), data).status_code == 302
    assert Director.objects.get(name="lb2").lan_subnet == "10.1.0.0/24"


def test_it_deletes_after_confirmation(client, admin_user, demo):
    client.force_login(admin_user)
    vs = demo.services.get(port=5500)
    url = reverse("service_delete", args=[vs.pk])
    assert "Delete virtual service" in client.get(url).content.decode()
    assert client.post(url).status_code == 302
    assert not VirtualService.objects.filter(pk=vs.pk).exists()
    assert Event.objects.filter(message__startswith="deleted virtual service").exists()
    assert ApplyJob.objects.count() == 1


def test_it_refuses_forms_to_operators_and_viewers(client, operator, viewer, demo):
    for user in (operator, viewer):
        client.force_login(user)
        assert client.get(reverse("service_create", args=[demo.pk])).status_code == 403
        assert client.post(reverse("director_delete", args=[demo.pk])).status_code == 403
    assert Director.objects.filter(pk=demo.pk).exists()
