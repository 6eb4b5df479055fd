"""Director pairs on the central side: validation, the `failover` part of both desired states, the page line."""

from __future__ import annotations

import json
import time

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


def _ha(state, since, reason="", sync=True, **extra):
    """The `ha` part of a paired agent's snapshot (director/pair.py Pair.snapshot)."""
    return {
        "state": state,
        "priority": 150 if state == "MASTER" else 100,
        "peer": "10.9.0.2",
        "since": since,
        "reason": reason,
        "keepalived": {"pid": 812, "restarts": 0, "last_exit": ""},
        "sync": {"master": sync, "backup": True},
        **extra,
    }


def _write_ha(redis_client, director, ha, conns=0):
    snap = write_snapshot(redis_client, director)
    for svc in snap["services"].values():  # the demo-free pair has no services: add one with `conns`
        svc["dests"]["x"]["active"] = conns
    if not snap["services"]:
        snap["services"] = {"tcp:x": {"dests": {"x": {"active": conns, "inactive": 0}}}}
    snap["ha"] = ha
    redis_client.set(keys.stats_key(director.name), json.dumps(snap), ex=keys.STATS_TTL)
    return snap


def test_it_shows_state_peer_priority_last_transition_and_readiness_on_the_director_page(
    client, admin_user, pair, redis_client
):
    a, b = pair
    now = time.time()
    _write_ha(redis_client, a, _ha("MASTER", now - 42, "Receive advertisement timeout"), conns=12)
    _write_ha(redis_client, b, _ha("BACKUP", now - 40, "Master received advert from 10.9.0.1"), conns=12)
    client.force_login(admin_user)
    html = " ".join(client.get(reverse("director_detail", args=[a.pk])).content.decode().split())
    assert '<span class="badge ok">MASTER</span> priority 150 · peer <a href="/directors/' in html
    assert ">lb2</a> BACKUP · last transition 4" in html and "s ago: Receive advertisement timeout" in html
    assert '<span class="badge ok">ready for a takeover</span>' in html
    assert "✓ peer lb2 seen (BACKUP)" in html and "✓ sync daemons running on both" in html
    assert "✓ BACKUP holds 12 of 12 MASTER connections" in html
    overview = " ".join(client.get(reverse("overview")).content.decode().split())
    assert 'data-stat="ha" title="priority 150; Receive advertisement timeout">MASTER</span>' in overview
    assert "peer lb2 BACKUP · since 4" in overview and "· ready</span>" in overview
    write_snapshot(redis_client, a)  # a lone director's snapshot has no "ha": no line
    assert 'data-stat="ha"' not in client.get(reverse("director_detail", args=[a.pk])).content.decode()


def test_it_says_why_a_pair_is_not_ready(client, admin_user, pair, redis_client):
    a, b = pair
    now = time.time()
    _write_ha(redis_client, a, _ha("MASTER", now - 5, sync=False), conns=9)
    client.force_login(admin_user)
    html = " ".join(client.get(reverse("director_detail", args=[a.pk])).content.decode().split())
    assert "not ready for a takeover" in html and "✗ peer lb2 not reporting" in html
    assert "✗ sync daemons not running: here, lb2" in html
    _write_ha(redis_client, b, _ha("MASTER", now - 1, "Receive advertisement timeout"), conns=0)
    html = " ".join(client.get(reverse("director_detail", args=[a.pk])).content.decode().split())
    assert "✗ peer lb2 is MASTER too: they cannot hear each other" in html
    _write_ha(redis_client, b, _ha("BACKUP", now - 1), conns=3)
    html = " ".join(client.get(reverse("director_detail", args=[a.pk])).content.decode().split())
    assert "✗ BACKUP holds 3 of 9 MASTER connections" in html
    _write_ha(redis_client, a, _ha("FAULT", now - 1, "VRRP_Script(umw_agent) failed (exited with status 1)"))
    html = " ".join(client.get(reverse("director_detail", args=[a.pk])).content.decode().split())
    assert '<span class="badge bad">FAULT</span>' in html and "VRRP_Script(umw_agent) failed" in html
