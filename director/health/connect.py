"""checktype=connect: a TCP handshake within checktimeout, then close (ldirectord's check_connect).

Uses a bare non-blocking socket rather than a transport: nothing is exchanged, so this is the cheapest
possible liveness proof. (ldirectord turns connect checks of UDP services into pings; `registry` does too.)
"""

from __future__ import annotations

import asyncio
import socket

from director.desired import CheckSpec

from .base import Checker, CheckFailed, Target, fmt_seconds


class ConnectChecker(Checker):
    """Up when the three-way handshake completes."""

    name = "connect"

    def __init__(self, spec: CheckSpec):
        super().__init__(spec)
        self.timeout = self.connect_timeout = float(spec.checktimeout)

    async def _check(self, target: Target) -> str:
        loop = asyncio.get_running_loop()
        sock = socket.socket(target.family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            async with asyncio.timeout(self.connect_timeout):
                await loop.sock_connect(sock, (target.address, target.check_port))
        except TimeoutError:
            raise CheckFailed(f"connect timeout {fmt_seconds(self.connect_timeout)}") from None
        finally:
            sock.close()
        return "connected"
