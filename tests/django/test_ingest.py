"""Agent reports in Redis become rows: events once each, health flips, applied revisions, heartbeats."""

import json
import time

import pytest

from clusters import ingest, services
from clusters.models import Director, Event, RealServer
from director import keys
from director.events import EventLog
from director.keys import dest_key_for, service_key_for

pytestmark = pytest.mark.django_db


def _rs1(director):
    return RealServer.objects.get(service__director=director, service__port=80, address="192.168.1.4")


def test_it_records_a_health_flip_on_the_real_server(demo, redis_client, tmp_path):
    rs1 = _rs1(demo)
    log = EventLog(str(tmp_path / "ev.jsonl"), demo.name)
    log.emit(
        "check",
        "rs1 down",
        health="down",
        service=service_key_for(rs1.service),
        real=dest_key_for(rs1),
        data={"reason": "HTTP 503", "latency": 0.012},
    )
    log.flush(redis_client)
    assert ingest.ingest() == 1
    rs1.refresh_from_db()
    assert (rs1.health, rs1.health_reason, rs1.health_latency) == ("down", "HTTP 503", 0.012)
    event = Event.objects.get(kind="check")
    assert event.server == rs1 and event.service == rs1.service and event.director == demo


def test_it_never_stores_a_resent_event_twice(demo, redis_client, tmp_path):
    log = EventLog(str(tmp_path / "ev.jsonl"), demo.name)
    ev = log.emit("agent", "started")
    log.flush(redis_client)
    redis_client.xadd(keys.EVENTS_STREAM, ev)  # the agent crashed after XADD, before truncating its buffer
    assert ingest.ingest() == 2
    assert Event.objects.filter(source_id=ev["id"]).count() == 1


def test_it_marks_the_apply_job_applied_and_advances_the_revision(
    demo, redis_client, tmp_path, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        job = services.drain(_rs1(demo))
    job.refresh_from_db()
    assert job.status == "pending"  # queued on director.lab1 in the real Redis
    assert redis_client.llen("director.lab1") == 1
    log = EventLog(str(tmp_path / "ev.jsonl"), demo.name)
    log.emit("apply", "applied", data={"revision": job.revision, "job_id": job.pk, "ops": 1, "errors": []})
    log.flush(redis_client)
    ingest.ingest()
    job.refresh_from_db()
    demo.refresh_from_db()
    assert job.status == "applied" and demo.applied_revision == job.revision and demo.in_sync


def test_it_marks_the_job_failed_with_the_agents_error(demo, redis_client, tmp_path):
    job = services.enable(_rs1(demo))
    log = EventLog(str(tmp_path / "ev.jsonl"), demo.name)
    log.emit(
        "apply",
        "failed",
        level="error",
        data={"revision": job.revision, "job_id": job.pk, "ops": 0, "errors": ["add dest: EINVAL"]},
    )
    log.flush(redis_client)
    ingest.ingest()
    job.refresh_from_db()
    assert job.status == "failed" and "EINVAL" in job.error


def test_it_does_not_let_an_old_flip_overwrite_a_newer_one(demo, redis_client):
    rs1 = _rs1(demo)
    base = {
        "director": demo.name,
        "kind": "check",
        "service": service_key_for(rs1.service),
        "real": dest_key_for(rs1),
        "message": "",
        "level": "info",
    }
    now = time.time()
    redis_client.xadd(keys.EVENTS_STREAM, {**base, "id": "a", "time": now, "health": "up", "data": "{}"})
    redis_client.xadd(
        keys.EVENTS_STREAM, {**base, "id": "b", "time": now - 60, "health": "down", "data": "{}"}
    )
    ingest.ingest()
    rs1.refresh_from_db()
    assert rs1.health == "up"


def test_it_turns_heartbeats_into_agent_state(demo, redis_client):
    redis_client.set(keys.heartbeat_key(demo.name), json.dumps({"time": time.time(), "revision": 0}))
    ingest.refresh_heartbeats()
    assert Director.objects.get(pk=demo.pk).state == "up"
    redis_client.set(keys.heartbeat_key(demo.name), json.dumps({"time": time.time() - 3600, "revision": 0}))
    Director.objects.filter(pk=demo.pk).update(last_seen=None)
    ingest.refresh_heartbeats()
    assert Director.objects.get(pk=demo.pk).state == "down"
