"""The checker process (health/checker.py + health/process.py): real child processes checking real loopback
servers, killed and restarted, fed bad lines both ways."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from director.desired import CheckSpec, RealSpec, ServiceSpec
from director.health.checker import _Checker
from director.health.process import CheckerProcess
from director.health.registry import needs_tls


class Listener:
    """A loopback TCP port that accepts and closes (a connect check passes) until closed."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        for _ in range(100_000):
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.close()

    def close(self):
        self.sock.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def service(ports, service="none", checktype="connect", **check) -> ServiceSpec:
    spec = CheckSpec(checktype=checktype, service=service, checkinterval=0.1, checktimeout=1, **check)
    return ServiceSpec(
        "tcp", "192.0.2.1", 80, check=spec, reals=tuple(RealSpec("127.0.0.1", p) for p in ports)
    )


class Flips:
    def __init__(self):
        self.q: queue.Queue = queue.Queue()
        self.events: list = []

    def on_change(self, skey, rkey, up, result):
        self.q.put((rkey[1], up, result.reason))

    def on_event(self, level, message):
        self.events.append((level, message))

    def next(self, timeout=10.0):
        return self.q.get(timeout=timeout)


@pytest.fixture
def checker():
    flips = Flips()
    proc = CheckerProcess(flips.on_change, on_event=flips.on_event, backoff=(0.2, 0.4))
    proc.flips = flips
    proc.start()
    yield proc
    pid = proc.pid
    proc.stop()
    assert proc.pid is None
    if pid is not None:
        with pytest.raises(ProcessLookupError):
            for _ in range(100):  # reaped by stop(); the pid is gone
                os.kill(pid, 0)
                time.sleep(0.05)


