"""negotiate/pgsql: a minimal PostgreSQL frontend/backend protocol client for ldirectord's check_sql.

With `login` and `request`: start up as `login` on `database` (default: the login), authenticate (trust,
cleartext, md5 or SCRAM-SHA-256), run the query and be up when it returns at least one row. Without a
login we send an SSLRequest and expect the one-byte `S`/`N` answer every PostgreSQL gives: proof the
postmaster is accepting connections, without needing an account or leaving an auth failure in its log.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct

from director.desired import CheckSpec

from .base import Checker, CheckFailed, Target, close_writer

SSL_REQUEST = struct.pack("!II", 8, 80877103)


def _msg(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!I", len(body) + 4) + body


def _error_text(body: bytes) -> str:
    fields = {f[:1]: f[1:] for f in body.split(b"\0") if f}
    return "PostgreSQL: " + fields.get(b"M", b"error").decode("utf-8", "replace")[:70]


class _Scram:
    """Client side of SCRAM-SHA-256 (RFC 5802/7677), channel binding not used."""

    def __init__(self, password: str):
        self.password = password
        self.nonce = base64.b64encode(secrets.token_bytes(18)).decode()
        self.first_bare = f"n=,r={self.nonce}"

    def first(self) -> bytes:
        return ("n,," + self.first_bare).encode()

    def final(self, server_first: str) -> bytes:
        attrs = dict(part.split("=", 1) for part in server_first.split(",") if "=" in part)
        nonce, salt, iterations = attrs["r"], base64.b64decode(attrs["s"]), int(attrs["i"])
        if not nonce.startswith(self.nonce) or not 0 < iterations <= 1_000_000:
            raise CheckFailed("PostgreSQL: bad SCRAM challenge")
        salted = hashlib.pbkdf2_hmac("sha256", self.password.encode(), salt, iterations)
        client_key = hmac.new(salted, b"Client Key", "sha256").digest()
        without_proof = f"c=biws,r={nonce}"
        auth_message = f"{self.first_bare},{server_first},{without_proof}".encode()
        signature = hmac.new(hashlib.sha256(client_key).digest(), auth_message, "sha256").digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()


class PgsqlChecker(Checker):
    name = "pgsql"

    def __init__(self, spec: CheckSpec):
        super().__init__(spec)
        self.query = spec.request.lstrip("/")

    async def _check(self, target: Target) -> str:
        reader, writer = await self.open(target)
        try:
            if not (self.spec.login and self.query):
                writer.write(SSL_REQUEST)
                answer = await reader.read(1)
                if answer not in (b"S", b"N"):
                    raise CheckFailed(
                        "PostgreSQL: bad SSLRequest answer" if answer else "PostgreSQL: connection closed"
                    )
                return "PostgreSQL accepting connections"
            self.reader, self.writer = reader, writer
            await self._startup()
            rows = await self._run_query()
            writer.write(_msg(b"X", b""))
            if rows < 1:
                raise CheckFailed("SQL query returned no rows")
            return f"PostgreSQL {rows} rows"
        finally:
            await close_writer(writer)

    async def _read(self) -> tuple[bytes, bytes]:
        head = await self.reader.readexactly(5)
        kind, size = head[:1], struct.unpack("!I", head[1:])[0]
        if not kind.isalpha() or not 4 <= size <= 1 << 24:
            raise CheckFailed("PostgreSQL: garbage reply")
        return kind, await self.reader.readexactly(size - 4)

    async def _startup(self) -> None:
        spec = self.spec
        params = f"user\0{spec.login}\0database\0{spec.database or spec.login}\0application_name\0ultramonkey-health\0\0"
        body = struct.pack("!I", 196608) + params.encode()
        self.writer.write(struct.pack("!I", len(body) + 4) + body)
        scram = None
        for _ in range(1000):
            kind, body = await self._read()
            if kind == b"E":
                raise CheckFailed(_error_text(body))
            if kind == b"Z":
                return
            if kind != b"R":
                continue  # ParameterStatus, BackendKeyData, NoticeResponse
            code = struct.unpack("!I", body[:4])[0]
            if code == 3:
                self.writer.write(_msg(b"p", spec.passwd.encode() + b"\0"))
            elif code == 5:
                inner = hashlib.md5((spec.passwd + spec.login).encode()).hexdigest()
                digest = "md5" + hashlib.md5(inner.encode() + body[4:8]).hexdigest()
                self.writer.write(_msg(b"p", digest.encode() + b"\0"))
            elif code == 10:
                if b"SCRAM-SHA-256\0" not in body[4:]:
                    raise CheckFailed("PostgreSQL: no supported SASL mechanism")
                scram = _Scram(spec.passwd)
                first = scram.first()
                self.writer.write(_msg(b"p", b"SCRAM-SHA-256\0" + struct.pack("!I", len(first)) + first))
            elif code == 11 and scram is not None:
                self.writer.write(_msg(b"p", scram.final(body[4:].decode())))
            elif code not in (0, 12):
                raise CheckFailed(f"PostgreSQL: unsupported authentication {code}")
        raise CheckFailed("PostgreSQL: startup did not finish")

    async def _run_query(self) -> int:
        self.writer.write(_msg(b"Q", self.query.encode() + b"\0"))
        rows, error = 0, None
        for _ in range(10_000_000):
            kind, body = await self._read()
            if kind == b"D":
                rows += 1
            elif kind == b"E":
                error = _error_text(body)
            elif kind == b"Z":
                break
        if error:
            raise CheckFailed(error)
        return rows
