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


def test_the_central_worker_puts_back_a_user_redis_forgot(demo, redis_server, redis_client):
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
