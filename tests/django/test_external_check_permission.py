"""An external check runs a program as root on the director: creating or changing one needs its own
permission, not every admin's; the import preview and the service page show the exact command."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from clusters.models import Director, VirtualService

pytestmark = pytest.mark.django_db

CF = """virtual=172.16.10.60:80
\treal=192.168.1.4:80 masq
\tchecktype=external
\tcheckcommand="/usr/lib/ultramonkey/checks/check_web"
"""


def _grant(user):
    user.user_permissions.add(Permission.objects.get(codename="change_external_check"))
    return type(user).objects.get(pk=user.pk)  # a fresh permission cache


def _edit_to_external(client, vs):
    data = {
        "name": vs.name,
        "protocol": vs.protocol,
        "address": vs.address,
        "port": vs.port,
        "family": vs.family,
        "scheduler": vs.scheduler,
        "checktype": "external",
        "external_program": "/usr/lib/ultramonkey/checks/check_web --strict",
    }
    form = client.get(reverse("service_edit", args=[vs.pk])).context["form"]
    payload = {k: v for k, v in form.initial.items() if v is not None and not isinstance(v, list | tuple)}
    payload.update(data)
    return client.post(reverse("service_edit", args=[vs.pk]), payload)


def test_an_admin_without_the_permission_cannot_set_an_external_check(client, admin_user, demo):
    vs = demo.services.get(port=80)
    client.force_login(admin_user)
    response = _edit_to_external(client, vs)
    assert response.status_code == 403
    vs.refresh_from_db()
    assert vs.checktype != "external" and vs.external_program == ""


def test_with_the_permission_it_is_saved_and_the_service_page_shows_the_command(client, admin_user, demo):
    vs = demo.services.get(port=80)
    client.force_login(_grant(admin_user))
    assert _edit_to_external(client, vs).status_code == 302
    vs.refresh_from_db()
    assert vs.external_program == "/usr/lib/ultramonkey/checks/check_web --strict"
    page = client.get(reverse("service_detail", args=[vs.pk])).content.decode()
    assert "/usr/lib/ultramonkey/checks/check_web --strict VIP VPORT RIP RPORT" in page


def test_the_import_preview_shows_the_command_and_the_import_needs_the_permission(client, admin_user):
    director = Director.objects.create(name="lb1", masquerade=False)
    client.force_login(admin_user)
    payload = {"director": director.pk, "format": "auto", "text": CF, "hosts": ""}
    preview = client.post(reverse("io_import"), payload)
    assert "/usr/lib/ultramonkey/checks/check_web VIP VPORT RIP RPORT" in preview.content.decode()
    client.post(reverse("io_import_confirm"), {"token": preview.context["token"]})
    assert not VirtualService.objects.filter(director=director).exists()
    client.force_login(_grant(admin_user))
    preview = client.post(reverse("io_import"), payload)
    client.post(reverse("io_import_confirm"), {"token": preview.context["token"]})
    assert (
        VirtualService.objects.get(director=director).external_program
        == "/usr/lib/ultramonkey/checks/check_web"
    )
