"""negotiate/ldap: bind (simple with login/passwd, else anonymous), then a base-scope search of the base
DN given in `request` for (objectClass=*); up when exactly one entry comes back and its DN matches
`receive` (regex; empty matches anything). That is ldirectord's check_ldap, on a minimal BER codec.
"""

from __future__ import annotations

import asyncio

from director.desired import CheckSpec

from .base import Checker, CheckFailed, Target, close_writer, compile_receive

RESULT_CODES = {0: "success", 32: "noSuchObject", 49: "invalidCredentials", 50: "insufficientAccessRights"}


def tlv(tag: int, value: bytes) -> bytes:
    n = len(value)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + value


def integer(tag: int, value: int) -> bytes:
    return tlv(tag, value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big", signed=True))


def bind_request(msg_id: int, dn: str, password: str) -> bytes:
    body = integer(0x02, 3) + tlv(0x04, dn.encode()) + tlv(0x80, password.encode())
    return tlv(0x30, integer(0x02, msg_id) + tlv(0x60, body))


def search_request(msg_id: int, base: str) -> bytes:
    body = (
        tlv(0x04, base.encode())
        + integer(0x0A, 0)  # scope base
        + integer(0x0A, 0)  # never deref aliases
        + integer(0x02, 0)  # size limit
        + integer(0x02, 0)  # time limit
        + tlv(0x01, b"\x00")  # typesOnly false
        + tlv(0x87, b"objectClass")  # filter: present
        + tlv(0x30, tlv(0x04, b"1.1"))  # no attributes
    )
    return tlv(0x30, integer(0x02, msg_id) + tlv(0x63, body))


def parse_tlv(data: bytes, pos: int) -> tuple[int, bytes, int]:
    """(tag, value, position after) of the element at `pos`; CheckFailed on truncation or garbage."""
    if pos + 2 > len(data):
        raise CheckFailed("LDAP: truncated reply")
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first & 0x80:
        nbytes = first & 0x7F
        if not 0 < nbytes <= 4 or pos + nbytes > len(data):
            raise CheckFailed("LDAP: bad length")
        length = int.from_bytes(data[pos : pos + nbytes], "big")
        pos += nbytes
    else:
        length = first
    if pos + length > len(data):
        raise CheckFailed("LDAP: truncated reply")
    return tag, data[pos : pos + length], pos + length


async def read_message(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One LDAPMessage: (protocolOp tag, protocolOp value)."""
    head = await reader.readexactly(2)
    if head[0] != 0x30:
        raise CheckFailed("LDAP: garbage reply")
    extra = b""
    if head[1] & 0x80:
        n = head[1] & 0x7F
        if not 0 < n <= 4:
            raise CheckFailed("LDAP: bad length")
        extra = await reader.readexactly(n)
        length = int.from_bytes(extra, "big")
    else:
        length = head[1]
    if length > 1 << 20:
        raise CheckFailed("LDAP: reply too large")
    body = await reader.readexactly(length)
    _, _, pos = parse_tlv(body, 0)  # messageID
    tag, value, _ = parse_tlv(body, pos)
    return tag, value


def result_code(value: bytes) -> int:
    _, code, _ = parse_tlv(value, 0)
    return int.from_bytes(code, "big")


class LdapChecker(Checker):
    name = "ldap"

    def __init__(self, spec: CheckSpec):
        super().__init__(spec)
        self.base = spec.request[1:] if spec.request.startswith("/") else spec.request
        self.receive = compile_receive(spec.receive)

    async def _check(self, target: Target) -> str:
        reader, writer = await self.open(target)
        try:
            writer.write(bind_request(1, self.spec.login, self.spec.passwd if self.spec.login else ""))
            tag, value = await read_message(reader)
            if tag != 0x61:
                raise CheckFailed("LDAP: unexpected bind reply")
            code = result_code(value)
            if code != 0:
                raise CheckFailed(f"LDAP bind failed: {RESULT_CODES.get(code, code)}")
            writer.write(search_request(2, self.base))
            dns: list[str] = []
            for _ in range(1000):
                tag, value = await read_message(reader)
                if tag == 0x64:  # SearchResultEntry
                    dns.append(parse_tlv(value, 0)[1].decode("utf-8", "replace"))
                elif tag == 0x65:  # SearchResultDone
                    code = result_code(value)
                    if code != 0:
                        raise CheckFailed(f"LDAP search failed: {RESULT_CODES.get(code, code)}")
                    break
            writer.write(tlv(0x30, integer(0x02, 3) + tlv(0x42, b"")))  # unbind
            if len(dns) != 1:
                raise CheckFailed(f"LDAP: {len(dns)} entries")
            if self.receive is not None and not self.receive.search(dns[0]):
                raise CheckFailed("receive regex not matched")
            return "LDAP entry found"
        finally:
            await close_writer(writer)
