"""negotiate checks for service http, https and http_proxy: a minimal HTTP/1.0 client on an asyncio Protocol.

Why not a library: this is the hot path (thousands of checks per second on one core), and a health check
needs exactly one request, one response, the status code and a regex over the body. A Protocol that
collects bytes until the server closes costs a fraction of a stream-based or full-featured client.

ldirectord semantics kept: URL = `<scheme>://<real ip>:<checkport>/<request>` (request defaults to "/"),
Host header = virtualhost or the real server's address, `receive` is a regex searched in the body,
`httpmethod` GET or HEAD. For http_proxy the request is an absolute URL fetched *through* the real server.
Success is a status in `expected_status` (keepalived's status_code) or, when that is empty, a 2xx, which is
what both daemons accept (ldirectord's `is_success`, keepalived's default 200-299). Up to `redirects`
redirects are followed first, as ldirectord's LWP does (7 by default; keepalived follows none, so its
import sets 0): the status and `receive` then apply to the final page, and a redirect left over fails.
Like LWP, a followed redirect drops the virtual host and asks the host the Location names.
"""

from __future__ import annotations

import asyncio
import re
import socket
from urllib.parse import urljoin, urlsplit

from director.desired import CheckSpec

from .base import (
    MAX_READ,
    Checker,
    CheckFailed,
    CheckResult,
    Target,
    compile_receive,
    fmt_seconds,
    reason_for,
    ssl,
)
from .probe import Prober, run_fast

_STATUS_LINE = re.compile(rb"HTTP/\d\.\d (\d{3})")
_LOCATION = re.compile(rb"^location:[ \t]*([^\r\n]*)", re.IGNORECASE | re.MULTILINE)
REDIRECTS = frozenset((301, 302, 303, 307, 308))


class _Collect(asyncio.Protocol):
    """Write the request once connected, collect everything until EOF (HTTP/1.0, Connection: close)."""

    __slots__ = ("request", "done", "chunks", "size", "transport")

    def __init__(self, request: bytes, done: asyncio.Future):
        self.request = request
        self.done = done
        self.chunks: list[bytes] = []
        self.size = 0
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes):
        self.chunks.append(data)
        self.size += len(data)
        if self.size > MAX_READ:
            self.transport.close()

    def eof_received(self):
        return False  # let the transport close; connection_lost delivers the result

    def connection_lost(self, exc):
        if self.done.done():
            return
        if exc is not None and not self.chunks:
            self.done.set_exception(exc)
        else:
            self.done.set_result(b"".join(self.chunks))


def _dechunk(body: bytes) -> bytes:
    """Undo Transfer-Encoding: chunked well enough to run a regex on the payload; garbage stays as is."""
    out, pos = [], 0
    while pos < len(body):
        eol = body.find(b"\r\n", pos)
        if eol < 0:
            break
        try:
            size = int(body[pos:eol].split(b";", 1)[0], 16)
        except ValueError:
            return body
        if size == 0:
            break
        out.append(body[eol + 2 : eol + 2 + size])
        pos = eol + 2 + size + 2
    return b"".join(out)


def parse_response(raw: bytes) -> tuple[int, bytes]:
    """Split a raw HTTP response into (status, body); raise CheckFailed on anything that is not HTTP."""
    if not raw:
        raise CheckFailed("empty HTTP reply")
    m = _STATUS_LINE.match(raw)
    if m is None:
        raise CheckFailed("bad HTTP status line")
    head_end = raw.find(b"\r\n\r\n")
    if head_end >= 0:
        head, body = raw[:head_end], raw[head_end + 4 :]
    else:
        head_end = raw.find(b"\n\n")
        head, body = (raw[:head_end], raw[head_end + 2 :]) if head_end >= 0 else (raw, b"")
    if b"chunked" in head.lower():
        body = _dechunk(body)
    return int(m.group(1)), body


