"""The pair's VRRP settings (preempt, advert interval, virtual router id): validated, shared, sent to both agents."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from clusters.desired import desired_state
from clusters.forms import DirectorForm
from clusters.models import ApiToken, ApplyJob, Director
from director import vrrp

pytestmark = pytest.mark.django_db

SETTINGS = {"ha_preempt": False, "ha_interval": 0.5, "ha_vrid": 77}


def _director(name, address, **extra):
    return Director.objects.create(name=name, masquerade=False, ha_address=address, **extra)


def _form_data(d: Director, **changes) -> dict:
    form = DirectorForm(instance=d)
    data = {name: form[name].value() for name in form.fields}
    return {k: v for k, v in {**data, **changes}.items() if v is not None}


@pytest.fixture
def pair():
    a = _director("lb1", "10.9.0.1", ha_priority=150, **SETTINGS)
    b = _director("lb2", "10.9.0.2", **SETTINGS)
    a.peer = b
    a.full_clean()
    a.save()
    return a, b


def test_it_sends_the_settings_to_both_sides(pair):
    a, b = pair
    for d in (a, b):
        spec = desired_state(d).failover
        assert (spec["preempt"], spec["interval"], spec["vrid"]) == (False, 0.5, 77)
        config = vrrp.Config.from_dict(spec)  # what the agent renders keepalived's configuration from
        assert (config.preempt, config.interval, config.vrid, config.version) == (False, 0.5, 77, 3)
        assert config.secret == spec["secret"] == a.ha_secret  # the lower id's secret serves both


def test_it_defaults_to_preempt_every_second_vrrpv2_on_router_id_51(db):
    a = _director("lb1", "10.9.0.1", peer=_director("lb2", "10.9.0.2"))
    spec = desired_state(a).failover
    assert (spec["preempt"], spec["interval"], spec["vrid"]) == (True, 1.0, 51)
    config = vrrp.Config.from_dict(spec)
    assert config.version == 2 and len(config.secret) >= 8  # generated: VRRPv2's auth_pass is its first 8


@pytest.mark.parametrize("field, value", [("ha_vrid", 78), ("ha_interval", 2.0), ("ha_preempt", True)])
def test_it_refuses_a_pair_that_disagrees_naming_the_field(db, field, value):
    a = _director("lb1", "10.9.0.1", **SETTINGS)
    b = _director("lb2", "10.9.0.2", **{**SETTINGS, field: value})
    form = DirectorForm(_form_data(a, peer=b.pk), instance=a)
    assert not form.is_valid()
    assert list(form.errors) == [field] and "lb2" in form.errors[field][0]


@pytest.mark.parametrize(
    "field, value",
    [("ha_interval", 0.1), ("ha_interval", 11), ("ha_vrid", 0), ("ha_vrid", 256), ("ha_priority", 255)],
)
def test_it_refuses_an_out_of_range_setting_naming_the_field(db, field, value):
    a = _director("lb1", "10.9.0.1")
    form = DirectorForm(_form_data(a, **{field: value}), instance=a)
    assert not form.is_valid() and list(form.errors) == [field]


def test_it_keeps_the_defaults_when_a_post_leaves_them_out(client, admin_user, db):
    client.force_login(admin_user)
    response = client.post(reverse("director_create"), {"name": "lb9", "wan_interface": "eth0"})
    assert response.status_code == 302, response.content.decode()[:2000]
    d = Director.objects.get(name="lb9")
    assert (d.ha_preempt, d.ha_interval, d.ha_vrid) == (True, 1.0, 51)


def test_it_carries_a_change_to_the_peer_and_pushes_both(client, admin_user, pair):
    a, b = pair
    client.force_login(admin_user)
    data = _form_data(b, ha_interval=0.3, ha_preempt="true")  # the side that does not name the other
    response = client.post(reverse("director_edit", args=[b.pk]), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    for d in (a, b):
        d.refresh_from_db()
        assert (d.ha_preempt, d.ha_interval, d.ha_vrid) == (True, 0.3, 77)
        assert desired_state(d).failover["interval"] == 0.3
        assert ApplyJob.objects.filter(director=d).count() == 1


def test_it_shows_and_takes_the_settings_over_the_api(client, admin_user, pair):
    a, b = pair
    _, secret = ApiToken.issue(admin_user)
    response = client.patch(
        reverse("api_director", args=[a.pk]),
        json.dumps({"ha_vrid": 90, "ha_preempt": True}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert response.status_code == 200, response.content
    got = response.json()
    assert (got["peer"], got["ha_vrid"], got["ha_preempt"], got["ha_interval"]) == (b.pk, 90, True, 0.5)
    assert desired_state(Director.objects.get(pk=b.pk)).failover["vrid"] == 90
