"""The engine under overload: a late loop never turns a healthy server down, the engine says it is behind, its
schedule stretches and recovers. Real sockets on loopback; the servers run in their own process, so starving
the engine (a blocking call in its loop, a thread that hogs the GIL) does not starve them.

No timing assertions: only behaviour (no DOWN, `load()` reporting behind, then not) with generous bounds.
"""

from __future__ import annotations

import asyncio
import json
import queue
import subprocess
import sys
import threading
import time

import pytest

from director.desired import CheckSpec, RealSpec, ServiceSpec
from director.health.base import Target
from director.health.engine import HealthEngine
from director.health.registry import build_checker

SERVER = r"""
import asyncio, json, sys
count, delay = int(sys.argv[1]), float(sys.argv[2])
RESPONSE = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"

class Http(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.buf = transport, b""
    def data_received(self, data):
        self.buf += data
        if b"\r\n\r\n" in self.buf:
            asyncio.get_running_loop().call_later(delay, self.answer)
    def answer(self):
        if not self.transport.is_closing():
            self.transport.write(RESPONSE)
            self.transport.close()

async def main():
    loop = asyncio.get_running_loop()
    ports = []
    for _ in range(count):
        server = await loop.create_server(Http, "127.0.0.1", 0, backlog=1024)
        ports.append(server.sockets[0].getsockname()[1])
    print(json.dumps(ports), flush=True)
    await asyncio.wait_for(loop.run_in_executor(None, sys.stdin.read), 300)  # until the test closes stdin

asyncio.run(main())
"""


@pytest.fixture
def http_farm():
    """start(count, delay) -> ports of `count` HTTP servers in another process answering after `delay` s."""
    procs = []

    def start(count: int, delay: float = 0.0) -> list[int]:
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(count), str(delay)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        return json.loads(proc.stdout.readline())

    yield start
    for proc in procs:
        proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def services(ports, interval, timeout=2.0) -> list[ServiceSpec]:
    check = CheckSpec(
        service="http", checkinterval=interval, checktimeout=timeout, negotiatetimeout=timeout, redirects=0
    )
    reals = tuple(RealSpec("127.0.0.1", p) for p in ports)
    return [ServiceSpec("tcp", "192.0.2.1", 80, check=check, reals=reals)]


