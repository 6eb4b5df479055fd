"""Read endpoints: directors, services with live numbers from the agent's snapshot in the real Redis, events."""

import pytest
from django.urls import reverse

from clusters import services
from clusters.models import ApiToken, RealServer

from .snapshots import dest, write_snapshot

pytestmark = pytest.mark.django_db


@pytest.fixture
def auth(viewer):
    _, secret = ApiToken.issue(viewer)
    return {"Authorization": f"Bearer {secret}"}


def _get(client, auth, url, **params):
    response = client.get(url, params, headers=auth)
    assert response.status_code == 200, response.content
    return response.json()


def test_it_lists_directors_with_their_agent_state(client, auth, demo, redis_client):
    write_snapshot(redis_client, demo)
    (d,) = _get(client, auth, reverse("api_directors"))
    assert d["id"] == demo.pk and d["name"] == "lab1"
    assert d["agent_status"] == "up" and d["last_seen"] is not None
    assert (d["desired_revision"], d["applied_revision"], d["in_sync"]) == (0, 0, True)
    assert sorted(d["services"]) == sorted(demo.services.values_list("pk", flat=True))


def test_it_shows_a_director_with_service_health_counts(client, auth, demo, redis_client):
    rs = RealServer.objects.get(service__port=80, address="192.168.1.5")
    write_snapshot(redis_client, demo, {rs: dest(rs, up=False, reason="timeout")}, drift=["extra dest"])
    d = _get(client, auth, reverse("api_director", args=[demo.pk]))
    by_port = {s["port"]: s for s in d["services"]}
    assert by_port[80]["label"] == "TCP 172.16.10.52:80" and by_port[80]["scheduler"] == "rr"
    assert (by_port[80]["healthy"], by_port[80]["total"]) == (1, 2)
    assert (by_port[5500]["healthy"], by_port[5500]["persistence"]) == (2, 300)
    assert d["drift"] == ["extra dest"]


def test_it_shows_live_numbers_of_each_real_server(client, auth, demo, redis_client):
    web = demo.services.get(port=80)
    rs1, rs2 = web.reals.order_by("address")
    services.drain(rs2)
    rs2.refresh_from_db()
    write_snapshot(
        redis_client,
        demo,
        {
            rs1: dest(rs1, active=12, inactive=3, persistent=1, cps=5, inbps=800, outbps=9600, latency=0.01),
            rs2: dest(rs2, active=2, up=False, reason="HTTP 503"),
        },
    )
    svc = _get(client, auth, reverse("api_service", args=[web.pk]))
    assert svc["label"] == "TCP 172.16.10.52:80"
    r1, r2 = sorted(svc["reals"], key=lambda r: r["address"])
    assert r1["live"] == {
        "active": 12,
        "inactive": 3,
        "persistent": 1,
        "cps": 5,
        "inbps": 800,
        "outbps": 9600,
        "in_kernel": True,
        "kernel_weight": 1,
    }
    assert (r1["health"], r1["health_reason"], r1["health_latency"]) == ("up", "HTTP 200", 0.01)
    assert (r2["admin_state"], r2["weight"], r2["live"]["kernel_weight"]) == ("draining", 1, 0)
    assert (r2["health"], r2["health_reason"]) == ("down", "HTTP 503")


def test_it_gives_null_live_data_when_the_agent_has_not_reported(client, auth, demo):
    svc = _get(client, auth, reverse("api_service", args=[demo.services.get(port=80).pk]))
    assert [r["live"] for r in svc["reals"]] == [None, None]
    assert {r["health"] for r in svc["reals"]} == {"unknown"}


def test_it_lists_events_newest_first_with_filters(client, auth, demo, operator):
    rs1 = RealServer.objects.filter(service__director=demo).first()
    services.drain(rs1, operator)
    services.enable(rs1, operator)
    services.record("agent", "agent started", director=demo)
    events = _get(client, auth, reverse("api_events"))
    assert [e["message"].split()[0] for e in events] == ["agent", "enable", "drain"]
    users = _get(client, auth, reverse("api_events"), kind="user", director="lab1")
    assert [e["user"] for e in users] == ["operator", "operator"] and users[0]["director"] == "lab1"
    assert _get(client, auth, reverse("api_events"), director=str(demo.pk), limit=1) == events[:1]
    newer = _get(client, auth, reverse("api_events"), after_id=events[1]["id"])
    assert [e["id"] for e in newer] == [events[0]["id"]]


@pytest.mark.parametrize(
    "params,field",
    [({"kind": "gossip"}, "kind"), ({"limit": 501}, "limit"), ({"after_id": "x"}, "after_id")],
)
def test_it_answers_400_for_bad_event_filters(client, auth, demo, params, field):
    response = client.get(reverse("api_events"), params, headers=auth)
    assert response.status_code == 400 and list(response.json()["errors"]) == [field]
