"""The row's job badge polls pending -> applied/failed and stops polling when the agent has answered."""

import pytest
from django.urls import reverse

from clusters import ingest, services
from clusters.models import RealServer

pytestmark = pytest.mark.django_db
HX = {"HX-Request": "true"}


@pytest.fixture
def job(demo, operator):
    rs1 = RealServer.objects.get(service__director=demo, address="192.168.1.4", port=80)
    return services.drain(rs1, operator)


def test_it_keeps_polling_while_pending(client, viewer, job):
    client.force_login(viewer)
    response = client.get(reverse("job_status", args=[job.pk]), headers=HX)
    assert response.status_code == 200 and "pending" in response.content.decode()
    assert "hx-trigger" in response.content.decode()


def test_it_stops_polling_once_applied(client, viewer, job, demo):
    ingest.apply_entry(
        {
            "director": demo.name,
            "kind": "apply",
            "id": "x1",
            "data": f'{{"revision": {job.revision}, "job_id": {job.pk}}}',
        },
        ingest._Lookup(),
        demo.name,
    )
    client.force_login(viewer)
    response = client.get(reverse("job_status", args=[job.pk]), headers=HX)
    assert response.status_code == 286
    html = response.content.decode()
    assert "applied" in html and "hx-trigger" not in html


def test_it_shows_the_error_of_a_failed_apply(client, viewer, job, demo):
    ingest.apply_entry(
        {
            "director": demo.name,
            "kind": "apply",
            "id": "x2",
            "data": f'{{"revision": {job.revision}, "job_id": {job.pk}, "errors": ["EEXIST on add dest"]}}',
        },
        ingest._Lookup(),
        demo.name,
    )
    client.force_login(viewer)
    response = client.get(reverse("job_status", args=[job.pk]), headers=HX)
    assert response.status_code == 286 and "failed: EEXIST on add dest" in response.content.decode()
