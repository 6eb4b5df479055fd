"""A live agent that is behind its desired revision gets the desired state again (a lost push heals itself)."""

import datetime as dt
import json

import pytest
from django.utils import timezone

from clusters import services
from clusters.models import ApplyJob, Director, Event
from clusters.tasks.central import follow_up
from director import keys

pytestmark = pytest.mark.django_db


def _behind(demo, seen_ago: float = 1.0) -> Director:
    """The demo director at desired r3, its agent reporting r1 and last seen `seen_ago` seconds ago."""
    Director.objects.filter(pk=demo.pk).update(
        desired_revision=3, applied_revision=1, last_seen=timezone.now() - dt.timedelta(seconds=seen_ago)
    )
    demo.refresh_from_db()
    return demo


def test_it_pushes_again_to_a_live_agent_that_is_behind(demo):
    director = _behind(demo)
    job = services.resync(director, {"time": 0, "revision": 1})
    assert job is not None and job.reason == "resync: agent at r1" and job.revision == 4
    assert Event.objects.filter(kind="apply", message__contains="runs revision 1, desired is 3").exists()


def test_it_does_not_repeat_within_the_period(demo):
    director = _behind(demo)
    assert services.resync(director, {"revision": 1}) is not None
    director.refresh_from_db()
    assert services.resync(director, {"revision": 1}) is None
    assert ApplyJob.objects.filter(reason__startswith="resync").count() == 1


def test_it_waits_for_an_apply_still_on_its_way(demo):
    director = _behind(demo)
    ApplyJob.objects.create(director=director, revision=3, reason="drain x")  # pending, just sent
    assert services.resync(director, {"revision": 1}) is None


def test_it_leaves_agents_that_are_down_or_up_to_date_alone(demo, settings):
    director = _behind(demo, seen_ago=settings.AGENT_DOWN_AFTER + 60)
    assert services.resync(director, {"revision": 1}) is None  # not reporting: it gets all on return
    director = _behind(demo)
    assert services.resync(director, {"revision": 3}) is None
    assert services.resync(director, None) is None


def test_it_runs_from_the_periodic_follow_up(demo, redis_client):
    _behind(demo)
    redis_client.set(
        keys.heartbeat_key("lab1"), json.dumps({"time": timezone.now().timestamp(), "revision": 1})
    )
    follow_up()
    assert ApplyJob.objects.filter(director=demo, reason="resync: agent at r1").count() == 1