class Watch:
    """Collects the engine's transitions."""

    def __init__(self):
        self.ups: queue.Queue = queue.Queue()
        self.downs: list = []

    def on_change(self, service, real, up, result):
        if up:
            self.ups.put(real)
        else:
            self.downs.append((real, result.reason))

    def all_up(self, count: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        for _ in range(count):
            self.ups.get(timeout=max(0.01, deadline - time.monotonic()))


def test_it_counts_the_response_timeout_from_the_sent_request_not_from_the_schedule(http_farm):
    """The loop is blocked right after the connect, past the whole timeout; the server answers 0.3 s after the
    request. The request goes out when the loop comes back, and the answer is in time from *then*."""
    (port,) = http_farm(1, delay=0.3)
    checker = build_checker(CheckSpec(service="http", checktimeout=1.0, negotiatetimeout=1.0, redirects=0))

    async def scenario():
        task = asyncio.ensure_future(checker.check(Target("127.0.0.1", port, port)))
        await asyncio.sleep(0)  # the check has called connect()
        time.sleep(1.5)  # the loop is starved longer than the timeout
        return await task

    result = asyncio.run(scenario())
    assert result.ok, result.reason


def test_it_still_times_out_a_server_that_never_answers_once_the_request_is_out(http_farm):
    (port,) = http_farm(1, delay=30)
    checker = build_checker(CheckSpec(service="http", checktimeout=0.5, negotiatetimeout=0.5, redirects=0))
    result = asyncio.run(checker.check(Target("127.0.0.1", port, port)))
    assert not result.ok and result.reason == "timeout 0.5s" and not result.stale


def test_it_marks_a_timeout_that_ran_while_its_loop_was_starved_as_stale(http_farm):
    """A server that does not answer within the timeout, but the loop was blocked meanwhile: the verdict says
    nothing about the server, so the result is stale (the engine re-verifies it instead of counting it)."""
    (port,) = http_farm(1, delay=30)
    checker = build_checker(CheckSpec(service="http", checktimeout=0.5, negotiatetimeout=0.5, redirects=0))

    async def scenario():
        task = asyncio.ensure_future(checker.check(Target("127.0.0.1", port, port)))
        await asyncio.sleep(0.1)  # connected and sent
        time.sleep(1.0)  # the loop misses its ticks
        return await task

    result = asyncio.run(scenario())
    assert not result.ok and result.stale


def test_it_reports_no_healthy_server_down_and_says_it_is_behind_while_its_loop_is_blocked(http_farm):
    ports = http_farm(60)
    watch = Watch()
    engine = HealthEngine(watch.on_change)
    engine.update(services(ports, interval=0.2, timeout=0.5))
    engine.start()
    try:
        watch.all_up(len(ports))
        behind = []
        for _ in range(4):
            engine._loop.call_soon_threadsafe(time.sleep, 1.5)  # a blocking call in the engine's loop
            time.sleep(2.0)
            behind.append(engine.load().behind)
        assert watch.downs == []
        assert any(behind), "a loop blocked for 1.5 s while checks were due must report being behind"
        assert all(s.up for s in engine.results().values())
    finally:
        engine.stop()


def test_it_stretches_its_schedule_under_a_cpu_hog_and_recovers(http_farm):
    """A thread holding the GIL in long C calls leaves the engine a few percent of the CPU: fewer checks run,
    the engine reports being behind, nobody is marked down; once the hog stops, it catches up."""
    ports = http_farm(100)
    watch = Watch()
    engine = HealthEngine(watch.on_change)
    engine.update(services(ports, interval=0.05, timeout=2.0))  # 2,000 checks/s asked
    engine.start()
    stop = threading.Event()

    def hog():
        while not stop.is_set():
            sum(range(3_000_000))  # one C call: the GIL stays with this thread until it returns

    try:
        watch.all_up(len(ports))
        time.sleep(1.0)
        engine.load()
        hogs = [threading.Thread(target=hog, daemon=True) for _ in range(2)]
        for t in hogs:
            t.start()
        loaded = []
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and not any(ld.behind for ld in loaded[-1:]):
            time.sleep(1.0)
            loaded.append(engine.load())
        time.sleep(2.0)
        loaded.append(engine.load())
        stop.set()
        for t in hogs:
            t.join(10)
        assert any(ld.behind for ld in loaded), loaded
        assert loaded[-1].achieved < loaded[-1].configured
        recovered = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            time.sleep(1.0)
            now = engine.load()
            if not now.behind and now.achieved > loaded[-1].achieved:
                recovered = now
                break
        assert recovered is not None, "the engine did not catch up once the hog stopped"
        assert watch.downs == []
    finally:
        stop.set()
        engine.stop()


def test_it_re_verifies_a_timeout_that_ran_while_its_loop_was_blocked_instead_of_counting_it(health_servers):
    """The first request hangs and the engine's loop is blocked past its deadline: that timeout says nothing
    about the server (the engine could not have seen an answer), so a fresh attempt decides - and it passes."""
    first = threading.Event()

    async def handler(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        if not first.is_set():
            first.set()
            await asyncio.sleep(30)  # the first request is never answered
            return
        writer.write(b"HTTP/1.0 200 OK\r\n\r\nok")
        await writer.drain()

    port = health_servers.tcp(handler)
    watch = Watch()
    engine = HealthEngine(watch.on_change, jitter=False)
    engine.start()
    try:
        engine.update(services([port], interval=5.0, timeout=0.5))
        assert first.wait(10)
        engine._loop.call_soon_threadsafe(time.sleep, 1.2)  # past the first check's deadline
        watch.all_up(1, timeout=15)
        assert watch.downs == []
        assert engine.load().stale_timeouts >= 1
    finally:
        engine.stop()
