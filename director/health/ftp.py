"""negotiate/ftp: greeting, login (anonymous when no login is set, like Net::FTP), then when `request`
names a file: PASV + RETR and `receive` (regex) searched in its content, as ldirectord's check_ftp does.

The passive data connection always goes to the real server's own address, whatever address the PASV
reply names: a health check must never be steered to a third host.
"""

from __future__ import annotations

import asyncio
import re

from director.desired import CheckSpec

from .base import MAX_READ, Checker, CheckFailed, Target, close_writer, compile_receive
from .smtp import read_reply

_PASV = re.compile(r"(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)")


class FtpChecker(Checker):
    name = "ftp"

    def __init__(self, spec: CheckSpec):
        super().__init__(spec)
        self.receive = compile_receive(spec.receive)

    async def _command(self, reader, writer, line: str, what: str) -> tuple[int, str]:
        writer.write(line.encode("latin-1") + b"\r\n")
        return await read_reply(reader, what)

    async def _check(self, target: Target) -> str:
        reader, writer = await self.open(target)
        try:
            code, _ = await read_reply(reader, "FTP greeting")
            if code != 220:
                raise CheckFailed(f"FTP greeting {code}")
            code, _ = await self._command(
                reader, writer, f"USER {self.spec.login or 'anonymous'}", "FTP USER"
            )
            if code == 331:
                code, _ = await self._command(
                    reader, writer, f"PASS {self.spec.passwd or 'ldirectord@'}", "FTP PASS"
                )
            if code != 230:
                raise CheckFailed(f"FTP login {code}")
            path = self.spec.request
            if not path or path == "/":
                writer.write(b"QUIT\r\n")
                return "FTP login ok"
            await self._command(reader, writer, "TYPE I", "FTP TYPE")
            code, text = await self._command(reader, writer, "PASV", "FTP PASV")
            m = _PASV.search(text)
            if code != 227 or m is None:
                raise CheckFailed(f"FTP PASV {code}")
            port = int(m.group(5)) * 256 + int(m.group(6))
            data_reader, data_writer = await asyncio.open_connection(target.address, port)
            try:
                code, _ = await self._command(reader, writer, f"RETR {path}", "FTP RETR")
                if code not in (125, 150):
                    raise CheckFailed(f"FTP RETR {code}")
                chunks: list[bytes] = []
                while sum(map(len, chunks)) < MAX_READ:
                    chunk = await data_reader.read(65536)
                    if not chunk:
                        break
                    chunks.append(chunk)
                content = b"".join(chunks)
            finally:
                await close_writer(data_writer)
            writer.write(b"QUIT\r\n")
            if self.receive is not None and not self.receive.search(content.decode("latin-1")):
                raise CheckFailed("receive regex not matched")
            return "FTP RETR ok"
        finally:
            await close_writer(writer)
