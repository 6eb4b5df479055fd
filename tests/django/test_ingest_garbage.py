"""Garbage in the event stream: stored as what it is, never trusted into rows, and the stream goes on."""

import json

import pytest

from clusters import ingest
from clusters.models import Event, RealServer
from director import keys
from director.keys import dest_key_for, service_key_for

pytestmark = pytest.mark.django_db


def _rs1(director):
    return RealServer.objects.get(service__director=director, service__port=80, address="192.168.1.4")


def test_it_stores_garbage_entries_as_what_they_are_and_goes_on(demo, redis_client):
    """Bad kinds, levels, health values and data from one agent neither stop the stream nor reach rows."""
    rs1 = _rs1(demo)
    base = {"director": demo.name, "service": service_key_for(rs1.service), "real": dest_key_for(rs1)}
    bad = [
        {**base, "id": "g1", "kind": "check", "health": "maybe", "data": "[1, 2", "time": "1e400"},
        {**base, "id": "g2", "kind": "zzz", "level": "panic", "data": "[" * 50_000},
        {**base, "id": "g3", "kind": "apply", "data": json.dumps({"revision": "x", "job_id": 1e300})},
        {
            **base,
            "id": "g4",
            "kind": "check",
            "health": "down",
            "data": json.dumps({"reason": 5, "latency": "slow"}),
        },
    ]
    for fields in bad:
        redis_client.xadd(keys.events_stream(demo.name), fields)
    assert ingest.ingest() == 4
    stored = {e.source_id: e for e in Event.objects.filter(source_id__startswith="g")}
    assert sorted(stored) == ["g1", "g2", "g4"]  # g3's revision was never sent: dropped, said on the director
    dropped = Event.objects.get(director=demo, message__startswith="dropped an event")
    assert "revision x was never sent" in dropped.message and dropped.level == "error"
    assert stored["g2"].kind == "agent" and stored["g2"].level == "info"
    assert "not JSON" in stored["g1"].data["problem"]
    rs1.refresh_from_db()
    assert (rs1.health, rs1.health_reason, rs1.health_latency) == ("down", "5", None)
    demo.refresh_from_db()
    assert demo.applied_revision == 0
