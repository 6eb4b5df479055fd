"""Every change goes through services.py: rows change, an audit Event names the user, the agent is told."""

import json

import pytest

from clusters import services
from clusters.desired import desired_state
from clusters.models import ApplyJob, Event, RealServer
from director.desired import DesiredState

from .queued import signed_payload

pytestmark = pytest.mark.django_db


def _reals(director, address):
    return RealServer.objects.filter(service__director=director, address=address)


def test_it_drains_with_an_audit_event_and_a_queued_apply(
    demo, operator, redis_client, django_capture_on_commit_callbacks
):
    rs1 = _reals(demo, "192.168.1.4").get(service__port=80)
    with django_capture_on_commit_callbacks(execute=True):
        job = services.drain(rs1, operator, then="maintenance")
    rs1.refresh_from_db()
    assert (rs1.admin_state, rs1.after_drain) == ("draining", "maintenance")
    event = Event.objects.get(kind="user")
    assert event.user == operator and "drain" in event.message and event.server == rs1
    job.refresh_from_db()
    payload = signed_payload(redis_client, "director.lab1")
    assert payload["job_id"] == job.pk and payload["revision"] == payload["state"]["revision"] == job.revision


def test_it_sends_the_whole_desired_state_with_the_new_weight(demo, operator):
    rs1 = _reals(demo, "192.168.1.4").get(service__port=80)
    services.set_weight(rs1, 7, operator)
    demo.refresh_from_db()
    state = DesiredState.from_dict(json.loads(json.dumps(desired_state(demo).to_dict())))
    web = next(s for s in state.services if s.port == 80)
    assert {r.address: r.weight for r in web.reals} == {"192.168.1.4": 7, "192.168.1.5": 1}
    assert state.revision == demo.desired_revision == 1
    assert state.masquerade == ("192.168.1.0/24",) and state.vips == ("172.16.10.52/32",)


def test_it_drains_a_host_in_every_virtual_service_with_one_push(demo, operator):
    jobs = services.host_action("192.168.1.4", "drain", operator)
    assert len(jobs) == 1
    assert set(_reals(demo, "192.168.1.4").values_list("admin_state", flat=True)) == {"draining"}
    assert set(_reals(demo, "192.168.1.5").values_list("admin_state", flat=True)) == {"active"}


def test_it_refuses_an_out_of_range_weight(demo):
    rs1 = _reals(demo, "192.168.1.4").first()
    with pytest.raises(ValueError):
        services.set_weight(rs1, 70000)


def test_it_finishes_a_drain_only_once_connections_are_gone(demo, operator):
    from director.keys import dest_key_for

    rs1 = _reals(demo, "192.168.1.4").get(service__port=80)
    services.drain(rs1, operator, then="maintenance")
    key = dest_key_for(rs1)
    assert services.finish_drains({key: {"active": 2, "inactive": 0}}, demo) == 0
    assert RealServer.objects.get(pk=rs1.pk).admin_state == "draining"
    assert services.finish_drains({key: {"active": 0, "inactive": 0, "persistent": 0}}, demo) == 1
    assert RealServer.objects.get(pk=rs1.pk).admin_state == "maintenance"
    assert ApplyJob.objects.filter(reason="drain finished").exists()


def test_it_marks_the_job_failed_when_the_broker_is_unreachable(
    demo, settings, django_capture_on_commit_callbacks
):
    import kombu.pools

    from ultramonkey_web.celery import app

    working = app.conf.broker_url
    app.pool.force_close_all()
    app._pool = None  # the producer pool was built for the working broker URL
    app.conf.broker_url = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    try:
        with django_capture_on_commit_callbacks(execute=True):
            job = services.enable(_reals(demo, "192.168.1.5").first())
    finally:  # later tests get the working broker and fresh pools back
        app.pool.force_close_all()
        app._pool = None
        app.conf.broker_url = working
        kombu.pools.reset()
    job.refresh_from_db()
    assert job.status == "failed" and "broker unreachable" in job.error
