"""Real servers for the daemon oracle suite (tests/kernel/test_daemon_oracle.py), one process per lab real.

Run inside a real server's namespace: `python tests/kernel/oracle_servers.py rs1`. rs1 and rs2 answer the same
requests differently, so one virtual service over both gets a mixed table that tells the rules apart:

=========================  ==========================================  ==========================================
HTTP :8001 path            rs1                                         rs2
=========================  ==========================================  ==========================================
/                          200 "OK ready"                              200 "OK ready"
/moved                     302 -> /final (200 "final READY")           302 -> /gone (404)
/abs                       302 -> http://<own ip>:8001/final           302 -> http://<own ip>:8001/wrong
/half                      200 "READY"                                 200 "nothing here" (wrong content)
/err                       200 "READY"                                 500
/slow                      200 "READY"                                 never answers (hangs)
/wrong                     200 "nothing here"                          200 "nothing here"
=========================  ==========================================  ==========================================

TCP :8005 accepts on rs1 only (rs2 refuses); TCP :8002 accepts and never answers on both; UDP :9053 echoes
on both and TCP :9053 accepts on rs1 only (keepalived's TCP_CHECK on a UDP service sees the difference,
ldirectord's ping does not). Everything is bounded: the process exits after an hour.
"""

from __future__ import annotations

import asyncio
import sys

ADDRESS = {"rs1": "192.168.1.4", "rs2": "192.168.1.5"}


def pages(name: str) -> dict[str, tuple[int, bytes, str]]:
    """path -> (status, body, Location) for this real server."""
    me = ADDRESS[name]
    one = name == "rs1"
    return {
        "/": (200, b"OK ready", ""),
        "/final": (200, b"final READY", ""),
        "/gone": (404, b"gone", ""),
        "/wrong": (200, b"nothing here", ""),
        "/moved": (302, b"moved", "/final" if one else "/gone"),
        "/abs": (302, b"moved", f"http://{me}:8001/final" if one else f"http://{me}:8001/wrong"),
        "/half": (200, b"READY" if one else b"nothing here", ""),
        "/err": (200, b"READY", "") if one else (500, b"error", ""),
        "/slow": (200, b"READY", "") if one else (0, b"", ""),
    }


async def http(reader, writer, table):
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        parts = head.split(b" ", 2)
        method, path = parts[0], parts[1].decode("latin-1").split("?")[0] if len(parts) > 1 else "/"
        status, body, location = table.get(path, (404, b"no such page", ""))
        if status == 0:  # hang: hold the connection until the client gives up
            await asyncio.sleep(60)
            return
        extra = f"Location: {location}\r\n" if location else ""
        writer.write(
            f"HTTP/1.0 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode()
            + (b"" if method == b"HEAD" else body)
        )
        await writer.drain()
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
        pass
    finally:
        writer.close()


async def hold(reader, writer):
    try:
        await asyncio.wait_for(reader.read(1), 60)
    except (OSError, TimeoutError):
        pass
    finally:
        writer.close()


class Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(data, addr)


async def main(name: str) -> None:
    table = pages(name)
    await asyncio.start_server(lambda r, w: http(r, w, table), "0.0.0.0", 8001)
    await asyncio.start_server(hold, "0.0.0.0", 8002)
    if name == "rs1":
        await asyncio.start_server(hold, "0.0.0.0", 8005)
        await asyncio.start_server(hold, "0.0.0.0", 9053)
    await asyncio.get_running_loop().create_datagram_endpoint(Echo, local_addr=("0.0.0.0", 9053))
    print("ready", flush=True)
    await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
