"""HTTP/HTTPS/http_proxy negotiate checks against real servers on loopback."""

from __future__ import annotations

import asyncio
import ssl
import subprocess

import pytest

from director.desired import CheckSpec
from director.health.base import Target
from director.health.registry import build_checker


def run(spec: CheckSpec, port: int, host: str = "127.0.0.1", cafile: str | None = None):
    checker = build_checker(spec, "tcp", cafile=cafile)
    return asyncio.run(checker.check(Target(host, port, port)))


def http_server(
    servers, status=200, body=b"hello world", delay=0.0, seen=None, raw=None, ssl_ctx=None, host="127.0.0.1"
):
    """An HTTP/1.0 server; records each request head in `seen`; `raw` replaces the whole response."""

    async def handler(reader, writer):
        head = await reader.readuntil(b"\r\n\r\n")
        if seen is not None:
            seen.append(head.decode("latin-1"))
        if delay:
            await asyncio.sleep(delay)
        if raw is not None:
            writer.write(raw)
        else:
            writer.write(b"HTTP/1.0 %d X\r\nContent-Length: %d\r\n\r\n%s" % (status, len(body), body))
        await writer.drain()

    return servers.tcp(handler, host=host, ssl=ssl_ctx)


def test_it_reports_up_for_http_200(health_servers):
    result = run(CheckSpec(service="http"), http_server(health_servers))
    assert result.ok and result.reason == "HTTP 200"
    assert 0 < result.latency < 5


def test_it_reports_down_with_the_status_for_http_503(health_servers):
    result = run(CheckSpec(service="http"), http_server(health_servers, status=503))
    assert not result.ok and result.reason == "HTTP 503"


def redirecting_server(servers, location: str, seen=None):
    return http_server(
        servers, raw=b"HTTP/1.0 302 Found\r\nLocation: %s\r\n\r\nmoved" % location.encode(), seen=seen
    )


def test_it_follows_a_redirect_and_matches_receive_on_the_final_page(health_servers):
    final = http_server(health_servers, body=b"welcome: READY")
    seen = []
    port = redirecting_server(health_servers, f"http://127.0.0.1:{final}/home", seen)
    result = run(CheckSpec(service="http", receive="READY"), port)
    assert result.ok and result.reason == "HTTP 200"
    assert run(CheckSpec(service="http", receive="moved"), port).reason == "receive regex not matched"
    assert seen  # the first server was asked


def test_it_follows_a_relative_redirect_on_the_same_server(health_servers):
    seen = []

    async def handler(reader, writer):
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        seen.append(head.split(" ")[1])
        if head.startswith("GET /next"):
            writer.write(b"HTTP/1.0 200 OK\r\n\r\nfinal page")
        else:
            writer.write(b"HTTP/1.0 301 Moved\r\nLocation: /next?x=1\r\n\r\n")
        await writer.drain()

    port = health_servers.tcp(handler)
    assert run(CheckSpec(service="http", receive="final"), port).ok
    assert seen == ["/", "/next?x=1"]


def test_it_fails_a_redirect_it_does_not_follow(health_servers):
    port = redirecting_server(health_servers, "/elsewhere")
    result = run(CheckSpec(service="http", redirects=0), port)  # keepalived: 200-299 only, no following
    assert not result.ok and result.reason == "HTTP 302"
    assert run(CheckSpec(service="http", redirects=0, expected_status=(302,)), port).ok


def test_it_fails_a_redirect_loop_after_the_last_hop(health_servers):
    seen = []

    async def handler(reader, writer):
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.0 302 Found\r\nLocation: /again\r\n\r\n")
        await writer.drain()

    port = health_servers.tcp(handler)
    result = run(CheckSpec(service="http", redirects=3), port)
    assert not result.ok and result.reason == "HTTP 302"
    assert len(seen) == 4  # the first request and three followed


@pytest.mark.parametrize("status", [204, 299])
def test_it_accepts_any_2xx_by_default(health_servers, status):
    assert run(CheckSpec(service="http"), http_server(health_servers, status=status)).ok


@pytest.mark.parametrize("status", [300, 304, 404])
def test_it_fails_anything_else_by_default(health_servers, status):
    assert not run(CheckSpec(service="http"), http_server(health_servers, status=status)).ok


def test_it_matches_receive_regex_against_the_body(health_servers):
    port = http_server(health_servers, body=b"<html>status: OK 42</html>")
    assert run(CheckSpec(service="http", receive=r"OK \d+"), port).ok
    result = run(CheckSpec(service="http", receive="^FAIL"), port)
    assert not result.ok and result.reason == "receive regex not matched"


def test_it_does_not_match_receive_against_headers(health_servers):
    port = http_server(health_servers, body=b"body")
    assert not run(CheckSpec(service="http", receive="Content-Length"), port).ok


def test_it_requests_slash_by_default_and_sends_the_real_address_as_host(health_servers):
    seen = []
    port = http_server(health_servers, seen=seen)
    run(CheckSpec(service="http"), port)
    assert seen[0].startswith("GET / HTTP/1.0\r\n")
    assert "\r\nHost: 127.0.0.1\r\n" in seen[0]


def test_it_sends_the_request_path_method_and_virtualhost(health_servers):
    seen = []
    port = http_server(health_servers, seen=seen)
    assert run(
        CheckSpec(
            service="http", request="health/check?x=1", httpmethod="HEAD", virtualhost="www.example.test"
        ),
        port,
    ).ok
    assert seen[0].startswith("HEAD /health/check?x=1 HTTP/1.0\r\n")
    assert "\r\nHost: www.example.test\r\n" in seen[0]


