"""Export downloads per director and format; the landing page lists them; the command prints the same text."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from clusters.exporters.fromdb import export_director

pytestmark = pytest.mark.django_db


def test_it_downloads_each_format(client, viewer, demo):
    client.force_login(viewer)
    for fmt, needle in (
        ("ldirectord", "virtual=172.16.10.52:80"),
        ("keepalived", "virtual_server 172.16.10.52 80 {"),
        ("ipvsadm", "-A -t 172.16.10.52:80 -s rr"),
    ):
        response = client.get(reverse("io_export", args=[demo.pk, fmt]))
        assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
        assert response["Content-Disposition"].startswith('attachment; filename="lab1-')
        assert needle in response.content.decode()


def test_it_lists_export_links_for_every_director(client, viewer, demo):
    client.force_login(viewer)
    page = client.get(reverse("io_index")).content.decode()
    assert reverse("io_export", args=[demo.pk, "keepalived"]) in page
    assert reverse("io_import") not in page  # viewers cannot import


def test_it_shows_the_import_button_to_admins(client, admin_user):
    client.force_login(admin_user)
    assert reverse("io_import") in client.get(reverse("io_index")).content.decode()


def test_it_needs_a_login_and_a_known_format(client, viewer, demo):
    assert client.get(reverse("io_export", args=[demo.pk, "ipvsadm"])).status_code == 302
    client.force_login(viewer)
    assert client.get(reverse("io_export", args=[demo.pk, "nginx"])).status_code == 404


def test_it_exports_from_the_command_line(demo, tmp_path):
    out = StringIO()
    call_command("export_config", "--director", "lab1", "--format", "ipvsadm", stdout=out)
    assert out.getvalue() == export_director(demo, "ipvsadm")[1]
    target = tmp_path / "ld.cf"
    call_command("export_config", "--director", "lab1", "--format", "ldirectord", "--output", str(target))
    assert target.read_text() == export_director(demo, "ldirectord")[1]
    with pytest.raises(CommandError, match="unknown director"):
        call_command("export_config", "--director", "nosuch", "--format", "ipvsadm")


def test_it_redacts_check_passwords_and_radius_secrets_for_viewers(client, viewer, admin_user, demo):
    vs = demo.services.get(port=80)
    vs.check_service, vs.login, vs.passwd, vs.secret = (
        "radius",
        "monitor",
        "s3cr3t-pw",
        "radius-shared-secret",
    )
    vs.save()
    client.force_login(viewer)
    seen = client.get(reverse("io_export", args=[demo.pk, "ldirectord"])).content.decode()
    assert "s3cr3t-pw" not in seen and "radius-shared-secret" not in seen
    assert 'passwd="REDACTED"' in seen and 'secret="REDACTED"' in seen and 'login="monitor"' in seen
    client.force_login(admin_user)
    full = client.get(reverse("io_export", args=[demo.pk, "ldirectord"])).content.decode()
    assert 'passwd="s3cr3t-pw"' in full and 'secret="radius-shared-secret"' in full
