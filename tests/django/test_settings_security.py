"""Production safety of the web process: secret key, HTTPS settings, login throttling, passwords, CSP."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.urls import reverse

from .snapshots import write_snapshot

REPO = Path(__file__).resolve().parents[2]


def _django(args: list[str], **env: str) -> subprocess.CompletedProcess:
    """A fresh Python process with Django set up from the environment given (and none of the test runner's)."""
    base = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG", "PYTEST_VERSION"}}
    base.update(DJANGO_SETTINGS_MODULE="ultramonkey_web.settings", PYTHONPATH=str(REPO), **env)
    return subprocess.run(
        [sys.executable, *args], cwd=REPO, env=base, capture_output=True, text=True, timeout=120
    )


def _production_env() -> dict[str, str]:
    """deploy/production.env (what the README documents), with a real random key in place of the example."""
    env = {}
    for line in (REPO / "deploy" / "production.env").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    env["SECRET_KEY"] = secrets.token_urlsafe(50)
    return env


SETUP = ["-c", "import django; django.setup(); print('started')"]


def test_it_refuses_to_start_without_a_secret_key_when_debug_is_off():
    refused = _django(SETUP, DEBUG="0")
    assert refused.returncode != 0
    assert "SECRET_KEY is not set" in refused.stderr
    assert _django(SETUP, DEBUG="1").stdout.strip() == "started"
    assert _django(SETUP, DEBUG="0", SECRET_KEY="x" * 60).stdout.strip() == "started"


def test_it_passes_check_deploy_with_the_documented_production_settings():
    clean = _django(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], **_production_env())
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "no issues" in clean.stdout
    # and the check can fail: without the HTTPS settings it names what is missing
    plain = {k: v for k, v in _production_env().items() if not k.startswith("SECURE_")}
    warned = _django(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], **plain)
    assert warned.returncode != 0
    assert "security.W004" in warned.stderr and "security.W012" in warned.stderr


def test_it_turns_on_secure_cookies_hsts_and_ssl_redirect_from_the_environment():
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, "
        "s.SECURE_PROXY_SSL_HEADER)"
    )
    on = _django(["-c", code], **_production_env()).stdout.split()
    assert on == ["True", "True", "True", "31536000", "('HTTP_X_FORWARDED_PROTO',", "'https')"]
    off = _django(["-c", code], DEBUG="1").stdout.split()
    assert off == ["False", "False", "False", "0", "None"]


def _wrong(client, url: str, username: str, n: int) -> list[int]:
    return [client.post(url, {"username": username, "password": f"wrong-{i}"}).status_code for i in range(n)]


@pytest.mark.parametrize("url", ["/login/", "/admin/login/"])
def test_it_locks_a_username_out_after_repeated_wrong_passwords(client, admin_user, settings, url):
    limit = settings.AXES_FAILURE_LIMIT
    assert _wrong(client, url, "admin", limit - 1) == [200] * (limit - 1)  # the form again, with its error
    statuses = _wrong(client, url, "admin", 40)
    assert set(statuses) == {429}
    # locked: even the right password is refused now
    right = client.post(url, {"username": "admin", "password": "pw-admin"})
    assert right.status_code == 429 and "_auth_user_id" not in client.session


def test_it_lets_the_right_password_in_below_the_limit(client, admin_user, settings):
    _wrong(client, "/login/", "admin", settings.AXES_FAILURE_LIMIT - 1)
    right = client.post("/login/", {"username": "admin", "password": "pw-admin"})
    assert right.status_code == 302 and client.session["_auth_user_id"] == str(admin_user.pk)


@pytest.mark.parametrize(
    "password, reason",
    [("short1!", "too short"), ("password123", "too common"), ("8203948571", "entirely numeric")],
)
def test_it_refuses_weak_passwords(password, reason, db):
    with pytest.raises(ValidationError, match=reason):
        validate_password(password)


def test_it_refuses_a_weak_first_admin_password(db):
    with pytest.raises(CommandError, match="too common"):
        call_command("setup", "--admin", "boss", "--password", "password123")


def test_it_sends_a_content_security_policy_without_eval_or_inline_script(client, viewer, demo):
    client.force_login(viewer)
    response = client.get(reverse("overview"))
    policy = response.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["script-src"] == "'self'" and directives["default-src"] == "'self'"
    assert "unsafe" not in policy
    html = response.content.decode()
    assert '"allowEval": false' in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "inline script"


def test_it_polls_without_hx_trigger_filters_that_need_eval(client, viewer, demo, redis_client):
    client.force_login(viewer)
    write_snapshot(redis_client, demo)
    service = demo.services.first()
    pages = [reverse("overview"), reverse("director_detail", args=[demo.pk]), reverse("logs"),
             reverse("service_detail", args=[service.pk])]  # fmt: skip
    triggers = []
    for url in pages:
        html = client.get(url).content.decode()
        triggers += re.findall(r'hx-trigger="([^"]*)"', html)
        assert "hx-on" not in html and "js:" not in html, url
    assert triggers and not [t for t in triggers if "[" in t]
