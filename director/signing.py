"""Signed desired state: the central side signs, every agent verifies before it saves or applies anything.

Redis ACLs (director/acl.py) keep one director from writing another's queue; signatures make the queue's
content trustworthy even to someone who *can* write it (a leaked central Redis password, a Redis admin).
The scheme is Salt's and Nomad's: one central Ed25519 key (``cryptography``), its public key on every
director, the payload bound to the director's name, a revision and the time of signing.

Wire format (the Celery task argument)::

    {"payload": "<canonical JSON text>", "signatures": [{"key": "<key id>", "sig": "<base64>"}, ...]}

The payload is signed as the exact text sent, so nothing depends on re-serialising JSON the same way on
both sides. A large payload (over COMPRESS_ABOVE: a 37,000-real-server state is ~10 MB of JSON) travels
compressed instead, as ``{"payload_zlib": "<base64 of zlib(text)>", "signatures": [...]}``, and is signed as
those exact compressed bytes: the agent checks the signature *before* it inflates anything, and inflates at
most MAX_PAYLOAD bytes (a zip bomb stops there, signed or not). It holds ``{"type": "desired-state", "director", "revision", "signed_at", "job_id", "state",
"trust"}``; ``trust`` lists the public keys the central side wants the agent to accept from now on.

Key rotation (``manage.py signing_key rotate``): a new key becomes current, the old one stays in the key
ring until the overlap window ends. During the window every message is signed by *both* keys and its
``trust`` names both, so agents that only know the old key accept it and learn the new one; after the
window messages are signed by the new key only and ``trust`` names only it, so agents drop the old key.
An agent that slept through the whole window rejects the new signatures with an error event naming the
key it does not know; putting the new public key in its trust file (``manage.py signing_key show``)
fixes it. Changing that file by hand always wins over what the agent learned (recovery after a leak).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
import zlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .statefile import load_json, save_json

PAYLOAD_TYPE = "desired-state"
MAX_PAYLOAD = 64 << 20  # bytes; far above a 37,000-real-server state (~10 MB), far below memory trouble
MAX_COMPRESSED = 16 << 20  # base64 characters of a compressed payload (zlib shrinks these states ~15x)
COMPRESS_ABOVE = 64 << 10  # bytes of payload text from which it is sent compressed
# zlib level, measured on the 7.3 MB state of 37,298 reals: 6 takes 21 ms for 203 KB (1: 10 ms, 301 KB; 9: 84 ms,
# 164 KB); the agent inflates any of them in 3-4 ms
COMPRESS_LEVEL = 6
MAX_SIGNATURES = 4
KEY_PREFIX = "ed25519 "  # one public key per line in a trust file: "ed25519 <base64 raw key> [comment]"


class Rejected(Exception):
    """A message the agent must not act on; the text is the reason for the error event."""


# -- keys ---------------------------------------------------------------------------------------------------
def public_raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    """Short stable name of a public key (first 16 hex digits of the SHA-256 of its raw bytes)."""
    return hashlib.sha256(public_raw(key)).hexdigest()[:16]


def public_line(key: Ed25519PublicKey) -> str:
    """The key as a trust-file line, e.g. `ed25519 q0f3...= 1a2b3c4d5e6f7a8b`."""
    return f"{KEY_PREFIX}{base64.b64encode(public_raw(key)).decode()} {key_id(key)}"


def parse_public(text: str) -> Ed25519PublicKey:
    """One key from `ed25519 <base64>` (a trailing comment is allowed) or bare base64 of the 32 raw bytes."""
    words = text.strip().split()
    if words and words[0] == KEY_PREFIX.strip():
        words = words[1:]
    if not words:
        raise ValueError("empty public key")
    try:
        raw = base64.b64decode(words[0], validate=True)
    except ValueError as exc:
        raise ValueError(f"public key is not base64: {exc}") from None
    if len(raw) != 32:
        raise ValueError(f"an Ed25519 public key has 32 bytes, not {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def parse_trust_file(text: str) -> dict[str, Ed25519PublicKey]:
    keys = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            key = parse_public(line)
        except ValueError as exc:
            raise ValueError(f"line {n}: {exc}") from None
        keys[key_id(key)] = key
    return keys


def canonical(payload: dict) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


# -- the central side's key ring --------------------------------------------------------------------------
class KeyRing:
    """The central signing keys in one directory (0700, key files 0600): `current.key`, and during a
    rotation's overlap window `previous.key` with `previous.json` saying until when it still signs."""

    def __init__(self, directory: str, clock=time.time):
        self.dir = directory
        self.clock = clock

    def _path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def _write_key(self, name: str, key: Ed25519PrivateKey) -> None:
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        tmp = self._path(name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._path(name))

    def _read_key(self, name: str) -> Ed25519PrivateKey | None:
        try:
            with open(self._path(name), "rb") as f:
                key = serialization.load_pem_private_key(f.read(), password=None)
        except FileNotFoundError:
            return None
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{self._path(name)} is not an Ed25519 private key")
        return key

    def ensure(self) -> Ed25519PrivateKey:
        """The current key, made (with the directory) on first use."""
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        os.chmod(self.dir, 0o700)
        key = self._read_key("current.key")
        if key is None:
            key = Ed25519PrivateKey.generate()
            self._write_key("current.key", key)
        return key

    def previous(self) -> tuple[Ed25519PrivateKey, float] | None:
        """The old key and the end of its window, while the window is open."""
        key = self._read_key("previous.key")
        until = float((load_json(self._path("previous.json"), {}) or {}).get("until", 0))
        if key is None or until <= self.clock():
            return None
        return key, until

    def signing_keys(self) -> list[Ed25519PrivateKey]:
        current = self.ensure()
        prev = self.previous()
        return [current] + ([prev[0]] if prev else [])

    def rotate(self, overlap: float) -> Ed25519PrivateKey:
        """A new current key; the old one keeps signing for `overlap` seconds. Returns the new key."""
        if overlap < 0:
            raise ValueError("overlap must be >= 0 seconds")
        old = self.ensure()
        self._write_key("previous.key", old)
        save_json(self._path("previous.json"), {"until": self.clock() + overlap})
        new = Ed25519PrivateKey.generate()
        self._write_key("current.key", new)
        return new

    def retire(self) -> None:
        """End the overlap window now: only the current key signs and is trusted from the next message on."""
        for name in ("previous.key", "previous.json"):
            try:
                os.unlink(self._path(name))
            except FileNotFoundError:
                pass

    def sign(self, *, director: str, revision: int, state: dict, job_id: int | None) -> dict:
        keys = self.signing_keys()
        payload = {
            "type": PAYLOAD_TYPE,
            "director": director,
            "revision": revision,
            "signed_at": round(self.clock(), 3),
            "job_id": job_id,
            "state": state,
            "trust": [public_line(k.public_key()) for k in keys],
        }
        return sign_payload(payload, keys)


