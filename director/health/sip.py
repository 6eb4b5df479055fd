"""negotiate/sip: an OPTIONS request (ldirectord's, as `login` user) answered by `SIP/2.0 200`."""

from __future__ import annotations

import secrets

from .base import Checker, CheckFailed, Target, close_writer, read_line, udp_exchange


class SipChecker(Checker):
    name = "sip"

    def _request(self, target: Target, transport: str, local: tuple) -> bytes:
        user = self.spec.login or f"ping@{target.host_literal}"
        branch = "z9hG4bK" + secrets.token_hex(8)
        return (
            f"OPTIONS sip:{user} SIP/2.0\r\n"
            f"Via: SIP/2.0/{transport} {local[0]}:{local[1]};branch={branch}\r\n"
            "Max-Forwards: 70\r\n"
            f"To: <sip:{user}>\r\n"
            f"From: <sip:{user}>;tag={secrets.token_hex(4)}\r\n"
            f"Call-ID: {secrets.token_hex(8)}\r\n"
            "CSeq: 63104 OPTIONS\r\n"
            f"Contact: <sip:{user}>\r\n"
            "Accept: application/sdp\r\nContent-Length: 0\r\n\r\n"
        ).encode()

    async def _check(self, target: Target) -> str:
        if target.protocol == "udp":
            local = ("0.0.0.0", 5060)
            reply = await udp_exchange(
                target, self._request(target, "UDP", local), lambda r: r.startswith(b"SIP/")
            )
            status = reply.split(b"\r\n", 1)[0].decode("latin-1")
        else:
            reader, writer = await self.open(target)
            try:
                local = writer.get_extra_info("sockname")[:2]
                writer.write(self._request(target, "TCP", local))
                status = await read_line(reader, "SIP")
            finally:
                await close_writer(writer)
        if not status.startswith("SIP/2.0 200"):
            raise CheckFailed(status[:40] if status.startswith("SIP/") else "SIP: bad status line")
        return "SIP 200"
