"""negotiate/radius: an Access-Request with `login`/`passwd` and `secret`, answered in time.

As ldirectord (Authen::Radius check_pwd): any authentic answer, Access-Accept or Access-Reject, means
the RADIUS server is up; silence or a reply that fails the response-authenticator check means down.
"""

from __future__ import annotations

import hashlib
import os
import struct

from .base import Checker, CheckFailed, Target, udp_exchange

CODES = {2: "Access-Accept", 3: "Access-Reject", 11: "Access-Challenge"}


def hide_password(password: bytes, secret: bytes, authenticator: bytes) -> bytes:
    """RFC 2865 5.2 User-Password hiding."""
    padded = password.ljust(max(16, -(-len(password) // 16) * 16), b"\0")
    out, prev = b"", authenticator
    for i in range(0, len(padded), 16):
        key = hashlib.md5(secret + prev).digest()
        prev = bytes(a ^ b for a, b in zip(padded[i : i + 16], key, strict=True))
        out += prev
    return out


def build_request(ident: int, authenticator: bytes, user: str, password: str, secret: str) -> bytes:
    attrs = b""
    for typ, value in (
        (1, user.encode()),
        (2, hide_password(password.encode(), secret.encode(), authenticator)),
    ):
        attrs += struct.pack("!BB", typ, len(value) + 2) + value
    return struct.pack("!BBH", 1, ident, 20 + len(attrs)) + authenticator + attrs


def reply_is_authentic(reply: bytes, authenticator: bytes, secret: str) -> bool:
    if len(reply) < 20:
        return False
    length = struct.unpack("!H", reply[2:4])[0]
    if length < 20 or length > len(reply):
        return False
    expect = hashlib.md5(reply[:4] + authenticator + reply[20:length] + secret.encode()).digest()
    return expect == reply[4:20]


class RadiusChecker(Checker):
    name = "radius"

    async def _check(self, target: Target) -> str:
        ident = os.urandom(1)[0]
        authenticator = os.urandom(16)
        spec = self.spec
        request = build_request(ident, authenticator, spec.login, spec.passwd, spec.secret)
        reply = await udp_exchange(target, request, lambda r: len(r) >= 20 and r[1] == ident)
        if not reply_is_authentic(reply, authenticator, spec.secret):
            raise CheckFailed("RADIUS: reply not authentic (wrong secret?)")
        return f"RADIUS {CODES.get(reply[0], reply[0])}"
