"""checktype=ping: one ICMP echo request/reply within checktimeout, without an external binary.

A raw socket when we may open one (root or CAP_NET_RAW, the normal case for an IPVS director), else
the unprivileged ICMP datagram socket Linux offers when `net.ipv4.ping_group_range` covers our group.
The socket is connected to the real server, so the kernel only hands us ICMP from that host; we match
our identifier (raw sockets see every echo) and sequence number.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import struct

from director.desired import CheckSpec

from .base import Checker, CheckFailed, Target, fmt_seconds

_seq = itertools.count(1)


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def open_icmp_socket(family: int) -> tuple[socket.socket, bool]:
    """(socket, is_raw). Raises CheckFailed when neither kind is permitted."""
    proto = socket.IPPROTO_ICMP if family == socket.AF_INET else socket.IPPROTO_ICMPV6
    for kind, raw in ((socket.SOCK_RAW, True), (socket.SOCK_DGRAM, False)):
        try:
            sock = socket.socket(family, kind, proto)
        except PermissionError:
            continue
        sock.setblocking(False)
        return sock, raw
    raise CheckFailed("ping: no permission for ICMP sockets")


class PingChecker(Checker):
    name = "ping"

    def __init__(self, spec: CheckSpec):
        super().__init__(spec)
        self.timeout = float(spec.checktimeout)

    async def _check(self, target: Target) -> str:
        loop = asyncio.get_running_loop()
        family = target.family
        v6 = family == socket.AF_INET6
        request_type, reply_type = (128, 129) if v6 else (8, 0)
        sock, raw = open_icmp_socket(family)
        try:
            ident = (os.getpid() ^ id(sock)) & 0xFFFF
            seq = next(_seq) & 0xFFFF
            payload = b"ultramonkey-health" + struct.pack("!d", loop.time())
            header = struct.pack("!BBHHH", request_type, 0, 0, ident, seq)
            csum = 0 if v6 else checksum(header + payload)  # the kernel fills in ICMPv6 checksums
            packet = struct.pack("!BBHHH", request_type, 0, csum, ident, seq) + payload
            sock.connect((target.address, 0))  # immediate for ICMP sockets; filters replies by source
            await loop.sock_sendall(sock, packet)
            for _ in range(256):
                data = await loop.sock_recv(sock, 2048)
                if raw and not v6:
                    data = data[(data[0] & 0x0F) * 4 :]  # IPv4 raw sockets include the IP header
                if len(data) < 8:
                    continue
                rtype, _, _, rid, rseq = struct.unpack("!BBHHH", data[:8])
                if rtype == reply_type and rseq == seq and (rid == ident or not raw) and data[8:] == payload:
                    return "echo reply"
            raise CheckFailed("ping: no matching echo reply")
        except TimeoutError:
            raise CheckFailed(f"ping timeout {fmt_seconds(self.timeout)}") from None
        finally:
            sock.close()
