"""Deleting a director tells its agent to take our services, VIPs and masquerade out of its kernel."""

import pytest

from clusters.models import Director, Event, VirtualService

from .queued import last_apply

pytestmark = pytest.mark.django_db


def test_it_sends_an_empty_newer_state_and_deletes_the_director(
    client, admin_user, demo, redis_client, django_capture_on_commit_callbacks
):
    revision = demo.desired_revision
    client.force_login(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        resp = client.post(f"/directors/{demo.pk}/delete/")
    assert resp.status_code == 302
    assert not Director.objects.filter(pk=demo.pk).exists()
    assert not VirtualService.objects.exists()
    desired = last_apply(redis_client, "director.lab1")
    assert desired["director"] == "lab1" and desired["revision"] == revision + 1
    assert desired["services"] == [] and desired["vips"] == [] and desired["masquerade"] == []
    assert desired["ip_forward"] is False  # leave the sysctl alone
    event = Event.objects.get(kind="user", message__startswith="deleted director lab1")
    assert event.user == admin_user


def test_it_asks_before_deleting(client, admin_user, demo):
    client.force_login(admin_user)
    resp = client.get(f"/directors/{demo.pk}/delete/")
    assert resp.status_code == 200 and b"removes every virtual service" in resp.content
    assert Director.objects.filter(pk=demo.pk).exists()


def test_it_refuses_an_operator(client, operator, demo):
    client.force_login(operator)
    assert client.post(f"/directors/{demo.pk}/delete/").status_code == 403
    assert Director.objects.filter(pk=demo.pk).exists()
