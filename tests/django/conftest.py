"""Django-tier fixtures: settings pointed at the session's real Redis, users in each role."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _redis_settings(settings, redis_url, redis_client, signing_dir):
    from clusters import agents
    from ultramonkey_web.celery import app

    settings.UMW_SIGNING_DIR = signing_dir
    settings.REDIS_URL = redis_url
    settings.CELERY_BROKER_URL = redis_url
    agents.client.cache_clear()
    # The gateway sends through celery.current_app; a test worker (celery.contrib.testing) makes its own app
    # current and leaves it so, so every test starts with the project's app current again.
    app.set_current()
    app.conf.broker_url = redis_url
    app.conf.result_backend = redis_url
    yield
    agents.client.cache_clear()


@pytest.fixture
def groups(db):
    from clusters.roles import ensure_groups

    return ensure_groups()


def _user(django_user_model, groups, name):
    user = django_user_model.objects.create_user(name, password="pw-" + name)
    user.groups.add(groups[name])
    return user


@pytest.fixture
def viewer(django_user_model, groups):
    return _user(django_user_model, groups, "viewer")


@pytest.fixture
def operator(django_user_model, groups):
    return _user(django_user_model, groups, "operator")


@pytest.fixture
def admin_user(django_user_model, groups):
    return _user(django_user_model, groups, "admin")


@pytest.fixture
def demo(db):
    from clusters.demo import load_demo

    director, _ = load_demo("lab1")
    return director
