"""The `Checker` interface every health check implements, and the plumbing they share.

A checker is built once from a `CheckSpec` (settings that hold for every real server of a virtual service)
and then asked `await checker.check(target)` for one real server at a time. It never raises: every outcome,
including timeouts and protocol garbage, is a `CheckResult` with a short human reason, because the engine
and the dashboard want "why is this down" as data, not as a traceback.

Timeouts follow ldirectord: `checktimeout` bounds connect-style checks (and the TCP connect phase of any
check), `negotiatetimeout` bounds the whole conversation of a negotiate check.
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from director.desired import CheckSpec

try:
    import ssl
except ImportError:  # a checker process started without TLS (health/checker.py): no HTTPS check configured
    ssl = None

#: ldirectord's ld_service_to_port: the port a check uses when neither checkport nor the real port is set.
SERVICE_PORTS = {
    "ftp": 21,
    "smtp": 25,
    "dns": 53,
    "http": 80,
    "pop": 110,
    "nntp": 119,
    "imap": 143,
    "ldap": 389,
    "https": 443,
    "radius": 1812,
    "http_proxy": 3128,
    "mysql": 3306,
    "sip": 5060,
    "pgsql": 5432,
}

#: Upper bound on what any checker reads from a server; a health check never needs more.
MAX_READ = 1 << 20


@dataclass(frozen=True, slots=True)
class CheckResult:
    """Outcome of one check attempt: up or not, how long it took (seconds), and why, in a few words.

    stale: a timeout that ran while the engine's own loop was starved, so it says nothing about the server;
    the engine re-verifies it instead of counting it (see probe.py).
    """

    ok: bool
    latency: float
    reason: str
    stale: bool = False


@dataclass(frozen=True, slots=True)
class Target:
    """Where to check: one real server of one virtual service.

    `port` is the real server's port (what IPVS forwards to); `check_port` is where the check connects
    (ldirectord's checkport rule, see `check_port_for`). The virtual side is only needed by external
    checks, which receive ldirectord's `v_server v_port r_server r_port` arguments.
    """

    address: str
    port: int
    check_port: int
    protocol: str = "tcp"
    v_address: str = ""
    v_port: int = 0

    @property
    def family(self) -> int:
        return socket.AF_INET6 if ":" in self.address else socket.AF_INET

    @property
    def host_literal(self) -> str:
        """The address as it goes into a URL or Host header (IPv6 in brackets)."""
        return f"[{self.address}]" if ":" in self.address else self.address


def check_port_for(spec: CheckSpec, real_port: int, source_port: int = 0) -> int:
    """ldirectord's ld_checkport: checkport if set, else the real server's port, else the service's port.

    `source_port` is RealSpec.check_port: the port the source daemon probed where that is not the traffic
    port (a gate real's configured port, the service's port for a real without one). It wins unless the
    service opted into `check_traffic_port`, the documented choice of probing where traffic goes.
    """
    if spec.checkport:
        return int(spec.checkport)
    if source_port and not spec.check_traffic_port:
        return int(source_port)
    if real_port:
        return int(real_port)
    return SERVICE_PORTS.get(spec.service, 0)


class CheckFailed(Exception):
    """Raised inside a checker with the short reason the result should carry."""


def fmt_seconds(t: float) -> str:
    return f"{t:.1f}s"


def compile_receive(pattern: str) -> re.Pattern[str] | None:
    """ldirectord's receive is a Perl regex matched anywhere (`=~ /$recstr/`); empty means "not checked"."""
    if not pattern:
        return None
    try:
        return re.compile(pattern)
    except re.error:
        # A pattern Python cannot compile is still a literal the operator wants to find.
        return re.compile(re.escape(pattern))


def reason_for(exc: BaseException, timeout: float) -> str:
    """Map an exception that escaped a checker to a short reason."""
    if isinstance(exc, CheckFailed):
        return str(exc)
    if isinstance(exc, TimeoutError):
        return f"timeout {fmt_seconds(timeout)}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, asyncio.IncompleteReadError | EOFError | BrokenPipeError):
        return "connection closed by server"
    if ssl is not None and isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS: {exc.verify_message or 'certificate verify failed'}"
    if ssl is not None and isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or exc.__class__.__name__}".lower()
    if isinstance(exc, OSError):
        return (exc.strerror or exc.__class__.__name__).lower()
    return f"{exc.__class__.__name__}: {exc}"[:120]