class HttpChecker(Checker):
    """negotiate/http, https, http_proxy. `cafile` lets verify_tls trust a private CA (tests, internal PKI)."""

    name = "http"

    def __init__(self, spec: CheckSpec, cafile: str | None = None):
        super().__init__(spec)
        self.service = spec.service if spec.service in ("http", "https", "http_proxy") else "http"
        self.method = (spec.httpmethod or "GET").upper()
        self.receive = compile_receive(spec.receive) if self.method != "HEAD" else None
        self.expected = frozenset(spec.expected_status)
        self.redirects = max(0, int(spec.redirects))
        self.ssl_context = self._ssl_context(spec, cafile) if self.service == "https" else None
        self._requests: dict[Target, bytes] = {}
        self._following: set[asyncio.Task] = set()

    @staticmethod
    def _ssl_context(spec: CheckSpec, cafile: str | None) -> ssl.SSLContext:
        if ssl is None:  # never with the checker process the agent runs: it loads TLS when a check needs it
            raise CheckFailed("TLS is not loaded in this checker process (registry.needs_tls)")
        if spec.verify_tls:
            ctx = ssl.create_default_context(cafile=cafile)
        else:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def url_for(self, target: Target) -> str:
        """ldirectord's $$r{url}: absolute request kept for http_proxy, else built from real ip + checkport."""
        request = self.spec.request or "/"
        if self.service == "http_proxy" or re.match(r"https?://", request):
            return request
        scheme = "https" if self.service == "https" else "http"
        return f"{scheme}://{target.host_literal}:{target.check_port}/{request.lstrip('/')}"

    def request_for(self, target: Target) -> bytes:
        req = self._requests.get(target)
        if req is None:
            url = self.url_for(target)
            parts = urlsplit(url)
            if self.service == "http_proxy":
                line, host = url, parts.netloc
            else:
                line = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
                host = self.spec.virtualhost or target.host_literal
            req = (
                f"{self.method} {line} HTTP/1.0\r\nHost: {host}\r\n"
                "User-Agent: ultramonkey-health/1\r\nAccept: */*\r\nConnection: close\r\n\r\n"
            ).encode("latin-1")
            if len(self._requests) < 100_000:
                self._requests[target] = req
        return req

    @property
    def fast(self) -> bool:
        """Plain HTTP takes the probe fast path (probe.py); HTTPS goes through a TLS transport (`_check`)."""
        return self.ssl_context is None

    def begin(self, prober: Prober, target: Target, done):
        timeout = self.timeout

        def finished(exc, raw, latency, stale):
            if exc is not None:
                done(CheckResult(False, latency, reason_for(exc, timeout), stale))
                return
            if self.redirects and self.location(raw) is not None:
                self._redirected(prober.loop, raw, target, latency, done)
                return
            try:
                done(CheckResult(True, latency, self.judge(raw)))
            except Exception as exc:  # noqa: BLE001 - every failure is a result
                done(CheckResult(False, latency, reason_for(exc, timeout)))

        return prober.start(
            target.family,
            (target.address, target.check_port),
            self.request_for(target),
            self.connect_timeout,
            timeout,
            finished,
        )

    def _redirected(self, loop, raw: bytes, target: Target, spent: float, done) -> None:
        """The rare slow part of the fast path: follow redirects in a task, within what is left of the timeout."""

        async def follow():
            start = loop.time()
            try:
                async with asyncio.timeout(max(0.001, self.timeout - spent)):
                    final = await self.follow(raw, self.url_for(target))
                result = CheckResult(True, spent + loop.time() - start, self.judge(final))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - every failure is a result
                result = CheckResult(False, spent + loop.time() - start, reason_for(exc, self.timeout))
            done(result)

        task = loop.create_task(follow())
        self._following.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._following.discard)

    async def check(self, target: Target) -> CheckResult:
        if self.ssl_context is not None:
            return await super().check(target)
        return await run_fast(self, target)

    def location(self, raw: bytes) -> str | None:
        """The Location of a redirect this check follows (a 30x it does not expect), else None."""
        m = _STATUS_LINE.match(raw)
        if m is None or int(m.group(1)) not in REDIRECTS or int(m.group(1)) in self.expected:
            return None
        head = raw.split(b"\r\n\r\n", 1)[0]
        loc = _LOCATION.search(head)
        return loc.group(1).decode("latin-1").strip() if loc else None

    async def follow(self, raw: bytes, url: str) -> bytes:
        """Follow redirects (at most `redirects`) from the response `raw` to `url`; the last response."""
        for _ in range(self.redirects):
            location = self.location(raw)
            if location is None:
                break
            url = urljoin(url, location)
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise CheckFailed(f"redirect to {url[:80]} not followed")
            tls = parts.scheme == "https"
            port = parts.port or (443 if tls else 80)
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            request = (
                f"{self.method} {path} HTTP/1.0\r\nHost: {parts.netloc}\r\n"
                "User-Agent: ultramonkey-health/1\r\nAccept: */*\r\nConnection: close\r\n\r\n"
            ).encode("latin-1")
            ctx = (self.ssl_context or self._ssl_context(self.spec, None)) if tls else None
            reader, writer = await asyncio.open_connection(
                parts.hostname, port, ssl=ctx, server_hostname=parts.hostname if tls else None
            )
            try:
                writer.write(request)
                raw = await reader.read(MAX_READ)
                while len(raw) < MAX_READ and (more := await reader.read(MAX_READ - len(raw))):
                    raw += more
            finally:
                writer.close()
        return raw

    def judge(self, raw: bytes) -> str:
        """Status and receive rules applied to a complete response; the success reason or CheckFailed."""
        status, body = parse_response(raw)
        if self.expected:
            if status not in self.expected:
                raise CheckFailed(f"HTTP {status}")
        elif not 200 <= status < 300:
            raise CheckFailed(f"HTTP {status}")
        if self.receive is not None and not self.receive.search(body.decode("latin-1")):
            raise CheckFailed("receive regex not matched")
        return f"HTTP {status}"

    async def _check(self, target: Target) -> str:
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        proto = _Collect(self.request_for(target), done)
        sni = None
        if self.ssl_context is not None:
            sni = self.spec.virtualhost or target.address
        started = loop.time()
        sock = socket.socket(target.family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            async with asyncio.timeout(self.connect_timeout):
                await loop.sock_connect(sock, (target.address, target.check_port))
        except TimeoutError:
            sock.close()
            raise CheckFailed(f"connect timeout {fmt_seconds(self.connect_timeout)}") from None
        except BaseException:
            sock.close()
            raise
        try:
            # TLS handshake gets what is left of negotiatetimeout, and its own reason when it stalls.
            async with asyncio.timeout(max(0.001, self.timeout - (loop.time() - started))):
                transport, _ = await loop.create_connection(
                    lambda: proto, sock=sock, ssl=self.ssl_context, server_hostname=sni
                )
        except TimeoutError:
            sock.close()
            raise CheckFailed("TLS handshake timeout" if self.ssl_context else "timeout") from None
        except BaseException:
            sock.close()
            raise
        try:
            raw = await done
        finally:
            transport.close()
        if self.redirects and self.location(raw) is not None:
            raw = await self.follow(raw, self.url_for(target))
        return self.judge(raw)
