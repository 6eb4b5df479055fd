"""The agent's keepalived: one `keepalived --vrrp` per paired director, supervised like a service manager would.

Everything of it lives under its own directory in the agent's state directory (vrrp.Paths): configuration,
pid files, notify FIFO, log, the agent's liveness file. A system keepalived (/etc/keepalived, its systemd
unit, /run/keepalived.pid) is never read, signalled or replaced.

`Keepalived.configure(text)` makes the running process match `text`: start it, or SIGHUP it when the file
changed (keepalived re-reads it and keeps its VRRP state), or nothing. A watch thread then

* reads the notify FIFO and hands each transition of our instance to `on_notice(notice, reason)`, the
  reason taken from keepalived's own log (vrrp.reason);
* notices when keepalived died, calls `on_exit(description)` at once (the agent drops the VIPs a killed
  keepalived left behind, so the two directors never both answer for them) and starts it again after a
  bounded backoff (0.5 s doubling to 30 s; back to 0.5 s once a run lasted a minute);
* touches the agent's liveness file every second (keepalived's track script reads its age).

keepalived outlives an agent crash on purpose: the data plane keeps its MASTER while the agent restarts, and
the new agent adopts the running process through its pid file (its command line must name our
configuration file). `stop()` is the clean way out: SIGTERM makes keepalived send a priority-0 advert and
remove its addresses, so the peer takes over at once.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import logging
import os
import select
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable

from . import vrrp
from .statefile import write_text

log = logging.getLogger(__name__)

BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
STABLE_RUN = 60.0  # a run this long resets the backoff
LOG_ROTATE = 1 << 20  # bytes; the log is rotated to .1 on a start beyond this
ALIVE_EVERY = 1.0


def binary() -> str | None:
    """keepalived's path: on PATH, or in the sbin directories a non-root PATH may lack."""
    return shutil.which("keepalived") or shutil.which("keepalived", path="/usr/sbin:/sbin:/usr/local/sbin")


