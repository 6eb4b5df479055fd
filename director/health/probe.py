"""The hot path of the health checks: TCP connects and plain HTTP/1.0 exchanges on one epoll per event loop.

Why not asyncio transports or `loop.add_reader` per socket: at thousands of checks per second the cost of a
check is its system calls and the Python objects made for it, and on a UML or small VM guest a system call
costs tens of microseconds. One exchange here is socket (non-blocking from birth), connect, one epoll_ctl
(registered once, edge-triggered, for writable *and* readable: no MOD or DEL later), send, usually one recv
(EPOLLRDHUP says the server's FIN is in, so no second recv to see EOF), close (which also leaves the epoll).
The epoll's own descriptor is one reader of the asyncio loop, so a wake-up serves every socket that is ready.
Deadlines live in one FIFO per timeout value (checks that start later end later), scanned by a tick, not in
the loop's timer heap: no timer object per check and no cancelled timers to sweep. Events are served in
batches of BATCH, so the tick keeps its pace however many sockets are ready at once.

Timeouts count from what the check actually did, not from when it was scheduled: `checktimeout` from the
connect() call, `negotiatetimeout` from the send() of the request. Before a deadline is called, the socket
itself is asked (connected? reply bytes waiting?), so a reply that arrived while the loop was busy is seen,
never mistaken for silence. A timeout that
expires while the loop itself was late (a tick that came `LATE` or more behind its time during the
check's life) is reported *stale*: the engine re-verifies it with a fresh attempt instead of counting it.
"""

from __future__ import annotations

import asyncio
import errno
import os
import select
import socket
import struct
import time
from collections import deque
from collections.abc import Callable

from .base import MAX_READ, CheckFailed, fmt_seconds

#: A tick of the loop this late (seconds) means the loop was starved: timeouts across it are stale.
LATE = 0.25
#: Most socket events served in one turn of the loop.
BATCH = 256
#: How often pending deadlines are scanned when nothing else drives the prober (seconds).
TICK = 0.05

_EV_OUT = select.EPOLLOUT
_EV_IN = select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR
_EV_RDHUP = select.EPOLLRDHUP
_EV_BAD = select.EPOLLERR | select.EPOLLHUP
_REGISTER = select.EPOLLOUT | select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLET
_NONBLOCK_STREAM = socket.SOCK_STREAM | socket.SOCK_NONBLOCK
_CHUNK = 65536
# a connect check ends with a reset, as HAProxy ends its checks: no FIN exchange and no TIME_WAIT socket per
# check (at 2,500 checks/s, 150,000 of them), which in a small director is kernel CPU the checks do not need
_ABORT = struct.pack("ii", 1, 0)

#: done(exc, raw, latency, stale): exc None on success (raw = the reply, b"" for a connect check).
Done = Callable[[BaseException | None, bytes, float, bool], None]


class Op:
    """One connect (request None) or one request/response exchange in flight."""

    __slots__ = (
        "sock",
        "fd",
        "request",
        "done",
        "started",
        "deadline",
        "chunks",
        "size",
        "reading",
        "extended",
        "timeouts",
    )

    def __init__(self, sock, request, done, started, deadline, timeouts):
        self.sock = sock
        self.fd = sock.fileno()
        self.request = request
        self.done = done
        self.started = started
        self.deadline = deadline
        self.chunks: list[bytes] = []
        self.size = 0
        self.reading = False
        self.extended = False
        self.timeouts = timeouts  # (connect timeout, response timeout)