def wait_for(predicate, seconds=10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def loaded_ssl(pid: int) -> bool:
    return "_ssl" in open(f"/proc/{pid}/maps").read()


def test_it_checks_in_a_child_process_and_mirrors_each_result(checker):
    up, down = Listener(), free_port()
    svc = service([up.port, down])
    assert checker.update([svc]) is True
    assert checker.pid is not None and checker.pid != os.getpid()
    seen = {checker.flips.next()[:2], checker.flips.next()[:2]}
    assert seen == {(up.port, True), (down, False)}
    assert wait_for(lambda: (checker.result(svc.key, ("127.0.0.1", up.port)) or None) is not None)
    first = checker.result(svc.key, ("127.0.0.1", up.port)).checks
    assert wait_for(lambda: checker.result(svc.key, ("127.0.0.1", up.port)).checks >= first + 3)
    status = checker.result(svc.key, ("127.0.0.1", down))
    assert status.up is False and status.reason == "connection refused" and status.failures == status.checks
    load = checker.load()
    assert load.configured == 20.0 and not load.behind
    up.close()


def test_it_holds_the_childs_malloc_to_one_arena_unless_the_operator_says_otherwise(checker, monkeypatch):
    def environ(pid):
        return dict(v.split("=", 1) for v in open(f"/proc/{pid}/environ").read().split("\0") if "=" in v)

    svc = service([free_port()])
    checker.update([svc])
    assert wait_for(lambda: checker.pid is not None)
    env = environ(checker.pid)
    assert env["MALLOC_ARENA_MAX"] == "1" and env["MALLOC_MMAP_THRESHOLD_"] == "65536"
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    old = checker.pid
    os.kill(old, signal.SIGKILL)  # restarted by the supervisor, with the environment of now
    assert wait_for(lambda: checker.pid not in (None, old))
    assert environ(checker.pid)["MALLOC_ARENA_MAX"] == "4"


def test_it_starts_no_process_until_there_is_something_to_check():
    proc = CheckerProcess()
    proc.start()
    try:
        assert proc.pid is None and proc.results() == {}
    finally:
        proc.stop()


def test_it_restarts_a_killed_checker_and_carries_every_verdict_over(checker):
    up, down = Listener(), free_port()
    svc = service([up.port, down])
    checker.update([svc])
    assert {checker.flips.next()[:2], checker.flips.next()[:2]} == {(up.port, True), (down, False)}
    old = checker.pid
    assert wait_for(lambda: len(checker.results()) == 2)
    os.kill(old, signal.SIGKILL)
    assert wait_for(lambda: checker.pid not in (None, old))
    assert checker.restarts == 1
    assert any(level == "error" and "exited (code -9)" in msg for level, msg in checker.flips.events)
    # the new child starts from the old verdicts: nothing flips while both servers stay as they were
    first = checker.result(svc.key, ("127.0.0.1", up.port)).checks
    assert wait_for(lambda: checker.result(svc.key, ("127.0.0.1", up.port)).checks != first)
    with pytest.raises(queue.Empty):
        checker.flips.next(timeout=0.5)
    up.close()  # and a real change after the restart is still seen
    assert checker.flips.next() == (up.port, False, "connection refused")


def test_it_loads_tls_only_once_a_check_may_speak_it(checker):
    up = Listener()
    checker.update([service([up.port])])
    assert checker.flips.next()[:2] == (up.port, True)
    plain_pid = checker.pid
    assert not loaded_ssl(plain_pid)
    checker.update([service([up.port], service="https", checktype="negotiate")])
    assert checker.pid != plain_pid and loaded_ssl(checker.pid)
    # the real was up; the first https check against a plain TCP port fails, as a check, not as a crash
    assert checker.flips.next()[:2] == (up.port, False)
    assert checker.restarts == 0  # a restart on purpose is not a crash
    up.close()


def test_it_says_which_checks_need_tls():
    assert needs_tls(CheckSpec(service="https"))
    assert needs_tls(CheckSpec(service="http"))  # follows redirects (7 by default): one may be https
    assert not needs_tls(CheckSpec(service="http", redirects=0))
    assert needs_tls(CheckSpec(service="http_proxy", redirects=0, request="https://example.test/"))
    assert needs_tls(CheckSpec(checktype="3", service="https"))
    assert not needs_tls(CheckSpec(checktype="connect", service="https"))
    assert not needs_tls(CheckSpec(service="mysql"))


def test_it_answers_a_bad_line_and_keeps_checking():
    up = Listener()
    proc = subprocess.Popen(
        CheckerProcess()._command(tls=False), stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True
    )
    try:
        svc = service([up.port])
        proc.stdin.write(
            b"not json\n[1, 2]\n" + b'{"frobnicate": 1}\n' + b'{"update": 1, "services": [{"x": 1}]}\n'
        )
        doc = {
            "update": 2,
            "services": [
                {
                    "protocol": "tcp",
                    "address": "192.0.2.1",
                    "port": 80,
                    "check": {"checktype": "connect", "checkinterval": 0.1},
                    "reals": [["127.0.0.1", svc.reals[0].port, 0]],
                }
            ],
        }  # fmt: skip  (checker.to_wire: reals as [address, port, check port])
        proc.stdin.write(json.dumps(doc).encode() + b"\n")
        proc.stdin.flush()
        lines = []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not any("flip" in m for m in lines):
            lines.append(json.loads(proc.stdout.readline()))
        errors = [m["error"] for m in lines if "error" in m]
        assert len(errors) == 4 and "JSONDecodeError" in errors[0] and "unknown command" in errors[2]
        assert {"ack": 2} in lines
        assert [m["flip"][2] for m in lines if "flip" in m] == [True]
        proc.stdin.close()  # the agent is gone: so is the checker
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        up.close()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=300),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
            lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
            max_leaves=20,
        ).map(lambda v: json.dumps(v).encode()),
        st.fixed_dictionaries(
            {"update": st.integers() | st.text(max_size=5), "services": st.lists(st.dictionaries(
                st.sampled_from(["protocol", "address", "port", "reals", "check", "fwmark"]),
                st.none() | st.integers() | st.text(max_size=8) | st.lists(st.integers(), max_size=3)), max_size=3),
             "known": st.lists(st.lists(st.integers() | st.text(max_size=4), max_size=4), max_size=3)}
        ).map(lambda v: json.dumps(v).encode()),
    )
)  # fmt: skip
def test_it_takes_any_line_without_raising(line):
    """Whatever arrives on the checker's stdin is answered, never raised (the engine is not started: nothing
    generated here is ever probed)."""
    checker = _Checker(None)
    assert checker.command(line + b"\n") in (True, False)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | st.dictionaries(st.sampled_from(["results", "seq", "load", "flip", "ack",
       "ready", "error"]), st.none() | st.integers() | st.text(max_size=5) | st.lists(st.integers() |
       st.lists(st.integers(), max_size=9), max_size=3)).map(lambda v: json.dumps(v).encode()))  # fmt: skip
def test_it_survives_any_line_from_the_child(line):
    """The supervisor reads what the child says defensively: a garbled line is logged, the mirror stays."""
    proc = CheckerProcess()
    proc.update([service([1])])
    before = proc.results()
    proc._line(line)
    assert proc.results() == before


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["10.0.0.5", "192.168.1.4", "2001:db8::7", "::1"]),
            st.integers(0, 65535),
            st.integers(0, 65535),
        ),
        max_size=6,
    ),
    st.sampled_from(["tcp", "udp", "fwmark"]),
)
def test_it_sends_the_checker_every_field_a_check_uses(reals, protocol):
    from director.health.checker import from_wire, to_wire
    from director.health.engine import numbering

    svc = ServiceSpec(
        protocol,
        "" if protocol == "fwmark" else "192.0.2.1",
        0 if protocol == "fwmark" else 80,
        fwmark=7 if protocol == "fwmark" else 0,
        check=CheckSpec(checktype="connect", checkport=None, quorum=2),
        fallback=RealSpec("10.9.9.9", 80),
        reals=tuple(RealSpec(a, p, weight=3, check_port=c) for a, p, c in reals),
    )
    got = from_wire(json.loads(json.dumps(to_wire(svc))))
    assert (got.key, got.check, got.protocol, got.address, got.port, got.fwmark) == (
        svc.key, svc.check, svc.protocol, svc.address, svc.port, svc.fwmark
    )  # fmt: skip
    assert [(r.key, r.port, r.check_port) for r in got.reals] == [
        (r.key, r.port, r.check_port) for r in svc.reals
    ]
    assert numbering([got]) == numbering([svc])  # the mirror's numbering is the child's