def test_it_uses_checkport_instead_of_the_real_port(health_servers):
    port = http_server(health_servers)
    checker = build_checker(CheckSpec(service="http", checkport=port))
    from director.health.base import check_port_for

    target = Target("127.0.0.1", 1, check_port_for(checker.spec, 1))
    assert asyncio.run(checker.check(target)).ok


def test_it_accepts_only_the_expected_status_codes(health_servers):
    port = http_server(health_servers, status=404)
    assert run(CheckSpec(service="http", expected_status=(200, 404)), port).ok
    result = run(CheckSpec(service="http", expected_status=(200,)), http_server(health_servers, status=204))
    assert not result.ok and result.reason == "HTTP 204"


def test_it_reads_a_chunked_body_for_receive(health_servers):
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nall \r\n5\r\ngood!\r\n0\r\n\r\n"
    assert run(CheckSpec(service="http", receive="all good!"), http_server(health_servers, raw=raw)).ok


@pytest.mark.parametrize(
    "raw",
    [b"", b"garbage\r\n\r\n", b"SSH-2.0-OpenSSH_9.2\r\n", b"HTTP/1.0 abc\r\n\r\n", bytes(range(256))],
    ids=["empty", "text", "ssh", "bad-status", "binary"],
)
def test_it_reports_garbage_replies_as_down(health_servers, raw):
    result = run(CheckSpec(service="http"), http_server(health_servers, raw=raw))
    assert not result.ok
    assert "HTTP" in result.reason


def test_it_reports_connection_refused(health_servers):
    port = http_server(health_servers)
    health_servers.close()
    result = run(CheckSpec(service="http"), port)
    assert not result.ok and result.reason == "connection refused"


def test_it_reports_a_connect_timeout(health_blackhole):
    result = run(CheckSpec(service="http", checktimeout=0.3, negotiatetimeout=2), health_blackhole)
    assert not result.ok and result.reason == "connect timeout 0.3s"
    assert 0.25 < result.latency < 1.9  # below negotiatetimeout: the connect timeout cut it


def test_it_times_out_a_server_slower_than_negotiatetimeout(health_servers):
    port = http_server(health_servers, delay=2.0)
    result = run(CheckSpec(service="http", negotiatetimeout=0.3), port)
    assert not result.ok and result.reason.startswith("timeout 0.3s")
    assert result.latency < 1.9  # cut at 0.3 s, not after the server's 2 s (margin for a loaded machine)


def test_it_fetches_an_absolute_url_through_an_http_proxy(health_servers):
    seen = []
    port = http_server(health_servers, seen=seen, body=b"proxied")
    spec = CheckSpec(service="http_proxy", request="http://origin.example.test/ping", receive="proxied")
    assert run(spec, port).ok
    assert seen[0].startswith("GET http://origin.example.test/ping HTTP/1.0\r\n")
    assert "\r\nHost: origin.example.test\r\n" in seen[0]


# ---- HTTPS ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def health_cert(tmp_path_factory):
    """A self-signed certificate for www.example.test, made with the openssl CLI."""
    d = tmp_path_factory.mktemp("tls")
    key, cert = d / "key.pem", d / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout", str(key), "-out", str(cert),
         "-subj", "/CN=www.example.test", "-addext", "subjectAltName=DNS:www.example.test"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return str(cert), str(key)


def tls_server(servers, cert, seen_sni):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*cert)
    ctx.sni_callback = lambda sslobj, name, _ctx: seen_sni.append(name)
    return http_server(servers, body=b"secure ok", ssl_ctx=ctx)


def test_it_checks_https_with_sni_from_virtualhost(health_servers, health_cert):
    sni = []
    port = tls_server(health_servers, health_cert, sni)
    result = run(CheckSpec(service="https", virtualhost="www.example.test", receive="secure"), port)
    assert result.ok, result.reason
    assert sni == ["www.example.test"]


def test_it_fails_https_verification_of_a_self_signed_certificate(health_servers, health_cert):
    port = tls_server(health_servers, health_cert, [])
    result = run(CheckSpec(service="https", virtualhost="www.example.test", verify_tls=True), port)
    assert not result.ok and result.reason.startswith("TLS:")


def test_it_passes_https_verification_with_the_right_ca_and_name(health_servers, health_cert):
    port = tls_server(health_servers, health_cert, [])
    spec = CheckSpec(service="https", virtualhost="www.example.test", verify_tls=True)
    assert run(spec, port, cafile=health_cert[0]).ok
    wrong = CheckSpec(service="https", virtualhost="other.example.test", verify_tls=True)
    result = run(wrong, port, cafile=health_cert[0])
    assert not result.ok and "hostname" in result.reason.lower()


def test_it_reports_https_against_a_plain_http_server_as_a_tls_failure(health_servers):
    result = run(CheckSpec(service="https", negotiatetimeout=5), http_server(health_servers))
    assert not result.ok and result.reason.startswith("TLS")


def test_it_checks_http_over_ipv6(health_servers):
    seen = []
    try:
        port = http_server(health_servers, seen=seen, host="::1")
    except OSError:
        pytest.skip("no IPv6 loopback")
    result = run(CheckSpec(service="http"), port, host="::1")
    assert result.ok, result.reason
    assert "\r\nHost: [::1]\r\n" in seen[0]
