"""Importing a corpus file creates exactly the rows the plan describes, records an Event and pushes once."""

import json

import pytest

from clusters.importers.apply import apply_plan
from clusters.models import ApplyJob, Event, RealServer, VirtualService
from tests.configs import parse_file

pytestmark = pytest.mark.django_db


@pytest.fixture
def director(db):
    from clusters.models import Director

    return Director.objects.create(name="lb1", masquerade=False)


def test_it_creates_the_services_and_reals_of_the_classic_config(
    director, admin_user, redis_client, django_capture_on_commit_callbacks
):
    plan = parse_file("ldirectord-ultramonkey.cf")
    with django_capture_on_commit_callbacks(execute=True):
        result = apply_plan(plan, director, user=admin_user)
    assert result.ok and len(result.created_services) == 2 and result.created_reals == 4
    web = VirtualService.objects.get(director=director, port=80)
    assert (web.scheduler, web.check_service, web.request, web.receive, web.name) == (
        "rr",
        "http",
        "/index.html",
        "Test Page",
        "Web Site",
    )
    assert (web.fallback_address, web.fallback_port, web.quiescent) == ("127.0.0.1", 80, True)
    assert RealServer.objects.get(service__port=5500, address="192.168.1.4").weight == 2
    event = Event.objects.get(kind="import")
    assert event.user == admin_user and event.director == director and "2 virtual services" in event.message
    assert ApplyJob.objects.filter(director=director).count() == 1
    body = json.loads(redis_client.lindex("director.lb1", 0))
    assert body["headers"]["task"] == "director.apply"


def test_it_writes_nothing_on_a_dry_run(director):
    result = apply_plan(parse_file("keepalived-full.conf"), director, dry_run=True)
    assert result.ok and len(result.created_services) == 10
    assert (
        not VirtualService.objects.exists() and not Event.objects.exists() and not ApplyJob.objects.exists()
    )


def test_it_replaces_the_current_services_when_asked(director):
    assert apply_plan(parse_file("ipvsadm-save.rules"), director).ok
    result = apply_plan(parse_file("ldirectord-ultramonkey.cf"), director, replace=True)
    assert result.ok and result.replaced == 8
    assert sorted(director.services.values_list("port", flat=True)) == [80, 5500]


def test_it_refuses_services_that_already_exist_on_the_director(director):
    assert apply_plan(parse_file("ldirectord-ultramonkey.cf"), director).ok
    result = apply_plan(parse_file("ipvsadm-save.rules"), director)
    assert not result.ok
    assert [m.line for m in result.errors] == [1, 4]
    assert "already has a virtual service" in result.errors[0].text
    assert director.services.count() == 2
