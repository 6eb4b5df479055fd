"""Upload -> preview (warnings with lines, nothing written) -> confirm -> created; admins only."""

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from clusters.models import Director, Event, VirtualService
from tests.configs import read

pytestmark = pytest.mark.django_db


@pytest.fixture
def director(db):
    return Director.objects.create(name="lb1", masquerade=False)


def _upload(client, director, *files, **data):
    payload = {"director": director.pk, "format": "auto", "text": "", "hosts": "", **data}
    if files:
        payload["files"] = [SimpleUploadedFile(name, read(name).encode()) for name in files]
    return client.post(reverse("io_import"), payload)


def test_it_previews_without_writing_and_imports_on_confirm(client, admin_user, director):
    # ldirectord-full.cf has an external check: importing it needs that permission too
    admin_user.user_permissions.add(Permission.objects.get(codename="change_external_check"))
    client.force_login(admin_user)
    response = _upload(client, director, "ldirectord-full.cf", "ldirectord-extra.cf", hosts=read("hosts"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Will be created" in page and "TCP 172.16.10.52:3306" in page and "TCP 172.16.10.52:443" in page
    assert "ldirectord-full.cf:34" in page  # a warning, with its line
    assert not VirtualService.objects.exists()
    token = response.context["token"]
    response = client.post(reverse("io_import_confirm"), {"token": token})
    assert response.status_code == 302 and response.url == reverse("io_done", args=[director.pk])
    assert director.services.count() == 8
    assert Event.objects.get(kind="import").user == admin_user
    done = client.get(response.url)
    assert "Imported 8 virtual services" in done.content.decode()


def test_it_accepts_pasted_text(client, admin_user, director):
    client.force_login(admin_user)
    response = _upload(client, director, text=read("ipvsadm-save.rules"))
    assert response.context["plan"].format == "ipvsadm" and response.context["token"]


def test_it_shows_errors_with_lines_and_offers_no_confirm(client, admin_user, director):
    client.force_login(admin_user)
    response = _upload(client, director, "keepalived-bad.conf")
    page = response.content.decode()
    assert "nothing will be imported" in page and "keepalived-bad.conf:6" in page
    assert response.context["token"] == "" and 'name="token"' not in page


def test_it_uses_a_preview_token_once(client, admin_user, director):
    client.force_login(admin_user)
    token = _upload(client, director, text=read("ldirectord-ultramonkey.cf")).context["token"]
    assert client.post(reverse("io_import_confirm"), {"token": token}).status_code == 302
    again = client.post(reverse("io_import_confirm"), {"token": token}, follow=True)
    assert "expired" in again.content.decode()
    assert director.services.count() == 2


def test_it_asks_for_a_file_or_text(client, admin_user, director):
    client.force_login(admin_user)
    response = _upload(client, director)
    assert "Choose a file or paste the configuration" in response.content.decode()


def test_it_lets_only_admins_import(client, operator, viewer, director):
    for user in (operator, viewer):
        client.force_login(user)
        assert client.get(reverse("io_import")).status_code == 403
        assert _upload(client, director, text=read("ipvsadm-save.rules")).status_code == 403
        assert client.post(reverse("io_import_confirm"), {"token": "x"}).status_code == 403
    assert not VirtualService.objects.exists()


def test_it_sends_anonymous_users_to_the_login_page(client):
    response = client.get(reverse("io_import"))
    assert response.status_code == 302 and "login" in response.url


def test_it_preselects_the_director_from_the_query_string(client, admin_user, director):
    other = Director.objects.create(name="lb2", masquerade=False)
    client.force_login(admin_user)
    page = client.get(reverse("io_import") + f"?director={other.pk}").content.decode()
    assert f'<option value="{other.pk}" selected>lb2</option>' in page


def test_it_reads_pasted_text_with_crlf_line_ends_as_the_file(client, admin_user, director):
    """Browsers submit a textarea with CRLF; `quiescent = yes\\r` must not be refused."""
    client.force_login(admin_user)
    text = read("ldirectord-ultramonkey.cf")
    assert "quiescent" in text
    response = _upload(client, director, text=text.replace("\n", "\r\n"))
    result = response.context["result"]
    assert result.ok, [str(m) for m in result.errors]
    assert len(result.created_services) == 2
    assert not [w for w in response.context["plan"].warnings if "CRLF" in w.text]  # pasting is not news


def test_it_reads_an_uploaded_crlf_file_and_warns_once(client, admin_user, director):
    client.force_login(admin_user)
    name = "ldirectord-ultramonkey.cf"
    payload = {"director": director.pk, "format": "auto", "text": "", "hosts": ""}
    payload["files"] = [SimpleUploadedFile(name, read(name).replace("\n", "\r\n").encode())]
    response = client.post(reverse("io_import"), payload)
    assert response.context["result"].ok
    crlf = [str(w) for w in response.context["plan"].warnings if "CRLF" in w.text]
    assert crlf == [f"{name}: Windows (CRLF) line ends: read as plain newlines"]
    assert client.post(reverse("io_import_confirm"), {"token": response.context["token"]}).status_code == 302
    assert director.services.count() == 2


def test_it_states_per_service_the_table_when_every_check_passes_and_fails(client, admin_user, director):
    client.force_login(admin_user)
    response = _upload(client, director, "oracle/ka06-quorum-sorry.conf")
    page = response.content.decode()
    assert "Every check passes: <code>192.168.1.4:8001 weight 2, 192.168.1.5:8001 weight 2</code>" in page
    # quorum lost: the sorry server replaces the live servers, the inhibited one stays at 0
    assert "Every check fails: <code>192.168.1.5:8001 weight 0, 192.168.1.9:80 weight 1</code>" in page
    assert (
        "sorry server as keepalived: replaces the live servers while their weight is below quorum 3" in page
    )
