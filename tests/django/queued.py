"""What the central side put on a director's queue: the signed desired state, verified like an agent would."""

from __future__ import annotations

import base64
import json

from clusters import signing
from director import signing as wire


def _open(raw: str, queue: str, director: str | None) -> dict:
    """One queued `director.apply` message: its payload, after checking the signatures against the central
    key ring and the director's name (default: the queue's). Fire and forget: the agent answers through its
    event stream, so no result is asked for; the job id travels signed, inside the payload."""
    body = json.loads(raw)
    assert body["headers"]["task"] == "director.apply" and body["headers"]["ignore_result"] is True
    args, kwargs, _ = json.loads(base64.b64decode(body["body"]))
    (message,) = args
    assert kwargs == {}
    trusted = {wire.key_id(k.public_key()): k.public_key() for k in signing.keyring().signing_keys()}
    data = wire.signed_bytes(message)  # the compressed bytes for a large state, the text for a small one
    for sig in message["signatures"]:
        trusted[sig["key"]].verify(base64.b64decode(sig["sig"]), data)
    payload = json.loads(wire.payload_text(message, data))
    assert payload["director"] == (director or queue.removeprefix("director."))
    return payload


def signed_payload(redis_client, queue: str, director: str | None = None) -> dict:
    """The payload of the newest `director.apply` on `queue` ({director, revision, job_id, signed_at, state,
    trust}), verified."""
    return _open(redis_client.lindex(queue, 0), queue, director)


def last_apply(redis_client, queue: str, director: str | None = None) -> dict:
    """The desired state of the newest `director.apply` on `queue`, verified."""
    return signed_payload(redis_client, queue, director)["state"]


def queued_states(redis_client, queue: str, director: str | None = None) -> list[dict]:
    """Every desired state waiting on `queue`, oldest first, verified."""
    return [_open(raw, queue, director)["state"] for raw in reversed(redis_client.lrange(queue, 0, -1))]
