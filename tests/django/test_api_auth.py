"""API authentication: a bearer token or nothing; sessions do not count, revoked tokens stop working."""

import pytest
from django.urls import reverse

from clusters.models import ApiToken

pytestmark = pytest.mark.django_db


def _bearer(secret):
    return {"Authorization": f"Bearer {secret}"}


def test_it_answers_401_json_without_a_token(client, demo):
    response = client.get(reverse("api_directors"))
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert "Bearer" in response.json()["error"] and response["WWW-Authenticate"].startswith("Bearer")


def test_it_answers_401_for_an_unknown_token_or_another_scheme(client, viewer, demo):
    ApiToken.issue(viewer)
    for headers in (_bearer("umw_not-a-token"), _bearer(""), {"Authorization": "Basic dmlld2VyOnB3"}):
        response = client.get(reverse("api_directors"), headers=headers)
        assert response.status_code == 401, headers
        assert response.json() == {"error": "Invalid or revoked token."}


def test_it_answers_401_for_a_revoked_token(client, viewer, demo):
    token, secret = ApiToken.issue(viewer)
    assert client.get(reverse("api_directors"), headers=_bearer(secret)).status_code == 200
    token.revoked = token.created
    token.save()
    assert client.get(reverse("api_directors"), headers=_bearer(secret)).status_code == 401


def test_it_answers_401_when_the_tokens_user_is_deactivated(client, viewer, demo):
    _, secret = ApiToken.issue(viewer)
    viewer.is_active = False
    viewer.save()
    assert client.get(reverse("api_directors"), headers=_bearer(secret)).status_code == 401


def test_it_ignores_a_logged_in_session(client, operator, demo):
    """Cookies are not credentials here: that is what makes the API's csrf_exempt safe."""
    client.force_login(operator)
    assert client.get(reverse("api_directors")).status_code == 401


def test_it_records_when_a_token_was_last_used(client, viewer, demo):
    token, secret = ApiToken.issue(viewer)
    assert token.last_used is None
    client.get(reverse("api_directors"), headers=_bearer(secret))
    token.refresh_from_db()
    assert token.last_used is not None


def test_it_answers_403_json_for_a_user_without_view_rights(client, django_user_model, demo):
    nobody = django_user_model.objects.create_user("nobody")
    _, secret = ApiToken.issue(nobody)
    response = client.get(reverse("api_directors"), headers=_bearer(secret))
    assert response.status_code == 403 and "clusters.view_director" in response.json()["error"]


def test_it_answers_405_json_for_the_wrong_method(client, viewer, demo):
    _, secret = ApiToken.issue(viewer)
    response = client.put(reverse("api_directors"), headers=_bearer(secret))
    assert response.status_code == 405 and response["Allow"] == "GET, POST"
    assert client.post(reverse("api_job", args=[1]), headers=_bearer(secret))["Allow"] == "GET"
