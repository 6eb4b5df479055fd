"""A director's Redis credentials: issued once by a command, only their hash kept, put back if Redis forgets."""

import io

import pytest
import redis
from django.core.management import CommandError, call_command

from clusters.models import Director, Event
from director import acl, keys

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_user_left")]


@pytest.fixture
def no_user_left(redis_client):
    """Leave Redis as the next module expects it: no director user made here survives the test."""
    yield
    for name in ("lab1", "lab2"):
        if redis_client.acl_getuser(acl.username(name)) is not None:
            acl.delete_director_user(redis_client, name)


def _issue(name: str, *flags: str) -> str:
    out = io.StringIO()
    call_command("director_credentials", name, *flags, stdout=out, stderr=io.StringIO())
    return out.getvalue().strip()


def _as(redis_server, name: str, password: str) -> redis.Redis:
    return redis.Redis.from_url(redis_server.url(acl.username(name), password), decode_responses=True)


def test_it_prints_the_password_once_and_keeps_only_its_hash(demo, redis_server, redis_client):
    password = _issue("lab1")
    demo.refresh_from_db()
    assert demo.redis_password_sha256 == acl.password_hash(password)
    assert password not in str(Director.objects.filter(pk=demo.pk).values().get())
    agent = _as(redis_server, "lab1", password)
    agent.xadd(keys.events_stream("lab1"), {"director": "lab1"})
    with pytest.raises(redis.exceptions.NoPermissionError):
        agent.xadd(keys.events_stream("lab2"), {"director": "lab2"})
    assert Event.objects.filter(
        director=demo, message__contains="issued the agent's Redis credentials"
    ).exists()


def test_it_rotates_only_when_asked_and_the_old_password_stops_working(demo, redis_server, redis_client):
    old = _issue("lab1")
    with pytest.raises(CommandError, match="already has credentials"):
        _issue("lab1")
    new = _issue("lab1", "--rotate")
    assert _as(redis_server, "lab1", new).ping()
    with pytest.raises(redis.exceptions.AuthenticationError):
        _as(redis_server, "lab1", old).ping()


def test_it_puts_back_a_user_redis_forgot(demo, redis_server, redis_client):
    password = _issue("lab1")
    from clusters import agents

    acl.delete_director_user(redis_client, "lab1")  # e.g. Redis restarted without an ACL file
    # what the central worker's follow_up does every 5 s
    agents.ensure_director_users(
        dict(Director.objects.exclude(redis_password_sha256="").values_list("name", "redis_password_sha256"))
    )
    assert _as(redis_server, "lab1", password).ping()


def test_it_names_an_unknown_director(db):
    with pytest.raises(CommandError, match="unknown director 'nope'"):
        _issue("nope")


def test_it_ends_a_deleted_directors_login_once_its_agent_took_the_last_state(
    demo, redis_server, redis_client, django_capture_on_commit_callbacks
):
    """Deleting a director must not leave its password a working login on the broker for ever - but its
    agent must still be able to fetch the last desired state (clear the kernel) first."""
    import time

    from clusters import agents, services

    password = _issue("lab1")
    agent = _as(redis_server, "lab1", password)
    with django_capture_on_commit_callbacks(execute=True):
        services.remove(demo)
    queue = keys.queue("lab1")
    assert redis_client.llen(queue) == 1
    assert agents.prune_director_users(set(), time.time()) == []  # the last state is still waiting
    assert agent.brpop([queue], timeout=1) is not None  # the agent takes it
    assert agents.prune_director_users(set(), time.time()) == ["lab1"]
    assert redis_client.acl_getuser(acl.username("lab1")) is None
    with pytest.raises(redis.exceptions.RedisError):
        _as(redis_server, "lab1", password).ping()


def test_it_leaves_alone_the_users_the_dashboard_did_not_delete(demo, redis_server, redis_client):
    """A director user made outside the dashboard (the lab's, an operator's) is not ours to remove."""
    import time

    from clusters import agents

    acl.set_director_user(redis_client, "lab2", acl.password_hash("x" * 40))
    assert agents.prune_director_users({"lab1"}, time.time()) == []
    assert redis_client.acl_getuser(acl.username("lab2")) is not None


def test_it_issues_credentials_from_the_director_page_once_and_never_caches_them(
    demo, admin_client, redis_server, redis_client
):
    url = f"/directors/{demo.pk}/credentials/"
    assert "Issue credentials" in admin_client.get(url).content.decode()
    response = admin_client.post(url)
    assert response["Cache-Control"] == "no-store"
    password = response.context["password"]
    assert _as(redis_server, "lab1", password).ping()
    demo.refresh_from_db()
    assert demo.redis_password_sha256 == acl.password_hash(password)
    # a second plain "issue" (e.g. a replayed form) does not replace them; rotating does
    again = admin_client.post(url)
    assert "already has agent credentials" in again.content.decode() and "password" not in again.context
    rotated = admin_client.post(url, {"rotate": "1"}).context["password"]
    with pytest.raises(redis.exceptions.AuthenticationError):
        _as(redis_server, "lab1", password).ping()
    assert _as(redis_server, "lab1", rotated).ping()


def test_it_lets_only_those_who_may_change_the_director_issue_credentials(demo, client, django_user_model):
    viewer = django_user_model.objects.create_user("viewer", password="x" * 12)
    client.force_login(viewer)
    assert client.post(f"/directors/{demo.pk}/credentials/").status_code == 403
    demo.refresh_from_db()
    assert demo.redis_password_sha256 == ""