class Keepalived:
    """One supervised keepalived; thread-safe. See the module docstring."""

    def __init__(
        self,
        directory: str,
        on_notice: Callable[[vrrp.Notice, str], None],
        on_exit: Callable[[str], None],
        netns: str | None = None,
        track_agent: bool = True,
    ):
        self.paths = vrrp.Paths(directory)
        self.on_notice = on_notice
        self.on_exit = on_exit
        self.netns = netns
        self.track_agent = track_agent
        self.restarts = 0
        self.last_exit = ""
        self._lock = threading.RLock()
        self._text: str | None = None
        self._proc: subprocess.Popen | None = None
        self._pid: int | None = None
        self._started_at = 0.0
        self._backoff = BACKOFF_FIRST
        self._restart_at: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._fifo: int | None = None
        self._buf = b""
        self._log_pos = 0
        self._log_lines: collections.deque[str] = collections.deque(maxlen=200)
        self._log_partial = b""

    # -- control -------------------------------------------------------------------------------------------
    def configure(self, text: str) -> str:
        """Make keepalived run `text`; returns "started", "adopted", "reloaded", "adopted+reloaded" or
        "unchanged". Raises OSError / RuntimeError when keepalived cannot be started (not installed)."""
        with self._lock:
            os.makedirs(self.paths.directory, mode=0o700, exist_ok=True)
            self._prepare_files()
            self._ensure_thread()
            on_disk = _read(self.paths.conf)
            self._text = text
            changed = on_disk != text
            if changed:
                write_text(self.paths.conf, text)
            if self._pid is None:
                adopted = self._adopt()
                if adopted is None:
                    self._start()
                    return "started"
                if changed:
                    os.kill(adopted, signal.SIGHUP)
                    return "adopted+reloaded"
                return "adopted"
            if self._restart_at is not None:  # dead, waiting for its backoff: the new text is used then
                return "unchanged"
            if changed:
                os.kill(self._pid, signal.SIGHUP)
                return "reloaded"
            return "unchanged"

    def stop(self, timeout: float = 10.0) -> bool:
        """SIGTERM (keepalived resigns with a priority-0 advert and removes its addresses), wait, then SIGKILL
        whatever is left of its process group; stops the watch thread. True when it was running."""
        with self._lock:
            pid = self._pid
            if pid is None:
                pid = self._adopt()
            self._restart_at = None
            self._pid = None
            proc, self._proc = self._proc, None
            self._stop.set()  # under the lock: the watch thread must not take this exit for a crash
        if pid is not None:  # first, before anything else: the peer waits for this priority-0 advert
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if pid is None:
            self._drain_fifo()
            self._close_fifo()
            return False
        deadline = time.monotonic() + timeout
        while _alive(pid, proc) and time.monotonic() < deadline:
            time.sleep(0.02)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=2)
        for path in (self.paths.pid, self.paths.vrrp_pid):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        self._drain_fifo()
        self._close_fifo()
        return True

    def detach(self) -> None:
        """Stop watching but leave keepalived running (what an agent crash does; tests use it)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._close_fifo()
        with self._lock:
            self._pid, self._proc = None, None

    @property
    def pid(self) -> int | None:
        return self._pid

    def log_tail(self, n: int = 20) -> list[str]:
        self._read_log()
        return list(self._log_lines)[-n:]

    # -- internals -----------------------------------------------------------------------------------------
    def _prepare_files(self) -> None:
        if not os.path.exists(self.paths.fifo):
            os.mkfifo(self.paths.fifo, 0o600)
        if self._fifo is None:
            # O_RDWR: opening never blocks, and keepalived's writes never meet a FIFO without a reader
            self._fifo = os.open(self.paths.fifo, os.O_RDWR | os.O_NONBLOCK)
        if self.track_agent:
            write_text(self.paths.alive_check, vrrp.alive_script(self.paths), mode=0o755)
            self._touch_alive()

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._watch, name="umw-keepalived", daemon=True)
            self._thread.start()

    def _adopt(self) -> int | None:
        """A keepalived left running by an earlier agent, recognised by its pid file and command line."""
        try:
            pid = int(_read(self.paths.pid).strip())
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except (ValueError, OSError):
            return None
        if not argv or not argv[0].endswith(b"keepalived") or self.paths.conf.encode() not in argv:
            return None
        self._pid, self._proc, self._started_at = pid, None, time.monotonic()
        # what keepalived logged while no agent read it: the FIFO kept those transitions, this their reasons
        self._log_pos = max(0, _size(self.paths.log) - (1 << 16))
        log.info("adopted keepalived %s", pid)
        return pid

    def _start(self) -> None:
        exe = binary()
        if exe is None:
            raise RuntimeError(
                "keepalived is not installed (a paired director needs it: apt-get install keepalived)"
            )
        argv = [exe, "--vrrp", "--dont-fork", "--log-console", "--log-detail"]
        argv += ["-f", self.paths.conf, "-p", self.paths.pid, "-r", self.paths.vrrp_pid]
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        if _size(self.paths.log) > LOG_ROTATE:
            os.replace(self.paths.log, self.paths.log + ".1")
        self._log_pos = _size(self.paths.log)
        with open(self.paths.log, "ab") as out:
            self._proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._pid = self._proc.pid
        self._started_at = time.monotonic()
        self._restart_at = None
        log.info("started keepalived %s", self._pid)

    def _watch(self) -> None:
        next_alive = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if self.track_agent and now >= next_alive:
                self._touch_alive()
                next_alive = now + ALIVE_EVERY
            self._wait_fifo(0.2)
            try:
                self._check_process()
            except Exception:
                log.exception("keepalived supervision failed")

    def _check_process(self) -> None:
        with self._lock:
            if self._stop.is_set():
                return
            if self._pid is not None and not _alive(self._pid, self._proc):
                code = self._proc.returncode if self._proc is not None else None
                ran = time.monotonic() - self._started_at
                self._backoff = BACKOFF_FIRST if ran >= STABLE_RUN else self._backoff
                delay = self._backoff
                self._backoff = min(self._backoff * 2, BACKOFF_MAX)
                self._pid, self._proc = None, None
                self._restart_at = time.monotonic() + delay
                how = (
                    "exited"
                    if code is None
                    else (f"killed by signal {-code}" if code < 0 else f"exited {code}")
                )
                tail = [line for line in self.log_tail(5) if line.strip()]
                self.last_exit = f"keepalived {how} after {ran:.1f} s; restarting in {delay:g} s" + (
                    f" (last log: {tail[-1].strip()})" if tail else ""
                )
                text = self.last_exit
            elif self._restart_at is not None and time.monotonic() >= self._restart_at and self._text:
                self.restarts += 1
                try:
                    self._start()
                except (OSError, RuntimeError) as exc:
                    self._restart_at = time.monotonic() + self._backoff
                    self.last_exit = f"keepalived could not be restarted: {exc}"
                    log.error("%s", self.last_exit)
                return
            else:
                return
        log.warning("%s", text)
        self.on_exit(text)

    def _wait_fifo(self, timeout: float) -> None:
        fd = self._fifo
        if fd is None:
            self._stop.wait(timeout)
            return
        try:
            ready, _, _ = select.select([fd], [], [], timeout)
        except (OSError, ValueError):
            self._stop.wait(timeout)
            return
        if ready:
            self._drain_fifo()

    def _drain_fifo(self) -> None:
        fd = self._fifo
        if fd is None:
            return
        while True:
            try:
                chunk = os.read(fd, 4096)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno != errno.EAGAIN:
                    log.debug("notify FIFO read failed: %s", exc)
                break
            if not chunk:
                break
            self._buf += chunk
        while b"\n" in self._buf:
            line, self._buf = self._buf.split(b"\n", 1)
            notice = vrrp.parse_notify(line.decode(errors="replace"))
            if notice is not None:
                self._deliver(notice)

    def _deliver(self, notice: vrrp.Notice) -> None:
        why = ""
        for _ in range(10):  # keepalived logs "Entering X STATE" just before it writes the FIFO line
            self._read_log()
            why = vrrp.reason(list(self._log_lines), notice.state)
            if why or notice.state == vrrp.STOP:
                break
            time.sleep(0.02)
        try:
            self.on_notice(notice, why)
        except Exception:
            log.exception("keepalived notice handler failed")

    def _read_log(self) -> None:
        try:
            with open(self.paths.log, "rb") as f:
                f.seek(self._log_pos)
                data = f.read(1 << 16)
                self._log_pos = f.tell()
        except OSError:
            return
        if not data:
            return
        data = self._log_partial + data
        *lines, self._log_partial = data.split(b"\n")
        self._log_lines.extend(line.decode(errors="replace") for line in lines)

    def _touch_alive(self) -> None:
        try:
            with open(self.paths.alive, "a"):
                pass
            now = time.time()
            os.utime(self.paths.alive, (now, now))  # explicit times: UML's hostfs ignores "now" (utime NULL)
        except OSError as exc:
            log.debug("liveness file: %s", exc)

    def _close_fifo(self) -> None:
        if self._fifo is not None:
            with contextlib.suppress(OSError):
                os.close(self._fifo)
            self._fifo = None


def _alive(pid: int, proc: subprocess.Popen | None) -> bool:
    if proc is not None:
        return proc.poll() is None
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
