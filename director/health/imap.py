"""negotiate/imap: `* OK` (or PREAUTH) greeting, and LOGIN accepted when a login is configured."""

from __future__ import annotations

from .base import Checker, CheckFailed, Target, close_writer, read_line


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ImapChecker(Checker):
    name = "imap"

    async def _check(self, target: Target) -> str:
        reader, writer = await self.open(target)
        try:
            greeting = await read_line(reader, "IMAP greeting")
            if not (greeting.startswith("* OK") or greeting.startswith("* PREAUTH")):
                raise CheckFailed(f"IMAP greeting: {greeting[:40]!r}")
            if self.spec.login:
                writer.write(f"a1 LOGIN {_quote(self.spec.login)} {_quote(self.spec.passwd)}\r\n".encode())
                for _ in range(100):  # skip untagged lines such as capability updates
                    line = await read_line(reader, "IMAP login")
                    if line.startswith("a1 "):
                        break
                else:
                    raise CheckFailed("IMAP login: no tagged reply")
                if not line.startswith("a1 OK"):
                    raise CheckFailed(f"IMAP login: {line[3:40]}")
            writer.write(b"a2 LOGOUT\r\n")
            return "IMAP OK"
        finally:
            await close_writer(writer)
