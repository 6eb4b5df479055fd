"""negotiate/pop: `+OK` greeting, and USER/PASS accepted when a login is configured (Mail::POP3Client)."""

from __future__ import annotations

from .base import Checker, CheckFailed, Target, close_writer, read_line


class PopChecker(Checker):
    name = "pop"

    async def _expect_ok(self, reader, what: str) -> str:
        line = await read_line(reader, what)
        if not line.startswith("+OK"):
            raise CheckFailed(f"{what}: {line[:40]!r}")
        return line

    async def _check(self, target: Target) -> str:
        reader, writer = await self.open(target)
        try:
            await self._expect_ok(reader, "POP greeting")
            if self.spec.login:
                writer.write(f"USER {self.spec.login}\r\n".encode())
                await self._expect_ok(reader, "POP USER")
                writer.write(f"PASS {self.spec.passwd}\r\n".encode())
                await self._expect_ok(reader, "POP login")
            writer.write(b"QUIT\r\n")
            return "POP +OK"
        finally:
            await close_writer(writer)
