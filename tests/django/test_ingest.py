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
    redis_client.xadd(
        keys.events_stream(demo.name), ev
    )  # the agent crashed after XADD, before truncating its buffer
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
    redis_client.xadd(
        keys.events_stream(demo.name), {**base, "id": "a", "time": now, "health": "up", "data": "{}"}
    )
    redis_client.xadd(
        keys.events_stream(demo.name), {**base, "id": "b", "time": now - 60, "health": "down", "data": "{}"}
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


# -- attribution: a director's stream speaks for that director only ------------------------------------------
@pytest.fixture
def other(demo):
    from clusters.demo import load_demo

    director, _ = load_demo("lab2")
    return director


def _forge(redis_client, stream_of: str, fields: dict) -> None:
    redis_client.xadd(
        keys.events_stream(stream_of), {"time": time.time(), "level": "info", "message": "", **fields}
    )


def test_it_drops_an_entry_that_claims_another_director(demo, other, redis_client):
    rs1 = _rs1(other)
    _forge(
        redis_client,
        demo.name,
        {
            "id": "f1",
            "director": other.name,
            "kind": "check",
            "health": "up",
            "service": service_key_for(rs1.service),
            "real": dest_key_for(rs1),
            "data": "{}",
        },
    )
    ingest.ingest()
    rs1.refresh_from_db()
    assert rs1.health != "up" and not Event.objects.filter(source_id="f1").exists()
    dropped = Event.objects.get(director=demo, level="error")
    assert "claims to be from director 'lab2'" in dropped.message


def test_it_drops_an_applied_revision_never_sent_and_a_job_of_another_director(demo, other, redis_client):
    job = services.enable(_rs1(other))
    for n, data in enumerate(
        [{"revision": 999999999, "errors": []}, {"revision": 0, "job_id": job.pk, "errors": []}]
    ):
        _forge(
            redis_client,
            demo.name,
            {"id": f"r{n}", "director": demo.name, "kind": "apply", "data": json.dumps(data)},
        )
    ingest.ingest()
    demo.refresh_from_db()
    job.refresh_from_db()
    assert demo.applied_revision < 999999999 and job.status == "pending"
    messages = sorted(e.message for e in Event.objects.filter(director=demo, level="error"))
    assert "applied revision 999999999 was never sent to it" in messages[0]
    assert f"job {job.pk} is not one of its jobs" in messages[1]


def test_a_director_cannot_flip_a_real_server_of_another_director(demo, other, redis_client):
    rs1 = _rs1(other)  # the same service/real ids exist on both demo directors
    _forge(
        redis_client,
        demo.name,
        {
            "id": "x1",
            "director": demo.name,
            "kind": "check",
            "health": "down",
            "service": service_key_for(rs1.service),
            "real": dest_key_for(rs1),
            "data": "{}",
        },
    )
    ingest.ingest()
    rs1.refresh_from_db()
    assert rs1.health != "down"  # the flip landed on lab1's own row
    assert _rs1(demo).health == "down"
