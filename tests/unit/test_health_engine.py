"""The engine in its own thread, checking real loopback servers: transitions, hysteresis, updates, quorum."""

from __future__ import annotations

import queue
import threading
import time

import pytest

from director.desired import CheckSpec, RealSpec, ServiceSpec
from director.health.engine import HealthEngine


class Backend:
    """An HTTP server whose answer the test flips: `status`, or a per-request `script` of statuses."""

    def __init__(self, servers):
        self.status = 200
        self.script: list[int] = []
        self.hits = 0

        async def handler(reader, writer):
            await reader.readuntil(b"\r\n\r\n")
            self.hits += 1
            status = self.script.pop(0) if self.script else self.status
            writer.write(b"HTTP/1.0 %d X\r\n\r\nbody" % status)
            await writer.drain()

        self.port = servers.tcp(handler)


def service(ports, port=80, interval=0.1, **check) -> ServiceSpec:
    spec = CheckSpec(service="http", checkinterval=interval, checktimeout=1, negotiatetimeout=1, **check)
    reals = tuple(RealSpec("127.0.0.1", p) for p in ports)
    return ServiceSpec("tcp", "192.0.2.1", port, check=spec, reals=reals)


class Events:
    """Collects on_change / on_quorum calls from the engine thread."""

    def __init__(self):
        self.changes: queue.Queue = queue.Queue()
        self.quorum: queue.Queue = queue.Queue()

    def on_change(self, service_key, real_key, up, result):
        self.changes.put((service_key, real_key, up, result, time.monotonic()))

    def on_quorum(self, service_key, met, healthy):
        self.quorum.put((service_key, met, healthy))

    def next(self, timeout=3.0):
        return self.changes.get(timeout=timeout)

    def none_within(self, seconds) -> bool:
        try:
            self.changes.get(timeout=seconds)
        except queue.Empty:
            return True
        return False


@pytest.fixture
def engine():
    events = Events()
    eng = HealthEngine(events.on_change, events.on_quorum)
    eng.events = events
    eng.start()
    yield eng
    eng.stop()
    assert not eng.running


def test_it_reports_up_down_and_up_again_as_a_server_fails_and_recovers(engine, health_servers):
    backend = Backend(health_servers)
    svc = service([backend.port])
    engine.update([svc])
    skey, rkey, up, result, _ = engine.events.next()
    assert (skey, rkey, up) == (("tcp", "192.0.2.1", 80), ("127.0.0.1", backend.port), True)
    assert result.reason == "HTTP 200"

    backend.status = 503
    failed_at = time.monotonic()
    _, _, up, result, seen_at = engine.events.next()
    assert up is False and result.reason == "HTTP 503"
    # the 100 ms goal (interval + 100 ms) is bench/health_bench.py's figure; here only "soon", with a margin
    # that holds on a loaded 2-CPU machine
    assert seen_at - failed_at < 3.0

    backend.status = 200
    assert engine.events.next()[2] is True


def test_it_exposes_the_latest_result_per_real(engine, health_servers):
    backend = Backend(health_servers)
    svc = service([backend.port])
    engine.update([svc])
    engine.events.next()
    status = engine.result(svc.key, ("127.0.0.1", backend.port))
    assert status.up is True and status.ok is True and status.reason == "HTTP 200"
    assert 0 < status.latency < 5 and abs(status.checked_at - time.time()) < 10 and status.checks >= 1
    assert list(engine.results()) == [(svc.key, ("127.0.0.1", backend.port))]
    assert status.as_dict()["reason"] == "HTTP 200"


def test_it_damps_a_flapping_server_with_failurecount_and_rise(engine, health_servers):
    backend = Backend(health_servers)
    backend.script = [200] + [503, 200] * 100
    engine.update([service([backend.port], failurecount=2, rise=2)])
    assert engine.events.next()[2] is True
    deadline = time.monotonic() + 20  # ten alternating checks, however slow the machine is
    while backend.hits < 11 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert backend.hits >= 11
    assert engine.events.changes.empty()  # never two failures in a row: no flip
    backend.script = []
    backend.status = 503
    assert engine.events.next()[2] is False


def test_it_retries_within_a_round_before_declaring_a_failure(engine, health_servers):
    backend = Backend(health_servers)
    backend.script = [200] + [503, 200] * 100
    engine.update([service([backend.port], retries=2, delay_before_retry=0.01)])
    assert engine.events.next()[2] is True
    assert engine.events.none_within(0.8)


def test_it_keeps_unchanged_reals_running_across_updates(engine, health_servers):
    a, b = Backend(health_servers), Backend(health_servers)
    svc = service([a.port])
    engine.update([svc])
    engine.events.next()
    job = engine._jobs[(svc.key, ("127.0.0.1", a.port))]
    checks_before = engine.result(svc.key, ("127.0.0.1", a.port)).checks

    other = service([b.port], port=81)
    weight_change = ServiceSpec(
        "tcp", "192.0.2.1", 80, check=svc.check, reals=(RealSpec("127.0.0.1", a.port, weight=5),)
    )
    engine.update([weight_change, other])
    assert engine._jobs[(svc.key, ("127.0.0.1", a.port))] is job  # same task, same state
    skey, rkey, up, _, _ = engine.events.next()
    assert (skey[2], rkey[1], up) == (81, b.port, True)  # only the new real reports
    assert engine.events.none_within(0.3)
    assert engine.result(svc.key, ("127.0.0.1", a.port)).checks > checks_before


