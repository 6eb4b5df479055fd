"""negotiate/nntp: the greeting starts with a 2 (ldirectord reads 64 bytes and matches /^2/)."""

from __future__ import annotations

from .base import Checker, CheckFailed, Target, close_writer


class NntpChecker(Checker):
    name = "nntp"

    async def _check(self, target: Target) -> str:
        reader, writer = await self.open(target)
        try:
            data = await reader.read(64)
            if not data:
                raise CheckFailed("NNTP: connection closed")
            if not data.startswith(b"2"):
                raise CheckFailed(f"NNTP greeting: {data[:30]!r}")
            writer.write(b"QUIT\r\n")
            return f"NNTP {data[:3].decode('latin-1')}"
        finally:
            await close_writer(writer)
