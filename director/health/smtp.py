"""negotiate/smtp: greeting 2xx, EHLO accepted (HELO as fallback), QUIT — what ldirectord's Net::SMTP does."""

from __future__ import annotations

import socket

from .base import Checker, CheckFailed, Target, close_writer, read_line


async def read_reply(reader, what: str) -> tuple[int, str]:
    """An SMTP/FTP style reply: `ddd-text` lines continue, `ddd text` ends; anything else is garbage."""
    for _ in range(100):
        line = await read_line(reader, what)
        if len(line) < 3 or not line[:3].isdigit() or (len(line) > 3 and line[3] not in " -"):
            raise CheckFailed(f"{what}: unexpected reply {line[:40]!r}")
        if len(line) == 3 or line[3] == " ":
            return int(line[:3]), line[4:]
    raise CheckFailed(f"{what}: endless multi-line reply")


class SmtpChecker(Checker):
    name = "smtp"

    async def _check(self, target: Target) -> str:
        reader, writer = await self.open(target)
        try:
            code, text = await read_reply(reader, "SMTP greeting")
            if code // 100 != 2:
                raise CheckFailed(f"SMTP {code}")
            writer.write(f"EHLO {socket.gethostname()}\r\n".encode())
            code, _ = await read_reply(reader, "SMTP EHLO")
            if code // 100 != 2:
                writer.write(f"HELO {socket.gethostname()}\r\n".encode())
                code, _ = await read_reply(reader, "SMTP HELO")
                if code // 100 != 2:
                    raise CheckFailed(f"SMTP HELO {code}")
            writer.write(b"QUIT\r\n")
            return f"SMTP {code}"
        finally:
            await close_writer(writer)