def sign_payload(payload: dict, keys: list[Ed25519PrivateKey], compress_above: int = COMPRESS_ABOVE) -> dict:
    """The envelope: the canonical text, compressed when longer than `compress_above` bytes, and each key's
    signature over exactly the bytes the envelope carries (the compressed ones when compressed)."""
    data = canonical(payload).encode()
    if len(data) > compress_above:
        data = zlib.compress(data, COMPRESS_LEVEL)
        message = {"payload_zlib": base64.b64encode(data).decode()}
    else:
        message = {"payload": data.decode()}
    message["signatures"] = [
        {"key": key_id(k.public_key()), "sig": base64.b64encode(k.sign(data)).decode()} for k in keys
    ]
    return message


def signed_bytes(message) -> bytes:
    """The bytes an envelope's signatures cover, checked for shape and size; raises Rejected.

    Nothing is inflated here: that waits until a signature over these bytes has been verified."""
    carries = [k for k in ("payload", "payload_zlib") if k in message] if isinstance(message, dict) else []
    if not carries or "signatures" not in message:
        raise Rejected("unsigned desired state (no payload/signatures envelope)")
    if len(carries) > 1:
        raise Rejected("an envelope carries payload or payload_zlib, not both")
    if "payload" in message:
        text = message["payload"]
        if not isinstance(text, str) or len(text) > MAX_PAYLOAD:
            raise Rejected("payload must be a JSON text of at most 64 MiB")
        try:
            return text.encode()
        except UnicodeEncodeError:
            raise Rejected("payload is not valid Unicode (a lone surrogate)") from None
    blob = message["payload_zlib"]
    if not isinstance(blob, str) or len(blob) > MAX_COMPRESSED:
        raise Rejected(f"payload_zlib must be base64 text of at most {MAX_COMPRESSED >> 20} MiB")
    try:
        return base64.b64decode(blob, validate=True)
    except ValueError:
        raise Rejected("payload_zlib is not base64") from None


