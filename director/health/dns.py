"""negotiate/dns: one query to the real server (UDP, or TCP when the virtual service is TCP).

As ldirectord's check_dns: `request` is the name to resolve (an A lookup) or an IP address (a PTR lookup),
and `receive` is a regex that one A address or PTR name of the answer must match. ldirectord declares a
server with an empty `receive` down; we accept any NOERROR answer with at least one record instead,
which is the useful reading of "no expectation".
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import struct

from director.desired import CheckSpec

from .base import Checker, CheckFailed, Target, close_writer, compile_receive, udp_exchange

TYPE_A, TYPE_PTR = 1, 12
RCODES = {1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


def encode_name(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            raw = label.encode("idna")
            if len(raw) > 63:
                raise CheckFailed("DNS request name label too long")
            out += bytes([len(raw)]) + raw
    return out + b"\0"


def build_query(qid: int, name: str, qtype: int) -> bytes:
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + encode_name(name) + struct.pack("!HH", qtype, 1)


def decode_name(msg: bytes, pos: int) -> tuple[str, int]:
    """A possibly compressed name at `pos`; returns (name, position after it). Bounded against loops."""
    labels, end, jumps = [], None, 0
    while True:
        if pos >= len(msg):
            raise CheckFailed("DNS: truncated name")
        n = msg[pos]
        if n & 0xC0 == 0xC0:
            if pos + 1 >= len(msg) or jumps > 20:
                raise CheckFailed("DNS: bad name pointer")
            if end is None:
                end = pos + 2
            pos = ((n & 0x3F) << 8) | msg[pos + 1]
            jumps += 1
            continue
        if n == 0:
            return ".".join(labels), (end if end is not None else pos + 1)
        labels.append(msg[pos + 1 : pos + 1 + n].decode("latin-1"))
        pos += 1 + n


def parse_answers(msg: bytes, qid: int) -> list[tuple[int, str]]:
    """(type, value) of each A/AAAA/PTR answer; CheckFailed for garbage or an error rcode."""
    if len(msg) < 12:
        raise CheckFailed("DNS: short reply")
    rid, flags, qd, an, _, _ = struct.unpack("!HHHHHH", msg[:12])
    if rid != qid or not flags & 0x8000:
        raise CheckFailed("DNS: reply does not match query")
    if flags & 0x000F:
        raise CheckFailed(f"DNS {RCODES.get(flags & 0xF, flags & 0xF)}")
    pos = 12
    try:
        for _ in range(qd):
            _, pos = decode_name(msg, pos)
            pos += 4
        out = []
        for _ in range(an):
            _, pos = decode_name(msg, pos)
            rtype, _, _, rdlen = struct.unpack("!HHIH", msg[pos : pos + 10])
            pos += 10
            rdata = msg[pos : pos + rdlen]
            if len(rdata) != rdlen:
                raise CheckFailed("DNS: truncated answer")
            if rtype == TYPE_A and rdlen == 4:
                out.append((rtype, str(ipaddress.IPv4Address(rdata))))
            elif rtype == 28 and rdlen == 16:
                out.append((rtype, str(ipaddress.IPv6Address(rdata))))
            elif rtype == TYPE_PTR:
                out.append((rtype, decode_name(msg, pos)[0]))
            pos += rdlen
    except struct.error:
        raise CheckFailed("DNS: truncated reply") from None
    return out


class DnsChecker(Checker):
    name = "dns"

    def __init__(self, spec: CheckSpec):
        super().__init__(spec)
        request = spec.request.lstrip("/") or "localhost"
        try:
            self.qname, self.qtype = ipaddress.ip_address(request).reverse_pointer, TYPE_PTR
        except ValueError:
            self.qname, self.qtype = request, TYPE_A
        self.receive = compile_receive(spec.receive)

    async def _check(self, target: Target) -> str:
        qid = random.getrandbits(16)
        query = build_query(qid, self.qname, self.qtype)
        if target.protocol == "tcp":
            reply = await self._tcp(target, query)
        else:
            reply = await udp_exchange(target, query, lambda r: r[:2] == query[:2])
        answers = parse_answers(reply, qid)
        if not answers:
            raise CheckFailed("DNS: no answer")
        if self.receive is None:
            return f"DNS {answers[0][1]}"
        for _, value in answers:
            if self.receive.search(value):
                return f"DNS {value}"
        raise CheckFailed("receive regex not matched")

    async def _tcp(self, target: Target, query: bytes) -> bytes:
        reader, writer = await self.open(target)
        try:
            writer.write(struct.pack("!H", len(query)) + query)
            try:
                (size,) = struct.unpack("!H", await reader.readexactly(2))
                return await reader.readexactly(size)
            except asyncio.IncompleteReadError:
                raise CheckFailed("DNS: truncated reply") from None
        finally:
            await close_writer(writer)
