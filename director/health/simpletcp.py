"""negotiate/simpletcp: send `request` verbatim, half-close, and find `receive` (regex) in a reply line.

As ldirectord does: a leading "/" (ldirectord stores every request with one) is dropped and the two
characters backslash-n become a newline (we also accept backslash-r, since most line protocols want CRLF).
Redis, for instance: request "PING\\r\\n", receive "PONG".
"""

from __future__ import annotations

from director.desired import CheckSpec

from .base import MAX_READ, Checker, CheckFailed, Target, close_writer, compile_receive


class SimpleTcpChecker(Checker):
    name = "simpletcp"

    def __init__(self, spec: CheckSpec):
        super().__init__(spec)
        request = spec.request[1:] if spec.request.startswith("/") else spec.request
        self.payload = request.replace("\\r", "\r").replace("\\n", "\n").encode("latin-1")
        self.receive = compile_receive(spec.receive)

    async def _check(self, target: Target) -> str:
        reader, writer = await self.open(target)
        try:
            if self.payload:
                writer.write(self.payload)
            if writer.can_write_eof():
                writer.write_eof()
            seen = 0
            while seen < MAX_READ:
                line = await reader.readline()
                if not line:
                    break
                seen += len(line)
                if self.receive is None or self.receive.search(line.decode("latin-1")):
                    return "receive matched" if self.receive else "replied"
            raise CheckFailed("receive regex not matched" if seen else "no reply")
        finally:
            await close_writer(writer)