class Prober:
    """All fast-path exchanges of one event loop. Use `Prober.of(loop)`; loop thread only."""

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> Prober:
        """The loop's prober, made on first use; it lives (and its epoll closes) with the loop object."""
        prober = getattr(loop, "_umw_prober", None)
        if prober is None or prober.closed:
            prober = cls(loop)
            loop._umw_prober = prober
        return prober

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.ep = select.epoll()
        self.ops: dict[int, Op] = {}
        self.queues: dict[float, deque] = {}  # timeout -> FIFO of (deadline, op)
        self.closed = False
        self.driven = False  # True when an engine's tick calls expire(): no timer of our own
        # monotonic time the loop was last seen starved (set by ticks, ours or the engine's)
        self.late_at = -1.0
        # The clock, read once per batch of events (and by the engine's tick) instead of several times per
        # check: on a UML or paravirtualised guest reading the clock can be a real system call.
        self.now = time.monotonic()
        self.in_tick = False  # the engine sets it while it starts checks, with `now` fresh
        self.stale_timeouts = 0
        self.pressure = 0.0
        self._tick_at = 0.0
        self._timer: asyncio.TimerHandle | None = None
        loop.add_reader(self.ep.fileno(), self.poll)

    # ---- starting -------------------------------------------------------------------------------------------

    def start(
        self,
        family: int,
        address: tuple,
        request: bytes | None,
        connect_timeout: float,
        timeout: float,
        done: Done,
    ) -> Op | None:
        """Begin a connect (`request` None) or exchange; `done` is called once, on the loop thread."""
        now = self.now if self.in_tick else time.monotonic()
        try:
            sock = socket.socket(family, _NONBLOCK_STREAM)
        except OSError as exc:
            self.loop.call_soon(done, exc, b"", 0.0, False)
            return None
        try:
            err = sock.connect_ex(address)
        except OSError as exc:  # an address this family cannot take
            sock.close()
            self.loop.call_soon(done, exc, b"", 0.0, False)
            return None
        if err and err != errno.EINPROGRESS:
            sock.close()
            self.loop.call_soon(done, OSError(err, os.strerror(err)), b"", 0.0, False)
            return None
        op = Op(sock, request, done, now, now + connect_timeout, (connect_timeout, timeout))
        try:
            self.ep.register(op.fd, _REGISTER)  # an already connected socket reports writable at once
        except OSError as exc:
            sock.close()
            self.loop.call_soon(done, exc, b"", 0.0, False)
            return None
        self.ops[op.fd] = op
        self._queue(connect_timeout, op)
        return op

    def _queue(self, timeout: float, op: Op) -> None:
        q = self.queues.get(timeout)
        if q is None:
            q = self.queues[timeout] = deque()
        q.append((op.deadline, op))
        if self._timer is None and not self.driven:
            self._tick_at = self.loop.time() + TICK
            self._timer = self.loop.call_at(self._tick_at, self._tick)

    def cancel(self, op: Op) -> None:
        """Abandon an exchange (its awaiting task was cancelled); `done` is not called."""
        if self.ops.pop(op.fd, None) is op:
            op.sock.close()

    # ---- events -------------------------------------------------------------------------------------------------

    def poll(self) -> None:
        """Serve the sockets that are ready (the asyncio loop calls this when the epoll is readable).

        At most BATCH events a call: the rest keep the epoll readable for the next turn of the loop, so the
        scheduler's tick runs between batches instead of after one huge one (deadlines are judged by asking
        each socket itself, see `_recheck`, so nothing ready is mistaken for silence meanwhile)."""
        if self.closed:
            return
        ops = self.ops
        for i, (fd, ev) in enumerate(self.ep.poll(0, BATCH)):
            if not i & 31:
                self.now = time.monotonic()
            op = ops.get(fd)
            if op is not None:
                self._event(op, ev)

    def _event(self, op: Op, ev: int) -> None:
        if not op.reading:
            if ev & _EV_BAD:  # refused or unreachable (a reset also sets IN and OUT: test this first)
                err = op.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) or errno.ECONNREFUSED
                self._finish(op, OSError(err, os.strerror(err)))
                return
            if not ev & _EV_OUT:
                return
            if op.request is None:  # connect check: the handshake is the proof
                try:
                    op.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _ABORT)
                except OSError:
                    pass
                self._finish(op, None)
                return
            try:
                sent = op.sock.send(op.request)
            except OSError as exc:
                self._finish(op, exc)
                return
            if sent != len(op.request):  # a request head is tiny; a short write means a broken peer
                self._finish(op, CheckFailed("short write"))
                return
            op.reading = True
            # the response's deadline counts from this send, whatever the loop did before it
            op.deadline = self.now + op.timeouts[1]
            self._queue(op.timeouts[1], op)
            if not ev & _EV_IN:
                return
        if ev & _EV_IN:
            self._read(op, ev)

    def _read(self, op: Op, ev: int) -> None:
        sock = op.sock
        for _ in range(MAX_READ // _CHUNK + 2):
            try:
                data = sock.recv(_CHUNK)
            except BlockingIOError:
                return
            except OSError as exc:
                # a reset after the response (common with closing servers) is fine
                self._finish(op, None if op.chunks else exc)
                return
            if not data:
                self._finish(op, None)
                return
            op.chunks.append(data)
            op.size += len(data)
            if op.size > MAX_READ:
                self._finish(op, None)
                return
            if len(data) < _CHUNK:  # drained: EOF too if the peer's FIN was in, else wait for the next edge
                if ev & _EV_RDHUP:
                    self._finish(op, None)
                return

    def _finish(self, op: Op, exc: BaseException | None, stale: bool = False) -> None:
        if self.ops.pop(op.fd, None) is not op:
            return
        op.sock.close()  # also removes it from the epoll
        raw = b"".join(op.chunks) if op.chunks else b""
        latency = max(0.0, self.now - op.started)
        if exc is None:
            # how close answers come to their timeout (EWMA): servers (or this host) slowing down under the load
            # the checks make, a signal for the engine to keep fewer in flight before anything times out. Only
            # answers count: a dead server's timeout says nothing about load and must not slow the others.
            self.pressure += 0.05 * (min(1.0, latency / op.timeouts[1]) - self.pressure)
        try:
            op.done(exc, raw, latency, stale)
        except Exception:  # noqa: BLE001 - a callback bug must not stop the other exchanges
            import logging

            logging.getLogger(__name__).exception("probe callback failed")

    # ---- deadlines --------------------------------------------------------------------------------------------

    def _tick(self) -> None:
        now = self.loop.time()
        self.now = time.monotonic()
        if now - self._tick_at >= LATE:
            self.late_at = self.now
        self._timer = None
        self.expire()
        if self.ops and not self.closed:
            self._tick_at = now + TICK
            self._timer = self.loop.call_at(self._tick_at, self._tick)

    def expire(self) -> None:
        """Fail exchanges past their deadline - each only after asking its socket (`_recheck`)."""
        if not self.ops:
            self.queues.clear()
            return
        now = self.now
        late_at = self.late_at
        for timeout, q in list(self.queues.items()):
            while q:
                deadline, op = q[0]
                if self.ops.get(op.fd) is not op or op.deadline != deadline:
                    q.popleft()  # finished, or moved on to another deadline
                    continue
                if deadline > now:
                    break
                q.popleft()
                if self._recheck(op, now):
                    continue
                stale = late_at >= op.started
                self.stale_timeouts += stale
                if op.reading:
                    self._finish(op, TimeoutError(), stale)
                else:
                    self._finish(op, CheckFailed(f"connect timeout {fmt_seconds(op.timeouts[0])}"), stale)
            if not q and self.queues.get(timeout) is q:
                del self.queues[timeout]

    def _recheck(self, op: Op, now: float) -> bool:
        """Ask the socket itself before calling its deadline: a busy loop may not have served its event yet.
        True when the exchange finished or moved on (connected: the request goes out now and its deadline
        counts from now; reply bytes came: one more full timeout, once)."""
        sock = op.sock
        if not op.reading:
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self._finish(op, OSError(err, os.strerror(err)))
                return True
            try:
                sock.getpeername()
            except OSError:
                return False  # the handshake really did not complete in time
            self._event(op, _EV_OUT)
            return True
        before = op.size
        for _ in range(2):  # a short read, then EOF or EAGAIN
            self._read(op, select.EPOLLIN)
            if self.ops.get(op.fd) is not op:
                return True
        if op.size > before and not op.extended:
            op.extended = True
            op.deadline = now + op.timeouts[1]
            self._queue(op.timeouts[1], op)
            return True
        return False

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
        try:
            self.loop.remove_reader(self.ep.fileno())
        except Exception:  # noqa: BLE001 - the loop may be closing already
            pass
        for op in self.ops.values():
            op.sock.close()
        self.ops.clear()
        self.queues.clear()
        self.ep.close()


async def run_fast(checker, target):
    """`checker.check(target)` for a fast-path checker: its `begin` on this loop's prober, awaited."""
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    prober = Prober.of(loop)
    op = checker.begin(prober, target, lambda result: fut.done() or fut.set_result(result))
    try:
        return await fut
    except asyncio.CancelledError:
        if op is not None:
            prober.cancel(op)
        raise
