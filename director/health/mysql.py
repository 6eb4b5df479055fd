"""negotiate/mysql: a minimal MySQL/MariaDB client for exactly ldirectord's check_sql.

With `login` and `request` set (ldirectord requires both): authenticate (mysql_native_password, or the
caching_sha2_password fast path), run the query and be up when it returns at least one row. Without a
login we only read and validate the server greeting, which proves the server accepts connections and is
not answering with an error such as "too many connections" or "host is blocked".
"""

from __future__ import annotations

import hashlib

from director.desired import CheckSpec

from .base import Checker, CheckFailed, Target, close_writer

CLIENT_LONG_PASSWORD = 0x1
CLIENT_CONNECT_WITH_DB = 0x8
CLIENT_PROTOCOL_41 = 0x200
CLIENT_TRANSACTIONS = 0x2000
CLIENT_SECURE_CONNECTION = 0x8000
CLIENT_PLUGIN_AUTH = 0x80000
MAX_PACKET = 1 << 24


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=False))


def scramble_native(password: str, salt: bytes) -> bytes:
    if not password:
        return b""
    p1 = hashlib.sha1(password.encode()).digest()
    return _xor(p1, hashlib.sha1(salt + hashlib.sha1(p1).digest()).digest())


def scramble_sha2(password: str, salt: bytes) -> bytes:
    if not password:
        return b""
    p1 = hashlib.sha256(password.encode()).digest()
    return _xor(p1, hashlib.sha256(hashlib.sha256(p1).digest() + salt).digest())


def _err(payload: bytes) -> str:
    """Text of an ERR packet (0xff, code, optional #sqlstate, message)."""
    code = int.from_bytes(payload[1:3], "little") if len(payload) >= 3 else 0
    msg = payload[3:]
    if msg.startswith(b"#"):
        msg = msg[6:]
    return f"MySQL error {code}: {msg.decode('utf-8', 'replace')[:60]}"


def _lenenc(payload: bytes, pos: int) -> tuple[int, int]:
    first = payload[pos]
    if first < 0xFB:
        return first, pos + 1
    size = {0xFC: 2, 0xFD: 3, 0xFE: 8}.get(first)
    if size is None:
        raise CheckFailed("MySQL: bad length-encoded integer")
    return int.from_bytes(payload[pos + 1 : pos + 1 + size], "little"), pos + 1 + size


class _Conn:
    def __init__(self, reader, writer):
        self.reader, self.writer, self.seq = reader, writer, 0
        self.greeted = False

    async def read(self) -> bytes:
        head = await self.reader.readexactly(4)
        size = int.from_bytes(head[:3], "little")
        if not self.greeted:  # the greeting is small and numbered 0; anything else is not MySQL
            if head[3] != 0 or size > 4096:
                raise CheckFailed("MySQL: bad greeting")
            self.greeted = True
        self.seq = (head[3] + 1) & 0xFF
        return await self.reader.readexactly(size)

    def write(self, payload: bytes) -> None:
        self.writer.write(len(payload).to_bytes(3, "little") + bytes([self.seq]) + payload)
        self.seq = (self.seq + 1) & 0xFF


def parse_greeting(payload: bytes) -> tuple[str, bytes, str]:
    """(server version, auth salt, auth plugin) from a protocol-10 handshake; CheckFailed otherwise."""
    if payload[:1] == b"\xff":
        raise CheckFailed(_err(payload))
    if payload[:1] != b"\x0a":
        raise CheckFailed("MySQL: bad greeting")
    try:
        end = payload.index(b"\0", 1)
        version = payload[1:end].decode("latin-1")
        pos = end + 1 + 4
        salt = payload[pos : pos + 8]
        pos += 8 + 1 + 2 + 1 + 2 + 2
        salt_len = payload[pos]
        pos += 1 + 10
        rest = max(13, salt_len - 8)
        salt += payload[pos : pos + rest].rstrip(b"\0")
        pos += rest
        plugin = payload[pos:].split(b"\0", 1)[0].decode("latin-1") or "mysql_native_password"
    except (ValueError, IndexError):
        raise CheckFailed("MySQL: bad greeting") from None
    return version, salt, plugin


class MysqlChecker(Checker):
    name = "mysql"

    def __init__(self, spec: CheckSpec):
        super().__init__(spec)
        self.query = spec.request.lstrip("/")

    async def _check(self, target: Target) -> str:
        reader, writer = await self.open(target)
        conn = _Conn(reader, writer)
        try:
            version, salt, plugin = parse_greeting(await conn.read())
            if not (self.spec.login and self.query):
                return f"MySQL {version}"
            await self._login(conn, salt, plugin)
            rows = await self._query(conn)
            conn.seq = 0
            conn.write(b"\x01")  # COM_QUIT
            if rows < 1:
                raise CheckFailed("SQL query returned no rows")
            return f"MySQL {rows} rows"
        finally:
            await close_writer(writer)

    async def _login(self, conn: _Conn, salt: bytes, plugin: str) -> None:
        spec = self.spec
        caps = CLIENT_LONG_PASSWORD | CLIENT_PROTOCOL_41 | CLIENT_TRANSACTIONS | CLIENT_SECURE_CONNECTION
        caps |= CLIENT_PLUGIN_AUTH | (CLIENT_CONNECT_WITH_DB if spec.database else 0)
        if plugin not in ("mysql_native_password", "caching_sha2_password"):
            plugin = "mysql_native_password"
        auth = (scramble_sha2 if plugin == "caching_sha2_password" else scramble_native)(spec.passwd, salt)
        payload = caps.to_bytes(4, "little") + MAX_PACKET.to_bytes(4, "little") + bytes([33]) + bytes(23)
        payload += spec.login.encode() + b"\0" + bytes([len(auth)]) + auth
        if spec.database:
            payload += spec.database.encode() + b"\0"
        conn.write(payload + plugin.encode() + b"\0")
        for _ in range(4):
            reply = await conn.read()
            if reply[:1] == b"\x00":
                return
            if reply[:1] == b"\xff":
                raise CheckFailed(_err(reply))
            if reply[:1] == b"\xfe":  # auth switch request
                name, _, data = reply[1:].partition(b"\0")
                plugin, salt = name.decode("latin-1"), data.rstrip(b"\0")
                fn = scramble_sha2 if plugin == "caching_sha2_password" else scramble_native
                conn.write(fn(spec.passwd, salt))
            elif reply[:2] == b"\x01\x03":  # caching_sha2 fast auth succeeded; OK follows
                continue
            elif reply[:2] == b"\x01\x04":
                raise CheckFailed("MySQL: caching_sha2 full authentication needs TLS")
            else:
                raise CheckFailed("MySQL: unexpected authentication reply")
        raise CheckFailed("MySQL: authentication did not finish")

    async def _query(self, conn: _Conn) -> int:
        conn.seq = 0
        conn.write(b"\x03" + self.query.encode())
        first = await conn.read()
        if first[:1] == b"\xff":
            raise CheckFailed(_err(first))
        if first[:1] == b"\x00":
            return 0  # not a result set (ldirectord: "rows" must be > 0)
        columns, _ = _lenenc(first, 0)
        for _ in range(columns):
            await conn.read()
        rows, eofs = 0, 0
        for _ in range(1_000_000):
            pkt = await conn.read()
            if pkt[:1] == b"\xff":
                raise CheckFailed(_err(pkt))
            if pkt[:1] == b"\xfe" and len(pkt) < 9:
                eofs += 1
                if eofs == 2:  # column-definition EOF, then end of rows
                    return rows
                continue
            rows += 1
        return rows
