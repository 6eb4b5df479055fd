"""Garbage written into Redis by one director shows as that director's "bad report" and breaks nothing else."""

import json

import pytest
from django.urls import reverse

from clusters.models import ApiToken, Director, RealServer
from director import keys

from .snapshots import dest, write_snapshot

pytestmark = pytest.mark.django_db

GARBAGE = {
    "not JSON": "{nope",
    "deep nesting": "[" * 50_000,
    "a list": "[1, 2]",
    "a string time": json.dumps({"time": "yesterday", "revision": 1}),
    "an infinite time": '{"time": 1e400}',
}


@pytest.fixture
def two(demo, redis_client):
    """lab1 (the demo) reporting well, and lab2 with the same services, whose keys the test spoils."""
    good = demo
    bad = Director.objects.create(name="lab2", masquerade=False)
    for vs in good.services.all():
        reals = list(vs.reals.all())
        vs.pk, vs.director = None, bad
        vs.save()
        for r in reals:
            r.pk, r.service = None, vs
            r.save()
    rs = RealServer.objects.get(service__director=good, service__port=80, address="192.168.1.4")
    write_snapshot(redis_client, good, {rs: dest(rs, active=17)})
    return good, bad


def _pages_and_api(client, viewer, director):
    _, secret = ApiToken.issue(viewer)
    auth = {"Authorization": f"Bearer {secret}"}
    client.force_login(viewer)
    service = director.services.get(port=80)
    answers = {
        url: client.get(url) for url in
        (reverse("overview"), reverse("director_detail", args=[director.pk]),
         reverse("service_detail", args=[service.pk]))
    }  # fmt: skip
    for url in (reverse("api_directors"), reverse("api_director", args=[director.pk]),
                reverse("api_service", args=[service.pk]), reverse("metrics")):  # fmt: skip
        answers[url] = client.get(url, headers=auth)
    return answers


@pytest.mark.parametrize("garbage", GARBAGE.values(), ids=GARBAGE.keys())
def test_it_shows_a_bad_heartbeat_and_snapshot_as_bad_report_and_the_others_as_usual(
    client, viewer, two, redis_client, garbage
):
    good, bad = two
    redis_client.set(keys.heartbeat_key(bad.name), garbage)
    redis_client.set(keys.stats_key(bad.name), garbage)
    answers = _pages_and_api(client, viewer, bad)
    assert {url: r.status_code for url, r in answers.items()} == dict.fromkeys(answers, 200)
    overview = answers[reverse("overview")].content.decode()
    assert overview.count('data-stat="bad-report"') == 1  # lab2 only
    assert "heartbeat" in answers[reverse("director_detail", args=[bad.pk])].content.decode()
    listed = {d["name"]: d for d in answers[reverse("api_directors")].json()}
    assert listed["lab1"]["report_problem"] is None and listed["lab1"]["agent_status"] == "up"
    assert listed["lab2"]["report_problem"].startswith("heartbeat")
    metrics = answers[reverse("metrics")].content.decode()
    assert 'umw_agent_up{director="lab1"} 1' in metrics


def test_it_keeps_the_good_parts_of_a_snapshot_with_one_bad_real_server(client, viewer, two, redis_client):
    good, bad = two
    rs4, rs5 = RealServer.objects.filter(service__director=bad, service__port=80).order_by("address")
    snap = write_snapshot(redis_client, bad, {rs4: dest(rs4, active=5)})
    snap["services"][keys.service_key_for(rs5.service)]["dests"][keys.dest_key_for(rs5)]["active"] = "lots"
    redis_client.set(keys.stats_key(bad.name), json.dumps(snap))
    answers = _pages_and_api(client, viewer, bad)
    assert {url: r.status_code for url, r in answers.items()} == dict.fromkeys(answers, 200)
    detail = answers[reverse("api_director", args=[bad.pk])].json()
    assert "real server" in detail["report_problem"] and "active is not a number" in detail["report_problem"]
    reals = {r["address"]: r for r in answers[reverse("api_service", args=[rs4.service_id])].json()["reals"]}
    assert reals["192.168.1.4"]["live"]["active"] == 5 and reals["192.168.1.5"]["live"] is None
