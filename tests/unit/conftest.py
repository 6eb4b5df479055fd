"""Unit-test fixtures. Health-check fixtures are prefixed `health_` and live in their own section.

health_servers: real asyncio TCP/UDP servers on loopback, run on one background event loop thread, so
checkers under test (run with asyncio.run in the test thread) talk to them over real sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

import pytest

# ---- health checks ---------------------------------------------------------------------------------------


class HealthServers:
    """Factory for throwaway loopback servers; everything is closed when the test ends."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self._closers = []
        self._tasks = set()

    def _run(self, coro, timeout: float = 10):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def tcp(self, handler, host: str = "127.0.0.1", ssl=None) -> int:
        """Serve `async handler(reader, writer)` on host:<free port>; returns the port."""

        async def wrapped(reader, writer):
            self._tasks.add(asyncio.current_task())
            try:
                await handler(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
                pass
            finally:
                writer.close()
                self._tasks.discard(asyncio.current_task())

        async def start():
            return await asyncio.start_server(wrapped, host, 0, ssl=ssl)

        server = self._run(start())
        self._closers.append(server.close)
        return server.sockets[0].getsockname()[1]

    def udp(self, reply, host: str = "127.0.0.1") -> int:
        """Serve datagrams: `reply(data) -> bytes | None` (None: stay silent); returns the port."""

        class Proto(asyncio.DatagramProtocol):
            def connection_made(self, transport):
                self.transport = transport

            def datagram_received(self, data, addr):
                answer = reply(data)
                if answer is not None:
                    self.transport.sendto(answer, addr)

        async def start():
            transport, _ = await self.loop.create_datagram_endpoint(Proto, local_addr=(host, 0))
            return transport

        transport = self._run(start())
        self._closers.append(transport.close)
        return transport.get_extra_info("sockname")[1]

    def close(self):
        async def close_all():
            for close in self._closers:
                with contextlib.suppress(Exception):
                    close()
            self._closers.clear()
            tasks = [t for t in self._tasks if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self._run(close_all())


@pytest.fixture(scope="session")
def health_loop():
    """One event loop thread serving all test servers of the session."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="health-test-servers", daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


@pytest.fixture
def health_servers(health_loop):
    servers = HealthServers(health_loop)
    yield servers
    servers.close()


@pytest.fixture
def health_blackhole():
    """A loopback port whose SYNs go unanswered: a listener with a full accept queue that never accepts.

    Linux drops SYNs to a listener whose accept queue is full, which is how a connect timeout looks
    from the director without needing any address outside loopback.
    """
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        s = socket.socket()
        s.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            s.connect(("127.0.0.1", port))
        fillers.append(s)
    yield port
    for s in fillers:
        s.close()
    listener.close()
