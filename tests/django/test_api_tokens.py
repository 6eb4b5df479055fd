"""create_token prints a working secret once and stores only its hash; revoke_token stops it."""

import hashlib
import io

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from clusters.models import ApiToken, Event

pytestmark = pytest.mark.django_db


def _create(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("create_token", *args, stdout=out, stderr=err)
    return out.getvalue().strip(), err.getvalue()


def test_it_prints_a_token_that_works_and_stores_only_its_hash(client, viewer, demo):
    secret, note = _create("viewer", "--name", "prometheus")
    assert secret.startswith("umw_") and len(secret) > 40 and "\n" not in secret
    token = ApiToken.objects.get()
    assert (token.user, token.name, token.prefix) == (viewer, "prometheus", secret[:8])
    assert token.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    stored = [str(v) for v in ApiToken.objects.values_list(flat=False).get()]
    assert not any(secret in v for v in stored)
    assert "shown once" in note and token.prefix in note
    response = client.get(reverse("api_directors"), headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 200
    assert "created for viewer" in Event.objects.get(kind="user").message


def test_it_refuses_an_unknown_user():
    with pytest.raises(CommandError, match="no user"):
        _create("ghost")


def test_it_revokes_by_prefix(client, viewer, demo):
    secret, _ = _create("viewer")
    out = io.StringIO()
    call_command("revoke_token", secret[:8], stdout=out)
    assert "Revoked" in out.getvalue()
    assert ApiToken.objects.get().revoked is not None
    response = client.get(reverse("api_directors"), headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 401
    with pytest.raises(CommandError, match="no live token"):
        call_command("revoke_token", secret[:8])


def test_it_refuses_an_ambiguous_prefix(viewer):
    a, _ = ApiToken.issue(viewer)
    b, _ = ApiToken.issue(viewer)
    ApiToken.objects.filter(pk=b.pk).update(prefix=a.prefix)
    with pytest.raises(CommandError, match="2 live tokens"):
        call_command("revoke_token", a.prefix)
    assert not ApiToken.objects.filter(revoked__isnull=False).exists()