def test_it_carries_state_over_when_the_check_changes(engine, health_servers):
    backend = Backend(health_servers)
    engine.update([service([backend.port])])
    engine.events.next()
    engine.update([service([backend.port], receive="body")])  # new check settings, still passing
    assert engine.events.none_within(0.4)
    engine.update([service([backend.port], receive="^nope")])
    _, _, up, result, _ = engine.events.next()
    assert up is False and result.reason == "receive regex not matched"


def test_it_forgets_removed_reals_and_services(engine, health_servers):
    backend = Backend(health_servers)
    svc = service([backend.port])
    engine.update([svc])
    engine.events.next()
    engine.update([])
    assert engine.results() == {} and engine.services() == {}
    hits = backend.hits
    time.sleep(0.3)
    assert backend.hits == hits


def test_it_counts_healthy_reals_and_reports_quorum_changes(engine, health_servers):
    backends = [Backend(health_servers) for _ in range(3)]
    svc = service([b.port for b in backends], quorum=3)
    engine.update([svc])
    for _ in range(3):
        engine.events.next()
    assert engine.events.quorum.get(timeout=2)[1:] == (True, 3)
    health = engine.services()[svc.key]
    assert (health.healthy, health.total, health.quorum, health.quorum_met) == (3, 3, 3, True)

    backends[0].status = 503
    assert engine.events.next()[2] is False
    assert engine.events.quorum.get(timeout=2)[1:] == (False, 2)
    assert engine.services()[svc.key].healthy == 2


def test_it_spreads_first_checks_over_the_interval():
    events = Events()
    eng = HealthEngine(events.on_change)
    reals = tuple(RealSpec("127.0.0.1", 10000 + i) for i in range(200))
    eng.update(
        [ServiceSpec("tcp", "192.0.2.1", 80, check=CheckSpec(checktype="on", checkinterval=1.0), reals=reals)]
    )
    start = time.monotonic()
    eng.start()  # an update before start is applied when the loop runs
    try:
        times = [events.next()[4] - start for _ in range(200)]
    finally:
        eng.stop()
    assert max(times) - min(times) > 0.6  # spread, not a burst (a loaded machine only spreads them more)
    assert max(times) < 5.0  # all within the first interval, with a margin for a loaded 2-CPU machine


def test_it_survives_a_callback_that_raises(health_servers):
    backend = Backend(health_servers)
    calls = []

    def bad(*args):
        calls.append(args)
        raise RuntimeError("agent bug")

    eng = HealthEngine(bad)
    eng.start()
    try:
        eng.update([service([backend.port])])
        deadline = time.monotonic() + 3
        while not calls and time.monotonic() < deadline:
            time.sleep(0.02)
        backend.status = 500
        while len(calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [c[2] for c in calls] == [True, False]
    finally:
        eng.stop()


def test_it_accepts_updates_from_many_threads(engine, health_servers):
    backend = Backend(health_servers)
    threads = [
        threading.Thread(target=engine.update, args=([service([backend.port], port=80 + i)],))
        for i in range(5)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert len(engine.services()) == 1


def test_it_runs_external_checks_from_the_engine_thread(engine, tmp_path):
    flag = tmp_path / "healthy"
    flag.write_text("")
    prog = tmp_path / "check.sh"
    prog.write_text(f"#!/bin/sh\ntest -e {flag}\n")
    prog.chmod(0o755)
    check = CheckSpec(checktype="external", external=str(prog), checkinterval=0.1, checktimeout=2)
    engine.update([ServiceSpec("tcp", "192.0.2.1", 80, check=check, reals=(RealSpec("127.0.0.1", 8080),))])
    assert engine.events.next()[2] is True
    flag.unlink()
    _, _, up, result, _ = engine.events.next()
    assert up is False and result.reason == "exit 1"


def test_it_can_be_stopped_and_started_again(health_servers):
    backend = Backend(health_servers)
    events = Events()
    eng = HealthEngine(events.on_change)
    eng.start()
    try:
        eng.update([service([backend.port])])
        assert events.next()[2] is True
        eng.stop()
        assert eng.results() == {}
        hits = backend.hits
        time.sleep(0.25)
        assert backend.hits == hits  # nothing runs while stopped
        eng.start()
        assert events.next()[2] is True  # same configuration, fresh state
    finally:
        eng.stop()


def test_it_counts_a_checker_that_raises_as_a_failed_check_and_keeps_checking():
    """A checker bug (or settings it cannot encode) must fail the check, not end its task: a dead task would
    leave a dead backend at full weight."""
    from director.health.base import Checker

    calls = []

    class Exploding(Checker):
        name = "exploding"

        async def check(self, target):  # bypasses Checker.check's own safety net on purpose
            calls.append(time.monotonic())
            raise UnicodeEncodeError("latin-1", "\u00e9", 0, 1, "ordinal not in range(256)")

    events = Events()
    eng = HealthEngine(events.on_change, checker_factory=lambda spec, protocol: Exploding(spec), jitter=False)
    eng.start()
    try:
        eng.update([service([1], interval=0.05)])
        _, _, up, result, _ = events.next()
        assert up is False and result.reason.startswith("check error: UnicodeEncodeError")
        seen = len(calls)
        time.sleep(0.3)
        assert len(calls) > seen  # the task is still alive and checking
        status = eng.result(("tcp", "192.0.2.1", 80), ("127.0.0.1", 1))
        assert status.up is False and status.failures == status.checks >= 2
    finally:
        eng.stop()
