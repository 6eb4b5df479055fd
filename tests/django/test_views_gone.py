"""A poll for something deleted gets HTTP 286 (htmx stops polling) and a note; a plain GET gets a 404."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db
HX = {"HX-Request": "true"}


def test_it_stops_polling_a_deleted_service(client, viewer, demo):
    client.force_login(viewer)
    vs = demo.services.first()
    url = reverse("service_detail", args=[vs.pk])
    vs.delete()
    response = client.get(url, headers=HX)
    assert response.status_code == 286 and "no longer exists" in response.content.decode()
    assert client.get(url).status_code == 404


def test_it_stops_polling_a_deleted_director(client, viewer, demo):
    client.force_login(viewer)
    url = reverse("director_detail", args=[demo.pk])
    demo.delete()
    assert client.get(url, headers=HX).status_code == 286


def test_it_stops_polling_a_job_that_is_gone(client, viewer, db):
    client.force_login(viewer)
    assert client.get(reverse("job_status", args=[999]), headers=HX).status_code == 286
