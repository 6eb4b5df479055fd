"""Director events survive a Redis outage on disk and go out in order once Redis answers."""

import json

import redis

from director import keys
from director.events import EventLog


def test_it_keeps_events_on_disk_while_redis_is_down(tmp_path):
    log = EventLog(str(tmp_path / "events.jsonl"), "d1")
    log.emit("check", "rs1 down", health="down")
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, socket_timeout=0.2)
    assert log.flush(dead) == 0
    assert [e["message"] for e in log.pending()] == ["rs1 down"]


def test_it_sends_the_backlog_in_order_when_redis_returns(tmp_path, redis_client):
    log = EventLog(str(tmp_path / "events.jsonl"), "d1")
    for i in range(5):
        log.emit("check", f"event {i}")
    assert log.flush(redis_client) == 5
    entries = redis_client.xrange(keys.events_stream("d1"))
    assert [f["message"] for _, f in entries] == [f"event {i}" for i in range(5)]
    assert log.pending() == []


def test_it_skips_a_torn_last_line(tmp_path):
    path = tmp_path / "events.jsonl"
    log = EventLog(str(path), "d1")
    log.emit("agent", "started", data={"pid": 1})
    with open(path, "a") as f:
        f.write('{"id": "half')
    events = log.pending()
    assert len(events) == 1 and json.loads(events[0]["data"]) == {"pid": 1}
