"""The central side reads the agent's per-service records (director/keys.py, format 2) through the gateway:
one service without the rest of its director, whole directors, summaries, sparklines filled between the points
the agent wrote on change - and garbage in one record or one director's keys breaks nothing else."""

import json

import pytest
from django.urls import reverse

from clusters import agents, reports
from clusters.models import RealServer
from director import keys

from .snapshots import dest, write_snapshot
from .test_bad_reports import GARBAGE, _pages_and_api
from .test_bad_reports import two as two  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db


def _rs(director, address, port=80):
    return RealServer.objects.get(service__director=director, service__port=port, address=address)


def test_it_reads_one_service_without_the_rest_of_the_director(demo, redis_client):
    rs = _rs(demo, "192.168.1.4")
    write_snapshot(redis_client, demo, {rs: dest(rs, active=9, inbps=100)}, revision=7)
    sid = keys.service_key_for(rs.service)
    one = agents.service_snapshot(demo.name, [sid])
    assert list(one["services"]) == [sid] and one["revision"] == 7
    assert one["services"][sid]["dests"][keys.dest_key_for(rs)]["active"] == 9
    assert one["services"][sid]["dests"][keys.dest_key_for(rs)]["stats"]["inbps"] == 100
    whole = agents.snapshot(demo.name)
    assert whole["services"][sid] == one["services"][sid] and len(whole["services"]) == demo.services.count()
    sums = agents.service_summaries(demo.name)["services"]
    assert sums[sid]["stats"]["active"] == 9 and set(sums) == set(whole["services"])
    assert agents.service_snapshot(demo.name, ["tcp|10.9.9.9|1"])["services"] == {}
    assert agents.service_snapshot("nobody", [sid]) is None


def test_it_fills_a_sparkline_between_the_points_written_on_change(demo, redis_client):
    rs = _rs(demo, "192.168.1.4")
    write_snapshot(redis_client, demo)
    meta = json.loads(redis_client.get(keys.stats_key(demo.name)))
    meta["epoch"] = meta["time"] - 20  # an agent that has been running for a while
    redis_client.set(keys.stats_key(demo.name), json.dumps(meta))
    key = keys.history_key(demo.name, keys.dest_key_for(rs))
    redis_client.delete(key)
    for t, active in ((meta["time"] - 10, 1), (meta["time"] - 4, 5)):
        redis_client.rpush(key, json.dumps({"t": t, "active": active}))
    line = agents.histories(demo.name, [keys.dest_key_for(rs)])[keys.dest_key_for(rs)]
    # a point per 2 s round, from the epoch (all zero then) to the last round
    assert [p["active"] for p in line] == [0] * 5 + [1] * 3 + [5] * 3


@pytest.mark.parametrize("garbage", GARBAGE.values(), ids=GARBAGE.keys())
def test_it_shows_a_garbage_record_as_bad_report_and_the_rest_as_usual(
    client,
    viewer,
    two,
    redis_client,
    garbage,  # noqa: F811
):
    good, bad = two
    rs4 = _rs(bad, "192.168.1.4")
    write_snapshot(redis_client, bad, {rs4: dest(rs4, active=5)})
    web = keys.service_key_for(rs4.service)
    other = next(keys.service_key_for(vs) for vs in bad.services.exclude(pk=rs4.service_id))
    redis_client.hset(keys.service_stats_key(bad.name), other, garbage)
    answers = _pages_and_api(client, viewer, bad)
    assert {url: r.status_code for url, r in answers.items()} == dict.fromkeys(answers, 200)
    snap = agents.snapshot(bad.name)
    assert snap["services"][web]["dests"][keys.dest_key_for(rs4)]["active"] == 5
    if not garbage.startswith("{"):  # not an object at all: left out and named (an object is an empty record)
        assert other not in snap["services"] and snap[reports.PROBLEM]
    reals = {r["address"]: r for r in answers[reverse("api_service", args=[rs4.service_id])].json()["reals"]}
    assert reals["192.168.1.4"]["live"]["active"] == 5
    listed = {d["name"]: d for d in answers[reverse("api_directors")].json()}
    assert listed["lab1"]["report_problem"] is None and listed["lab1"]["agent_status"] == "up"
    assert 'umw_agent_up{director="lab1"} 1' in answers[reverse("metrics")].content.decode()
