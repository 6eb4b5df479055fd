"""Lab real-server daemon: HTTP on :80 and a line service on :5500, answering with the server's name.

Runs inside a real-server network namespace of a lab guest. HTTP answers every request with the name in the
body (HTTP/1.1 keep-alive honoured, so a test can hold an established connection and reuse it); the :5500
service answers each line it receives with "<name> <line>", so a held connection can be probed repeatedly.

usage: python lab/rsd.py NAME [--http-port 80] [--tcp-port 5500] [--pidfile FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal


async def http(name: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    body = f"{name}\n".encode()
    try:
        for _ in range(10_000):  # bounded keep-alive
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=300)
            keep = b"HTTP/1.1" in head.split(b"\r\n", 1)[0] and b"connection: close" not in head.lower()
            head_only = head.startswith(b"HEAD ")
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: %s\r\n\r\n"
                % (len(body), b"keep-alive" if keep else b"close")
            )
            if not head_only:
                writer.write(body)
            await writer.drain()
            if not keep:
                break
    except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        pass
    finally:
        writer.close()


async def lines(name: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        for _ in range(100_000):
            line = await asyncio.wait_for(reader.readline(), timeout=3600)
            if not line:
                break
            writer.write(f"{name} ".encode() + line)
            await writer.drain()
    except (TimeoutError, ConnectionError):
        pass
    finally:
        writer.close()


async def main(args) -> None:
    servers = []
    if args.http_port:
        servers.append(
            await asyncio.start_server(
                lambda r, w: http(args.name, r, w), port=args.http_port, reuse_address=True
            )
        )
    if args.tcp_port:
        servers.append(
            await asyncio.start_server(
                lambda r, w: lines(args.name, r, w), port=args.tcp_port, reuse_address=True
            )
        )
    if args.pidfile:
        with open(args.pidfile, "w") as f:
            f.write(str(os.getpid()))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for s in servers:
        s.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("name")
    ap.add_argument("--http-port", type=int, default=80)
    ap.add_argument("--tcp-port", type=int, default=5500)
    ap.add_argument("--pidfile")
    asyncio.run(main(ap.parse_args()))
