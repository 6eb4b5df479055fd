"""The agent's side of the checker process (checker.py): the health engine's interface, run in a child.

`CheckerProcess` answers what the agent asks of a `HealthEngine` (`start`, `stop`, `update`, `results`,
`result`, `load`, `on_change`) while the checks run in a process of their own (why: checker.py). It keeps a
mirror of every real's last status from the child's half-second batches (only the reals checked since the
previous batch), so the reporter reads results without asking across the pipe, and it supervises the child:
if it dies, it is started again (1 s, doubling to 30 s while it keeps dying) with the last known verdict of
every real, so a crash does not flap the table, and the agent is told (`on_event`).

The child is started with `python -S` and the package's directory on its path (nothing from site-packages is
needed: the checks are standard library only) and, unless a check may speak TLS (`registry.needs_tls`), with
the ssl module blocked so asyncio does not load it. An update that brings the first such check restarts the
child with TLS (verdicts carried over).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace

import director
from director.desired import ServiceSpec

from .base import CheckResult
from .checker import to_wire
from .engine import EngineLoad, OnChange, RealStatus, numbering
from .registry import needs_tls

log = logging.getLogger(__name__)

OnEvent = Callable[[str, str], None]  # (level, message)

#: Restart delays of a child that keeps dying (seconds): first, then doubled up to the last.
BACKOFF = (1.0, 30.0)
#: The longest line the child may send (bytes); longer is a broken child, killed and restarted.
MAX_LINE = 64 << 20
_EMPTY_LOAD = EngineLoad(0.0, 0.0, 0.0, 0.0, 0.0, False, 0, 0)


_NUMBER = (int, float)
_ROW = (_NUMBER, (bool, type(None)), _NUMBER, str, _NUMBER, int, int, _NUMBER, (bool, type(None)))


def _row(row, size: int) -> tuple:
    """One result row [i, ok, latency, reason, checked_at, checks, failures, since, up], checked."""
    if not isinstance(row, list) or len(row) != len(_ROW):
        raise ValueError("bad result row")
    for value, kind in zip(row, _ROW, strict=True):
        if not isinstance(value, kind) or (kind is _NUMBER and isinstance(value, bool)):
            raise ValueError("bad result row")
    if not isinstance(row[0], int) or not 0 <= row[0] < size:
        raise ValueError("result row out of range")
    return tuple(row)


# glibc's malloc for the child (Python's own allocator serves only objects up to 512 bytes; bigger ones, such
# as the update line and the job table, come from malloc): one arena, not one per thread (the engine, writer
# and main threads each grew their own and kept what they freed), and fixed thresholds, so a big block freed
# after an update goes back to the system instead of raising the threshold and staying in the heap. Measured
# at 5,000 TCP reals: 26.9 -> 25.7 MB. An operator's own settings win.
_MALLOC = {"MALLOC_ARENA_MAX": "1", "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "65536"}


def _child_env() -> dict[str, str]:
    return {**_MALLOC, **os.environ}


class CheckerProcess:
    """The health engine in a child process, supervised. See the module docstring."""

    def __init__(
        self,
        on_change: OnChange | None = None,
        *,
        on_event: OnEvent | None = None,
        cafile: str | None = None,
        backoff: tuple[float, float] = BACKOFF,
    ):
        self.on_change = on_change
        self.on_event = on_event
        self.cafile = cafile
        self.backoff = backoff
        self.restarts = 0
        self._lock = threading.RLock()  # the child, its pipe, the update numbering
        self._services: list[ServiceSpec] | None = None
        self._want_tls = False  # whether a check of _services may speak TLS (registry.needs_tls)
        # (update number, position -> (service key, real key) in it, the mirror: (service key, real key) ->
        # the engine's `last` tuple), swapped as one so the supervisor never pairs one update's numbering
        # with another's mirror
        self._view: tuple[int, list[tuple], dict[tuple, tuple]] = (0, [], {})
        self._load: EngineLoad | None = None
        self._lag = 0.0
        self._acks: dict[int, threading.Event] = {}
        self._proc: subprocess.Popen | None = None
        self._tls = False
        self._started = False
        self._stop = threading.Event()
        self._supervisor: threading.Thread | None = None

    # ---- life cycle ---------------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    @property
    def running(self) -> bool:
        return self.pid is not None

    def start(self) -> None:
        """Start checking: the child starts now if there is something to check, else at the first update."""
        with self._lock:
            if self._started:
                return
            self._started = True
            self._stop.clear()
            if self._services is not None:
                self._spawn()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the child (asked on its stdin, killed after `timeout`) and the supervisor."""
        with self._lock:
            self._started = False
            self._stop.set()
            proc, supervisor = self._proc, self._supervisor
            self._proc = self._supervisor = None
        if proc is not None:
            self._end(proc, timeout)
        if supervisor is not None and supervisor is not threading.current_thread():
            supervisor.join(timeout)

    def update(self, services: Iterable[ServiceSpec], timeout: float = 30.0) -> bool:
        """Replace what is checked; once started, waits (up to `timeout`) until the child applied it and says
        whether it did (if not, it still will: the update is in its pipe, or goes to its successor)."""
        services = list(services)
        keys = numbering(services)
        want_tls = any(needs_tls(s.check) for s in services)
        with self._lock:
            self._services, self._want_tls = services, want_tls
            seq, _, mirror = self._view
            seq += 1
            self._view = (seq, keys, {k: mirror[k] for k in keys if k in mirror})
            if not self._started:
                return True
            done = self._acks[seq] = threading.Event()
            if self._proc is None or self._proc.poll() is not None or (want_tls and not self._tls):
                if self._proc is not None and self._proc.poll() is None:
                    log.info("a check may speak TLS now: restarting the checker process with TLS")
                self._spawn()  # sends the update itself
            else:
                self._send_update(self._proc)
        try:
            applied = done.wait(timeout)
        finally:
            with self._lock:
                self._acks.pop(seq, None)
        if not applied:
            log.warning("the checker process has not applied update %s after %g s", seq, timeout)
        return applied

    # ---- read side ----------------------------------------------------------------------------------------

    def results(self) -> dict[tuple, RealStatus]:
        """The latest status of every checked real (the mirror of the child's batches)."""
        mirror = dict(self._view[2])
        return {key: self._status(key, last) for key, last in mirror.items()}

    def result(self, service: tuple, real: tuple) -> RealStatus | None:
        last = self._view[2].get((service, real))
        return None if last is None else self._status((service, real), last)

    @staticmethod
    def _status(key: tuple, last: tuple) -> RealStatus:
        ok, latency, reason, checked_at, checks, failures, since, up = last
        return RealStatus(key[0], key[1], up, ok, latency, reason, checked_at, since, checks, failures)

    def load(self) -> EngineLoad:
        """The child's last load report, with the worst lag since the previous call; behind while the child
        that should be checking is not running."""
        load, lag = self._load or _EMPTY_LOAD, self._lag
        self._lag = 0.0
        load = replace(load, lag=round(max(lag, load.lag), 3))
        if self._started and self._services is not None and not self.running:
            load = replace(load, achieved=0.0, in_flight=0, behind=True)
        return load

    # ---- the child ----------------------------------------------------------------------------------------

    def _command(self, tls: bool) -> list[str]:
        root = os.path.dirname(os.path.dirname(os.path.abspath(director.__file__)))
        boot = (
            "import sys; sys.path.insert(0, sys.argv[1]); "
            + ("" if tls else "sys.modules['ssl'] = None; ")
            + "from director.health.checker import main; sys.exit(main(sys.argv[2:]))"
        )
        cmd = [sys.executable, "-S", "-c", boot, root]
        if self.cafile:
            cmd += ["--cafile", self.cafile]
        return cmd

    def _spawn(self) -> None:
        """(Re)start the child (lock held) and send it the current services with every known verdict."""
        old = self._proc
        if old is not None:
            self._proc = None
            self._end(old, 5.0)
        tls = self._want_tls
        proc = subprocess.Popen(
            self._command(tls),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
            env=_child_env(),
        )  # stderr: the agent's, so the child's log lines land in the agent's log
        self._proc, self._tls = proc, tls
        if self._supervisor is None or not self._supervisor.is_alive():
            self._supervisor = threading.Thread(target=self._supervise, name="umw-checker", daemon=True)
            self._supervisor.start()
        self._send_update(proc, known=True)

    def _send_update(self, proc: subprocess.Popen, known: bool = False) -> None:
        seq, _, mirror = self._view
        msg = {"update": seq, "services": [to_wire(s) for s in self._services or ()]}
        if known:
            msg["known"] = [[k[0], k[1], last[7]] for k, last in mirror.items() if last[7] is not None]
        try:
            proc.stdin.write(json.dumps(msg, separators=(",", ":")).encode() + b"\n")
            proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass  # died meanwhile: the supervisor restarts it with the current services

    @staticmethod
    def _end(proc: subprocess.Popen, timeout: float) -> None:
        try:
            proc.stdin.write(b'{"stop":true}\n')
            proc.stdin.close()
        except (BrokenPipeError, OSError, ValueError):
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def _supervise(self) -> None:
        """Read the current child until it ends; restart it (with backoff) unless we are stopping."""
        delay = self.backoff[0]
        while not self._stop.is_set():
            proc = self._proc
            if proc is None:
                if self._stop.wait(0.05):
                    return
                continue
            began = time.monotonic()
            self._read(proc)
            proc.stdout.close()
            try:
                code = proc.wait(10)
            except subprocess.TimeoutExpired:  # closed its output but lives on: not a checker any more
                proc.kill()
                code = proc.wait(10)
            with self._lock:
                if self._stop.is_set() or self._proc is not proc:
                    continue  # stopped, or replaced on purpose (TLS): not a crash
                self._proc = None
            if time.monotonic() - began > 60:
                delay = self.backoff[0]  # it ran a good while: not a crash loop
            self.restarts += 1
            self._event("error", f"health checker process exited (code {code}); restarting in {delay:g} s")
            if self._stop.wait(delay):
                return
            delay = min(self.backoff[1], delay * 2)
            with self._lock:
                if not self._stop.is_set() and self._proc is None and self._services is not None:
                    self._spawn()

    def _read(self, proc: subprocess.Popen) -> None:
        stream = proc.stdout
        while True:
            try:
                line = stream.readline(MAX_LINE)
            except (OSError, ValueError):
                return
            if not line:
                return
            if not line.endswith(b"\n"):
                log.error("checker process sent an over-long line: killing it")
                proc.kill()
                return
            self._line(line)

    def _line(self, line: bytes) -> None:
        """One message of the child. Checked whole before anything is taken from it; never raises (a
        garbled line is logged and dropped, the mirror stays as it was)."""
        try:
            msg = json.loads(line)
            if not isinstance(msg, dict):
                raise ValueError("not an object")
            self._handle(msg)
        except Exception:  # noqa: BLE001 - one bad line must not end the supervision
            log.exception("checker process message not understood: %r", line[:200])

    def _handle(self, msg: dict) -> None:
        if "results" in msg:
            load = EngineLoad(**msg["load"])
            lag = float(load.lag)
            seq, keys, mirror = self._view
            if msg["seq"] == seq:
                rows = [_row(row, len(keys)) for row in msg["results"]]
                for row in rows:
                    mirror[keys[row[0]]] = row[1:]
            self._load = load
            self._lag = max(self._lag, lag)
        elif "flip" in msg:
            service, real, up, ok, latency, reason = msg["flip"]
            if not (isinstance(up, bool) and isinstance(reason, str)):
                raise ValueError("bad flip")
            key = (tuple(service), tuple(real))
            mirror = self._view[2]
            last = mirror.get(key)
            if last is not None:
                mirror[key] = (*last[:7], up)
            if self.on_change is not None:
                try:
                    self.on_change(
                        key[0], key[1], bool(up), CheckResult(bool(ok), float(latency), str(reason))
                    )
                except Exception:  # noqa: BLE001 - the agent's callback; its bugs must not stop the mirror
                    log.exception("health change callback failed")
        elif "ack" in msg:
            done = self._acks.get(msg["ack"])
            if done is not None:
                done.set()
        elif "ready" in msg:
            log.info(
                "checker process %s ready (TLS %s)",
                msg["ready"],
                "loaded" if msg.get("tls") else "not loaded",
            )
        elif "error" in msg:
            self._event("error", f"health checker refused a command: {msg['error']}")

    def _event(self, level: str, message: str) -> None:
        log.log(logging.ERROR if level == "error" else logging.INFO, message)
        if self.on_event is not None:
            try:
                self.on_event(level, message)
            except Exception:  # noqa: BLE001
                log.exception("checker event callback failed")
