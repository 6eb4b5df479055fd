"""The desired state a push sends is, byte for byte, the JSON document the agent got before the push was made
faster (issue 17): directors built from the demo, a pair, and every importer's full configuration, pushed
through services.push, their signed payload verified and opened like the agent does, and the state's text
compared with the text recorded in tests/django/desired/<database> (written by the code before the change;
the order of the reals is the database's order of their addresses, so SQLite and PostgreSQL each have theirs).

After a deliberate change of the document, `UMW_WRITE_DESIRED=1 pytest tests/django/test_desired_document.py`
writes the files anew; the diff then shows what every agent will get differently.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

import pytest
from django.db import connection

from clusters import services
from clusters.desired import desired_state
from clusters.importers.apply import apply_plan
from clusters.models import Director, RealServer
from director import signing
from tests.configs import parse_file

from .queued import _open

pytestmark = pytest.mark.django_db

RECORDED = Path(__file__).parent / "desired"


def _pushed_text(director, redis_client, capture) -> str:
    """The state's JSON text inside the signed payload text the push queued (what the agent verifies)."""
    with capture(execute=True):
        services.push(director, reason="test")
    raw = redis_client.lindex(director.queue, 0)
    payload = _open(raw, director.queue, director.name)  # the signatures checked, as the agent does
    args, _, _ = json.loads(base64.b64decode(json.loads(raw)["body"]))
    text = signing.payload_text(args[0], signing.signed_bytes(args[0]))  # the exact text that was signed
    state = signing.canonical(payload["state"])
    assert f'"state":{state},"trust":' in text
    return state


def _check(name: str, director, redis_client, capture) -> None:
    """The pushed state's text is the one recorded as `name` (a large one by its SHA-256 and length)."""
    text = _pushed_text(director, redis_client, capture)
    assert text == signing.canonical(desired_state(director).to_dict())  # the DesiredState says the same
    large = len(text) > signing.COMPRESS_ABOVE
    path = RECORDED / connection.vendor / (f"{name}.sha256" if large else f"{name}.json")
    got = f"{hashlib.sha256(text.encode()).hexdigest()} {len(text)}" if large else text
    if os.environ.get("UMW_WRITE_DESIRED"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(got + "\n")
    assert got == path.read_text().removesuffix("\n")


@pytest.mark.parametrize(
    "config",
    ["ldirectord-ultramonkey.cf", "ldirectord-full.cf", "keepalived-full.conf", "ipvsadm-save.rules"],
)
def test_it_sends_an_imported_directors_state_unchanged(
    config, redis_client, django_capture_on_commit_callbacks
):
    director = Director.objects.create(
        name="lb1", masquerade=True, lan_subnet="192.168.7.0/24", wan_interface="eth0", lan_interface="eth1"
    )
    result = apply_plan(parse_file(config), director)
    assert result.ok, result.errors
    reals = RealServer.objects.filter(service__director=director).order_by("-pk")
    if reals.count() >= 3:  # the per-real settings the importers may not set: quiescent both ways, a drain
        RealServer.objects.filter(pk=reals[0].pk).update(quiescent=True, admin_state="draining")
        RealServer.objects.filter(pk=reals[1].pk).update(quiescent=False, u_threshold=9, l_threshold=3)
    first = director.services.order_by("pk").first()
    if director.services.count() > 1:
        director.services.filter(pk=first.pk).update(enabled=False)  # a disabled service is not sent
    director.services.filter(pk=director.services.order_by("pk").last().pk).update(name="wéb ☃")  # \u escapes
    _check(config.replace(".", "-"), director, redis_client, django_capture_on_commit_callbacks)


def test_it_sends_a_pairs_state_unchanged(demo, redis_client, django_capture_on_commit_callbacks):
    peer = Director.objects.create(name="lab2", masquerade=False, ha_address="10.9.0.2", ha_secret="s" * 40)
    Director.objects.filter(pk=demo.pk).update(
        peer=peer, ha_address="10.9.0.1", ha_priority=150, ha_secret="t" * 40, ha_vrid=77, manage_vips=True
    )
    demo.refresh_from_db()
    _check("demo-pair", demo, redis_client, django_capture_on_commit_callbacks)
    peer.refresh_from_db()
    _check("demo-pair-peer", peer, redis_client, django_capture_on_commit_callbacks)


def test_it_sends_a_large_state_compressed_and_unchanged(redis_client, django_capture_on_commit_callbacks):
    """Over COMPRESS_ABOVE the payload travels as signed zlib bytes: the text inside is the same document."""
    director = Director.objects.create(name="big", masquerade=False)
    for s in range(3):
        vs = director.services.create(protocol="tcp", address=f"10.0.0.{s + 1}", port=80, name=f"s{s}")
        RealServer.objects.bulk_create(
            RealServer(service=vs, address=f"172.16.{s}.{1 + n % 250}", port=8000 + n, weight=n % 7,
                       admin_state=("active", "draining", "maintenance")[n % 3], quiescent=(None, True, False)[n % 3])
            for n in range(400)
        )  # fmt: skip
    _check("large", director, redis_client, django_capture_on_commit_callbacks)
    args, _, _ = json.loads(base64.b64decode(json.loads(redis_client.lindex(director.queue, 0))["body"]))
    assert "payload_zlib" in args[0]
