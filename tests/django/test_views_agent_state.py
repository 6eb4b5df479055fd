"""The overview tells up / stale / down from the heartbeat's age (AGENT_STALE_AFTER, AGENT_DOWN_AFTER)."""

import json
import time

import pytest
from django.urls import reverse

from director import keys

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("age, state", [(1, "up"), (30, "stale"), (600, "down")])
def test_it_derives_the_agent_state_from_the_heartbeat(
    client, viewer, demo, redis_client, settings, age, state
):
    settings.AGENT_STALE_AFTER, settings.AGENT_DOWN_AFTER = 15, 60
    redis_client.set(keys.heartbeat_key(demo.name), json.dumps({"time": time.time() - age, "revision": 0}))
    client.force_login(viewer)
    html = client.get(reverse("overview")).content.decode()
    assert f"badge agent-{state}" in html and f"agent {state}" in html


def test_it_shows_a_director_that_is_behind_its_desired_revision(client, viewer, demo):
    demo.desired_revision, demo.applied_revision = 4, 3
    demo.save()
    client.force_login(viewer)
    assert "applying r4 (has r3)" in client.get(reverse("overview")).content.decode()
