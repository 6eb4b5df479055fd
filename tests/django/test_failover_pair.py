"""Director pairs on the central side: validation, the `failover` part of both desired states, the page line."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from clusters.desired import desired_state
from clusters.models import ApplyJob, Director
from director import keys
from director.desired import DesiredState

from .snapshots import write_snapshot

pytestmark = pytest.mark.django_db


@pytest.fixture
def pair():
    a = Director.objects.create(name="lb1", masquerade=False, ha_address="10.9.0.1", ha_priority=150)
    b = Director.objects.create(name="lb2", masquerade=False, ha_address="10.9.0.2")
    a.peer = b
    a.full_clean()
    a.save()
    return a, b


def _errors(obj) -> dict:
    with pytest.raises(ValidationError) as exc:
        obj.full_clean()
    return exc.value.message_dict


def test_it_sends_no_failover_to_a_lone_director(demo):
    assert desired_state(demo).failover is None
    assert DesiredState.from_dict(desired_state(demo).to_dict()).failover is None


def test_it_gives_both_directors_of_a_pair_each_others_address_and_one_secret(pair):
    a, b = pair
    fa, fb = desired_state(a).failover, desired_state(b).failover  # b does not name a: still a pair
    assert (fa["local_address"], fa["peer_address"], fa["priority"]) == ("10.9.0.1", "10.9.0.2", 150)
    assert (fb["local_address"], fb["peer_address"], fb["priority"]) == ("10.9.0.2", "10.9.0.1", 100)
    assert fa["secret"] == fb["secret"] == a.ha_secret and len(a.ha_secret) >= 32
    assert a.ha_secret != b.ha_secret  # generated per director; the pair uses the lower id's
    assert DesiredState.from_dict(json.loads(json.dumps(desired_state(b).to_dict()))).failover == fb


def test_it_refuses_a_director_as_its_own_peer(pair):
    a, _ = pair
    a.peer = a
    assert "own peer" in _errors(a)["peer"][0]


def test_it_needs_failover_addresses_on_both_sides(db):
    a = Director.objects.create(name="lb1", masquerade=False)
    b = Director.objects.create(name="lb2", masquerade=False)
    a.peer = b
    assert "failover address" in _errors(a)["ha_address"][0]
    a.ha_address = "10.9.0.1"
    assert "Give lb2 its failover address" in _errors(a)["peer"][0]
    b.ha_address = "10.9.0.1"
    b.save()
    a.peer = Director.objects.get(pk=b.pk)
    assert "already uses" in _errors(a)["ha_address"][0]


def test_it_keeps_the_pair_address_required_on_the_named_side(pair):
    _, b = pair
    b.ha_address = None
    assert "failover address" in _errors(b)["ha_address"][0]


def test_it_refuses_a_third_director_in_a_pair(pair):
    a, b = pair
    c = Director.objects.create(name="lb3", masquerade=False, ha_address="10.9.0.3")
    c.peer = a
    assert "already paired" in _errors(c)["peer"][0]
    b.peer = c
    assert "already names this director" in _errors(b)["peer"][0]


def test_it_pushes_the_partner_when_the_pair_changes(client, admin_user, db):
    a = Director.objects.create(name="lb1", masquerade=False, ha_address="10.9.0.1")
    b = Director.objects.create(name="lb2", masquerade=False, ha_address="10.9.0.2")
    client.force_login(admin_user)
    data = {
        "name": "lb1",
        "wan_interface": "eth0",
        "peer": b.pk,
        "ha_address": "10.9.0.1",
        "ha_priority": 200,
    }
    response = client.post(reverse("director_edit", args=[a.pk]), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert ApplyJob.objects.filter(director=b).count() == 1
    assert desired_state(Director.objects.get(pk=b.pk)).failover["peer_address"] == "10.9.0.1"


def test_it_shows_the_ha_state_on_the_director_page(client, admin_user, pair, redis_client):
    a, _ = pair
    snap = write_snapshot(redis_client, a)
    snap["ha"] = {"state": "MASTER", "priority": 150, "peer_seen": snap["time"] - 0.4, "peer_seen_ago": 0.4}
    redis_client.set(keys.stats_key(a.name), json.dumps(snap), ex=keys.STATS_TTL)
    client.force_login(admin_user)
    html = client.get(reverse("director_detail", args=[a.pk])).content.decode()
    assert "HA: <strong>MASTER</strong> (priority 150), peer seen 0.4 s ago" in html
    write_snapshot(redis_client, a)  # a lone director's snapshot has no "ha": no line
    assert 'data-stat="ha"' not in client.get(reverse("director_detail", args=[a.pk])).content.decode()
