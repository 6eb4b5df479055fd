"""Browser tier: Debian's chromium driven by Playwright against pytest-django's live server.

Same real Redis, users and demo director as the django tier (imported from its conftest). Playwright's
sync API runs an event loop in this thread, so Django must be told that ORM calls from the test body are
fine (they are: the test waits while the server thread works). Without /usr/bin/chromium the tier skips,
except in CI, where a missing browser is a broken runner and must fail.
"""

from __future__ import annotations

import os

import pytest

from lab.stack import CHROMIUM, CHROMIUM_ARGS
from tests.django.conftest import _redis_settings, admin_user, demo, groups, operator, viewer  # noqa: F401

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{CHROMIUM} is missing on a CI runner")
        pytest.skip(f"{CHROMIUM} is missing (install Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser):
    """Factory of pages in fresh contexts (separate cookies per user); all closed after the test."""
    contexts = []

    def make(viewport=DESKTOP):
        context = browser.new_context(viewport=viewport)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def login(live_server):
    def do(page, user):
        page.goto(live_server.url + "/login/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", "pw-" + user.username)
        page.click("button[type=submit]")
        page.wait_for_url(live_server.url + "/")
        return page

    return do