def payload_text(message, data: bytes) -> str:
    """The payload text of an envelope whose `signed_bytes` are `data` (verified by then): inflated, at most
    MAX_PAYLOAD bytes of it, when it came compressed; raises Rejected."""
    if "payload_zlib" not in message:
        return data.decode()
    inflate = zlib.decompressobj()
    try:
        out = inflate.decompress(data, MAX_PAYLOAD + 1)
    except zlib.error as exc:
        raise Rejected(f"payload_zlib does not inflate: {exc}") from None
    if len(out) > MAX_PAYLOAD or inflate.unconsumed_tail:
        raise Rejected("payload_zlib inflates to more than 64 MiB")
    if not inflate.eof or inflate.unused_data:
        raise Rejected("payload_zlib is not one whole zlib stream")
    try:
        return out.decode()
    except UnicodeDecodeError:
        raise Rejected("payload is not UTF-8") from None


# -- the agent's side ---------------------------------------------------------------------------------------
class Trust:
    """The public keys an agent accepts: its trust file (root's configuration), or what a message signed by
    one of those keys later told it to trust (`learned`, in the state directory)."""

    def __init__(self, trust_file: str, learned_path: str):
        self.trust_file = trust_file
        self.learned_path = learned_path

    def _configured(self) -> tuple[dict[str, Ed25519PublicKey], str]:
        try:
            with open(self.trust_file, encoding="utf-8") as f:
                text = f.read()
        except OSError as exc:
            raise Rejected(f"no trusted signing key: cannot read {self.trust_file}: {exc.strerror}") from None
        try:
            keys = parse_trust_file(text)
        except ValueError as exc:
            raise Rejected(f"bad trust file {self.trust_file}: {exc}") from None
        return keys, hashlib.sha256(text.encode()).hexdigest()

    def keys(self) -> dict[str, Ed25519PublicKey]:
        configured, digest = self._configured()
        learned = load_json(self.learned_path, None)
        if isinstance(learned, dict) and learned.get("from") == digest:
            try:
                return parse_trust_file("\n".join(learned.get("keys") or ()))
            except (ValueError, TypeError):
                pass  # a damaged file: fall back to the configuration
        return configured

    def learn(self, lines: list[str]) -> None:
        """Remember the keys a verified message names (rotation), tied to the current trust file."""
        _, digest = self._configured()
        parsed = parse_trust_file("\n".join(lines))
        if not parsed:
            return
        current = load_json(self.learned_path, None)
        wanted = {"from": digest, "keys": sorted(public_line(k) for k in parsed.values())}
        if current != wanted:
            save_json(self.learned_path, wanted)

    def open(self, message, director: str) -> dict:
        """Verify `message` for `director`; returns the payload dict or raises Rejected with the reason."""
        data = signed_bytes(message)
        sigs = message["signatures"]
        if not isinstance(sigs, list) or not sigs or len(sigs) > MAX_SIGNATURES:
            raise Rejected(f"signatures must be a list of 1 to {MAX_SIGNATURES}")
        trusted = self.keys()
        good = None
        unknown = []
        for sig in sigs:
            if not isinstance(sig, dict) or not isinstance(sig.get("key"), str):
                raise Rejected("a signature must be {key, sig}")
            key = trusted.get(sig["key"])
            if key is None:
                unknown.append(sig["key"][:16])
                continue
            try:
                raw = base64.b64decode(str(sig.get("sig", "")), validate=True)
                key.verify(raw, data)
            except (InvalidSignature, ValueError):
                raise Rejected(f"bad signature by key {sig['key']}") from None
            good = sig["key"]
        if good is None:
            raise Rejected(
                f"signed by unknown key(s) {', '.join(unknown)}; this director trusts "
                f"{', '.join(sorted(trusted)) or 'none'} ({self.trust_file})"
            )
        text = payload_text(message, data)  # inflated only now that a trusted key signed these bytes
        try:
            payload = json.loads(text)
        except ValueError as exc:
            raise Rejected(f"payload is not JSON: {exc}") from None
        if not isinstance(payload, dict) or payload.get("type") != PAYLOAD_TYPE:
            raise Rejected("payload is not a desired state")
        if payload.get("director") != director:
            raise Rejected(
                f"desired state is for director {str(payload.get('director'))[:60]!r}, not {director!r}"
            )
        state = payload.get("state")
        if not isinstance(state, dict):
            raise Rejected("payload has no state object")
        if state.get("director") != director or state.get("revision") != payload.get("revision"):
            raise Rejected("the state's director/revision differ from the signed envelope's")
        job_id = payload.get("job_id")
        if job_id is not None and (type(job_id) is not int or not 0 < job_id < 2**63):
            raise Rejected("job_id must be a positive integer")
        trust = payload.get("trust")
        if trust is not None:
            if not isinstance(trust, list) or not all(isinstance(x, str) for x in trust) or len(trust) > 4:
                raise Rejected("trust must be a list of at most 4 public keys")
        return payload