class Checker:
    """Base class: subclasses implement `_check(target) -> str` (the reason for success) or raise.

    `timeout` is the overall deadline of one attempt; subclasses choose checktimeout or negotiatetimeout.
    """

    name = "base"
    #: True when the checker implements `begin` (the engine's callback fast path, no task per check).
    fast = False

    def __init__(self, spec: CheckSpec):
        self.spec = spec
        self.timeout = float(spec.negotiatetimeout)
        self.connect_timeout = min(float(spec.checktimeout), self.timeout)

    async def check(self, target: Target) -> CheckResult:
        start = time.perf_counter()
        try:
            # A little slack so an inner, more specific deadline ("connect timeout") fires first.
            async with asyncio.timeout(self.timeout + 0.02):
                reason = await self._check(target)
            ok = True
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure is a result, never a crash of the engine
            ok, reason = False, reason_for(exc, self.timeout)
        return CheckResult(ok, time.perf_counter() - start, reason)

    async def _check(self, target: Target) -> str:
        raise NotImplementedError

    def begin(self, prober, target: Target, done: Callable[[CheckResult], None]):
        """Fast path (only when `fast`): start one check on `prober` (probe.Prober), call `done(result)` once
        on the loop thread; returns the probe.Op to cancel, or None."""
        raise NotImplementedError

    async def open(
        self,
        target: Target,
        *,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        limit: int = 65536,
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """TCP (optionally TLS) connect bounded by checktimeout, with ldirectord-style failure reasons."""
        try:
            async with asyncio.timeout(self.connect_timeout):
                return await asyncio.open_connection(
                    target.address,
                    target.check_port,
                    ssl=ssl_context,
                    server_hostname=server_hostname if ssl_context else None,
                    limit=limit,
                )
        except TimeoutError:
            raise CheckFailed(f"connect timeout {fmt_seconds(self.connect_timeout)}") from None


async def close_writer(writer: asyncio.StreamWriter) -> None:
    """Close without waiting on a peer that may never answer (the caller's deadline still applies)."""
    writer.close()
    try:
        async with asyncio.timeout(0.5):
            await writer.wait_closed()
    except Exception:  # noqa: BLE001 - closing is best effort
        pass


async def read_line(reader: asyncio.StreamReader, what: str) -> str:
    """One CRLF line as text; garbage (no line end within the stream limit) is a failure, not a hang."""
    try:
        raw = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise CheckFailed(f"{what}: truncated reply") from None
        raise CheckFailed(f"{what}: connection closed") from None
    except asyncio.LimitOverrunError:
        raise CheckFailed(f"{what}: reply line too long") from None
    return raw.decode("latin-1").rstrip("\r\n")


async def udp_exchange(target: Target, payload: bytes, accept) -> bytes:
    """Send one datagram to the check port and return the first reply `accept(reply)` approves.

    The socket is connected, so replies from other hosts are dropped by the kernel and an ICMP port
    unreachable surfaces as "connection refused". Stray datagrams are skipped (bounded); the caller's
    deadline bounds the wait.
    """
    loop = asyncio.get_running_loop()
    sock = socket.socket(target.family, socket.SOCK_DGRAM)
    sock.setblocking(False)
    try:
        sock.connect((target.address, target.check_port))  # immediate for UDP
        await loop.sock_sendall(sock, payload)
        for _ in range(64):
            reply = await loop.sock_recv(sock, 65535)
            if accept(reply):
                return reply
        raise CheckFailed("no matching reply")
    finally:
        sock.close()
