"""`manage.py signing_key`: the public key for the directors' trust files, and a rotation every director
follows: both keys sign during the window and every director is pushed, then only the new one."""

import io

import pytest
from django.core.management import call_command

from clusters import signing
from director import signing as wire

from .queued import signed_payload
from .snapshots import fresh_celery_pools  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_celery_pools")]


def _run(*args) -> str:
    out = io.StringIO()
    call_command("signing_key", *args, stdout=out)
    return out.getvalue()


def _signers(redis_client) -> list[str]:
    import base64
    import json

    body = json.loads(redis_client.lindex("director.lab1", 0))
    (message,), _, _ = json.loads(base64.b64decode(body["body"]))
    return [s["key"] for s in message["signatures"]]


def test_it_shows_a_trust_file_line_an_agent_accepts(settings, tmp_path):
    settings.UMW_SIGNING_DIR = str(tmp_path / "ring")
    line = _run("show", "--current").strip()
    key = wire.parse_public(line)
    assert line.startswith("ed25519 ") and wire.key_id(key) == wire.key_id(
        signing.keyring().ensure().public_key()
    )


def test_a_rotation_co_signs_for_the_window_and_pushes_every_director(
    demo, redis_client, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.UMW_SIGNING_DIR = str(tmp_path / "ring")
    old = wire.key_id(signing.keyring().ensure().public_key())
    with django_capture_on_commit_callbacks(execute=True):
        out = _run("rotate", "--overlap", "3600")
    new = wire.key_id(signing.keyring().ensure().public_key())
    assert new != old and f"signing key rotated to {new}" in out and "lab1: revision" in out
    assert _signers(redis_client) == [new, old]
    assert len(signed_payload(redis_client, "director.lab1")["trust"]) == 2
    with django_capture_on_commit_callbacks(execute=True):
        _run("retire")
    assert _signers(redis_client) == [new]
    assert signed_payload(redis_client, "director.lab1")["trust"] == [_run("show").strip()]
