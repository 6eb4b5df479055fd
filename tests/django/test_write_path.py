"""One write path: pages, API and Django admin all change things through services.py (validated, an Event naming
the user, pushed); nested objects get their parent from the URL; the read side never writes."""

from __future__ import annotations

import pytest
from django.urls import reverse

from clusters import live, services
from clusters.desired import desired_state
from clusters.models import ApiToken, ApplyJob, Director, Event, RealServer, VirtualService

from .queued import queued_states
from .snapshots import fresh_celery_pools  # noqa: F401
from .test_forms import _vs

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_celery_pools")]

REAL = {
    "address": "192.168.1.9", "port": "80", "forwarding": "masq", "weight": "1", "u_threshold": "0",
    "check_port": "0",
}  # fmt: skip


@pytest.fixture
def other(demo):
    """A second director with one service: the parent a crafted POST tries to smuggle in."""
    d = Director.objects.create(name="lb2", masquerade=False)
    return VirtualService.objects.create(director=d, address="172.16.20.1", port=80)


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser("root", password="pw-root")


def _queued(redis_client, director) -> list[dict]:
    """The desired states waiting on the director's queue, oldest first (signatures checked)."""
    return queued_states(redis_client, director.queue, director.name)


# -- nested create views -----------------------------------------------------------------------------------
def test_it_creates_a_real_server_under_the_service_in_the_url_whatever_the_post_says(
    client, admin_user, demo, other
):
    client.force_login(admin_user)
    web = demo.services.get(port=80)
    data = {**REAL, "l_threshold": "0", "service": other.pk}
    response = client.post(reverse("server_create", args=[web.pk]), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert RealServer.objects.get(address="192.168.1.9").service == web
    assert not other.reals.exists() and not ApplyJob.objects.filter(director=other.director).exists()


def test_it_creates_a_virtual_service_on_the_director_in_the_url_whatever_the_post_says(
    client, admin_user, demo, other
):
    client.force_login(admin_user)
    response = client.post(reverse("service_create", args=[demo.pk]), _vs(demo, director=other.director.pk))
    assert response.status_code == 302, response.content.decode()[:2000]
    assert VirtualService.objects.get(port=25).director == demo


def test_it_keeps_a_virtual_service_on_its_director_when_an_edit_names_another(
    client, admin_user, demo, other
):
    client.force_login(admin_user)
    vs = demo.services.get(port=5500)
    data = {**_vs(demo, name="moved?", port="5500", check_service="none"), "director": other.director.pk}
    assert client.post(reverse("service_edit", args=[vs.pk]), data).status_code == 302
    vs.refresh_from_db()
    assert (vs.name, vs.director) == ("moved?", demo)


# -- one dispatch for one-click operations -----------------------------------------------------------------
def test_it_refuses_an_unknown_after_drain_step_on_the_page_too(client, operator, demo):
    client.force_login(operator)
    rs = RealServer.objects.get(service__director=demo, address="192.168.1.4", port=80)
    html = client.post(
        reverse("server_action", args=[rs.pk, "drain"]), {"then": "explode"}, headers={"HX-Request": "true"}
    ).content.decode()
    rs.refresh_from_db()
    assert rs.admin_state == "active" and not ApplyJob.objects.exists()
    assert "Choose one of: &#x27;&#x27;, &#x27;maintenance&#x27;, &#x27;remove&#x27;." in html


@pytest.mark.parametrize(
    "state, after, offered",
    [
        ("active", "", ["drain", "maintenance"]),
        ("draining", "", ["drain:maintenance", "maintenance", "enable"]),
        ("draining", "remove", ["maintenance", "enable"]),
        ("maintenance", "", ["drain", "enable"]),
    ],
)
def test_it_offers_the_actions_that_change_something(demo, state, after, offered):
    rs = RealServer.objects.get(service__director=demo, address="192.168.1.4", port=80)
    rs.admin_state, rs.after_drain = state, after
    actions = live.RealRow(rs, None, [], None).actions
    assert [a.action + (f":{a.then}" if a.then else "") for a in actions] == offered


def test_it_renders_the_rows_actions_as_buttons(client, operator, demo):
    client.force_login(operator)
    rs = RealServer.objects.get(service__director=demo, address="192.168.1.4", port=80)
    services.drain(rs, operator)
    html = client.get(reverse("service_detail", args=[rs.service_id])).content.decode()
    row = html.split(f'id="real-{rs.pk}"')[1].split("</tr>")[0]
    assert """hx-vals='{"then": "maintenance"}'""" in row and ">Maintenance when drained</button>" in row
    assert ">Drain</button>" not in row and ">Enable</button>" in row


# -- the read side does not write --------------------------------------------------------------------------
def test_it_gives_an_old_pair_its_secret_when_pushing_not_when_reading(db):
    a = Director.objects.create(name="lb1", masquerade=False, ha_address="10.9.0.1")
    b = Director.objects.create(name="lb2", masquerade=False, ha_address="10.9.0.2", peer=a)
    Director.objects.filter(pk__in=[a.pk, b.pk]).update(ha_secret="")  # rows from before secrets existed
    a.refresh_from_db()
    assert desired_state(a).failover["secret"] == "" and not Director.objects.exclude(ha_secret="").exists()
    services.push(b)
    a.refresh_from_db()
    assert len(a.ha_secret) >= 32 and desired_state(b).failover["secret"] == a.ha_secret


# -- the Django admin --------------------------------------------------------------------------------------
def test_it_records_and_pushes_a_real_server_changed_in_the_admin(
    client, superuser, demo, redis_client, django_capture_on_commit_callbacks
):
    client.force_login(superuser)
    rs = RealServer.objects.get(service__director=demo, address="192.168.1.4", port=80)
    data = {**REAL, "address": rs.address, "service": rs.service_id, "weight": "9", "l_threshold": "0"}
    data.update(admin_state="active", after_drain="")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:clusters_realserver_change", args=[rs.pk]), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    rs.refresh_from_db()
    assert rs.weight == 9
    event = Event.objects.get(kind="user")
    assert event.user == superuser and event.server == rs and event.message.endswith("(weight)")
    assert ApplyJob.objects.get().director == demo
    (state,) = _queued(redis_client, demo)
    web = next(s for s in state["services"] if s["port"] == 80)
    assert {r["address"]: r["weight"] for r in web["reals"]} == {"192.168.1.4": 9, "192.168.1.5": 1}


def test_it_refuses_in_the_admin_what_the_pages_refuse(client, superuser, demo):
    client.force_login(superuser)
    rs = RealServer.objects.get(service__director=demo, address="192.168.1.4", port=80)
    data = {**REAL, "address": "2001:db8::4", "service": rs.service_id, "l_threshold": "0"}
    data.update(admin_state="active", after_drain="")
    response = client.post(reverse("admin:clusters_realserver_change", args=[rs.pk]), data)
    assert (
        response.status_code == 200
        and "cannot sit behind an IPv4 virtual service" in response.content.decode()
    )
    assert not Event.objects.exists() and not ApplyJob.objects.exists()


def test_it_creates_a_virtual_service_in_the_admin_through_the_services(client, superuser, demo):
    client.force_login(superuser)
    data = {
        **_vs(demo),
        "sched_flags": "[]",
        "reals-TOTAL_FORMS": "0",
        "reals-INITIAL_FORMS": "0",
    }
    response = client.post(reverse("admin:clusters_virtualservice_add"), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    vs = VirtualService.objects.get(port=25)
    assert Event.objects.get(kind="user", service=vs).user == superuser
    assert ApplyJob.objects.get().reason == f"created virtual service {vs}"


def test_it_deletes_selected_real_servers_in_the_admin_through_the_services(client, superuser, demo):
    client.force_login(superuser)
    reals = list(RealServer.objects.filter(service__director=demo, address="192.168.1.5"))
    data = {"action": "delete_selected", "post": "yes", "_selected_action": [r.pk for r in reals]}
    response = client.post(reverse("admin:clusters_realserver_changelist"), data)
    assert response.status_code == 302
    assert not RealServer.objects.filter(address="192.168.1.5").exists()
    deleted = Event.objects.filter(kind="user", message__startswith="deleted real server", user=superuser)
    assert deleted.count() == len(reals) == ApplyJob.objects.count() == 2


def test_it_decommissions_a_director_deleted_in_the_admin(
    client, superuser, demo, redis_client, django_capture_on_commit_callbacks
):
    client.force_login(superuser)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:clusters_director_delete", args=[demo.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not Director.objects.filter(name="lab1").exists()
    assert Event.objects.get(message__startswith="deleted director lab1").user == superuser
    (last,) = _queued(redis_client, demo)  # the agent is told to take out what we put in its kernel
    assert last["services"] == [] and last["vips"] == [] and last["revision"] == demo.desired_revision + 1


def test_it_shows_events_tokens_and_jobs_read_only_in_the_admin(client, superuser, demo):
    client.force_login(superuser)
    event = services.record("user", "something happened", director=demo)
    token, _ = ApiToken.issue(superuser, "scripts")
    job = services.push(demo)
    for model, obj in (("event", event), ("apitoken", token), ("applyjob", job)):
        change = reverse(f"admin:clusters_{model}_change", args=[obj.pk])
        assert client.get(change).status_code == 200  # still visible
        assert (
            client.post(change, {"message": "rewritten", "name": "x", "status": "failed"}).status_code == 403
        )
        assert client.get(reverse(f"admin:clusters_{model}_add")).status_code == 403
        assert (
            client.post(reverse(f"admin:clusters_{model}_delete", args=[obj.pk]), {"post": "yes"}).status_code
            == 403
        )
    event.refresh_from_db()
    token.refresh_from_db()
    assert event.message == "something happened" and token.name == "scripts" and token.revoked is None


def test_it_keeps_a_real_server_in_its_service_when_the_admin_posts_another(client, superuser, demo, other):
    client.force_login(superuser)
    rs = RealServer.objects.get(service__director=demo, address="192.168.1.4", port=80)
    data = {**REAL, "address": rs.address, "service": other.pk, "weight": "4", "l_threshold": "0"}
    data.update(admin_state="active", after_drain="")
    response = client.post(reverse("admin:clusters_realserver_change", args=[rs.pk]), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    rs.refresh_from_db()
    assert (rs.service.director, rs.weight) == (demo, 4)
    assert not ApplyJob.objects.filter(director=other.director).exists()
