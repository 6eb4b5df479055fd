"""negotiate checks of the non-HTTP services against real local daemons and tiny loopback servers."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import struct

import pytest

from director.desired import CheckSpec
from director.health import ldap
from director.health.base import Target
from director.health.registry import build_checker


def run(spec: CheckSpec, port: int, protocol: str = "tcp", host: str = "127.0.0.1"):
    checker = build_checker(spec, protocol)
    return asyncio.run(checker.check(Target(host, port, port, protocol)))


def service_up(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def scripted(servers, greeting: bytes, replies: dict[bytes, bytes]):
    """A line server: sends `greeting`, then answers each line by the first matching command prefix."""

    async def handler(reader, writer):
        writer.write(greeting)
        for _ in range(20):
            line = await reader.readline()
            if not line:
                return
            for prefix, answer in replies.items():
                if line.upper().startswith(prefix):
                    writer.write(answer)
                    break
            await writer.drain()
            if line.upper().startswith(b"QUIT") or line.upper().startswith(b"A2 LOGOUT"):
                return

    return servers.tcp(handler)


def garbage(servers, data: bytes = b"\x16\x03\x01garbage \xff\xfe\r\n"):
    async def handler(reader, writer):
        writer.write(data)
        await writer.drain()

    return servers.tcp(handler)


GARBAGE_SERVICES = ["smtp", "pop", "imap", "ftp", "nntp", "mysql", "pgsql", "ldap", "sip", "dns"]


@pytest.mark.parametrize("service", GARBAGE_SERVICES)
def test_it_reports_garbage_replies_as_down(health_servers, service):
    result = run(CheckSpec(service=service, negotiatetimeout=8), garbage(health_servers))
    assert not result.ok, result
    assert result.latency < 6  # refused on the reply, not after the timeout (margin for a loaded machine)


# ---- mail and news ---------------------------------------------------------------------------------------


def test_it_checks_smtp_greeting_and_ehlo(health_servers):
    port = scripted(
        health_servers,
        b"220-mail.test\r\n220 ESMTP ready\r\n",
        {b"EHLO": b"250-mail\r\n250 OK\r\n", b"QUIT": b"221 bye\r\n"},
    )
    result = run(CheckSpec(service="smtp"), port)
    assert result.ok and result.reason == "SMTP 250"


def test_it_reports_an_smtp_server_refusing_service(health_servers):
    port = scripted(health_servers, b"554 no service\r\n", {})
    result = run(CheckSpec(service="smtp"), port)
    assert not result.ok and result.reason == "SMTP 554"


def test_it_checks_pop_login(health_servers):
    port = scripted(
        health_servers,
        b"+OK POP3 ready\r\n",
        {
            b"USER": b"+OK\r\n",
            b"PASS SECRET": b"+OK logged in\r\n",
            b"PASS": b"-ERR denied\r\n",
            b"QUIT": b"+OK\r\n",
        },
    )
    assert run(CheckSpec(service="pop"), port).ok
    assert run(CheckSpec(service="pop", login="u", passwd="secret"), port).ok
    result = run(CheckSpec(service="pop", login="u", passwd="wrong"), port)
    assert not result.ok and "POP login" in result.reason


def test_it_checks_imap_login(health_servers):
    port = scripted(
        health_servers,
        b"* OK IMAP4rev1 ready\r\n",
        {
            b'A1 LOGIN "U" "SECRET"': b"a1 OK done\r\n",
            b"A1 LOGIN": b"a1 NO bad\r\n",
            b"A2 LOGOUT": b"* BYE\r\n",
        },
    )
    assert run(CheckSpec(service="imap"), port).ok
    assert run(CheckSpec(service="imap", login="u", passwd="secret"), port).ok
    assert not run(CheckSpec(service="imap", login="u", passwd="nope"), port).ok


def test_it_checks_the_nntp_greeting(health_servers):
    assert run(CheckSpec(service="nntp"), scripted(health_servers, b"200 news ready\r\n", {})).ok
    result = run(CheckSpec(service="nntp"), scripted(health_servers, b"502 go away\r\n", {}))
    assert not result.ok


def test_it_retrieves_a_file_over_ftp_and_matches_receive(health_servers):
    async def data_handler(reader, writer):
        writer.write(b"the file says: alive\n")
        await writer.drain()

    data_port = health_servers.tcp(data_handler)
    pasv = b"227 Entering Passive Mode (127,0,0,1,%d,%d)\r\n" % (data_port // 256, data_port % 256)
    port = scripted(
        health_servers,
        b"220 ftp ready\r\n",
        {b"USER": b"331 password\r\n", b"PASS": b"230 ok\r\n", b"TYPE": b"200 ok\r\n", b"PASV": pasv,
         b"RETR": b"150 sending\r\n", b"QUIT": b"221 bye\r\n"},
    )  # fmt: skip
    assert run(CheckSpec(service="ftp", request="status.txt", receive="alive"), port).ok
    result = run(CheckSpec(service="ftp", request="status.txt", receive="dead"), port)
    assert not result.ok and result.reason == "receive regex not matched"
    assert run(CheckSpec(service="ftp"), port).reason == "FTP login ok"


# ---- DNS ----------------------------------------------------------------------------------------------------


def dns_answer(query: bytes, rcode: int = 0, address: str = "10.9.8.7") -> bytes:
    qid = query[:2]
    question = query[12:]
    if rcode:
        return qid + struct.pack("!HHHHH", 0x8180 | rcode, 1, 0, 0, 0) + question
    answer = struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton(address)
    return qid + struct.pack("!HHHHH", 0x8180, 1, 1, 0, 0) + question + answer


def test_it_resolves_over_udp_and_matches_receive(health_servers):
    seen = []
    port = health_servers.udp(lambda q: seen.append(q) or dns_answer(q))
    assert run(CheckSpec(service="dns", request="www.example.test", receive=r"^10\.9\."), port, "udp").ok
    assert b"\x03www\x07example\x04test\x00\x00\x01" in seen[0]
    result = run(CheckSpec(service="dns", request="www.example.test", receive="^192"), port, "udp")
    assert not result.ok and result.reason == "receive regex not matched"


def test_it_reports_nxdomain(health_servers):
    port = health_servers.udp(lambda q: dns_answer(q, rcode=3))
    result = run(CheckSpec(service="dns", request="nope.example.test"), port, "udp")
    assert not result.ok and result.reason == "DNS NXDOMAIN"


def test_it_times_out_a_silent_dns_server(health_servers):
    port = health_servers.udp(lambda q: None)
    result = run(CheckSpec(service="dns", request="x.test", negotiatetimeout=0.3), port, "udp")
    assert not result.ok and result.reason.startswith("timeout")


def test_it_reports_udp_port_unreachable_as_refused():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    result = run(CheckSpec(service="dns", request="x.test", negotiatetimeout=1), port, "udp")
    assert not result.ok and result.reason == "connection refused"


def test_it_resolves_over_tcp_for_tcp_services(health_servers):
    async def handler(reader, writer):
        (size,) = struct.unpack("!H", await reader.readexactly(2))
        reply = dns_answer(await reader.readexactly(size))
        writer.write(struct.pack("!H", len(reply)) + reply)
        await writer.drain()

    port = health_servers.tcp(handler)
    assert run(CheckSpec(service="dns", request="www.example.test", receive="10.9.8.7"), port, "tcp").ok


def test_it_looks_up_a_ptr_when_the_request_is_an_address(health_servers):
    seen = []
    health_port = health_servers.udp(lambda q: seen.append(q) or dns_answer(q, rcode=3))
    run(CheckSpec(service="dns", request="192.0.2.1"), health_port, "udp")
    assert b"\x011\x012\x010\x03192\x07in-addr\x04arpa\x00\x00\x0c" in seen[0]


# ---- databases and key-value stores --------------------------------------------------------------------------


@pytest.mark.skipif(not service_up(5432), reason="no PostgreSQL on 127.0.0.1:5432")
def test_it_checks_a_real_postgresql():
    assert run(CheckSpec(service="pgsql"), 5432).ok
    assert run(CheckSpec(service="pgsql", login="postgres", database="postgres", request="SELECT 1"), 5432).ok
    result = run(CheckSpec(service="pgsql", login="postgres", request="SELECT 1 WHERE false"), 5432)
    assert not result.ok and result.reason == "SQL query returned no rows"
    result = run(CheckSpec(service="pgsql", login="postgres", request="SELECT * FROM no_such_table"), 5432)
    assert not result.ok and "no_such_table" in result.reason


@pytest.mark.skipif(not service_up(3306), reason="no MariaDB/MySQL on 127.0.0.1:3306")
def test_it_checks_a_real_mariadb():
    result = run(CheckSpec(service="mysql"), 3306)
    assert result.ok and result.reason.startswith("MySQL ")
    assert run(CheckSpec(service="mysql", login="root", request="SELECT 1"), 3306).ok
    result = run(CheckSpec(service="mysql", login="root", request="SELECT 1 FROM DUAL WHERE 1=0"), 3306)
    assert not result.ok and result.reason == "SQL query returned no rows"
    result = run(CheckSpec(service="mysql", login="root", passwd="wrong", request="SELECT 1"), 3306)
    assert not result.ok and "1045" in result.reason


@pytest.mark.skipif(not service_up(6379), reason="no Redis on 127.0.0.1:6379")
def test_it_checks_redis_with_simpletcp():
    assert run(CheckSpec(service="simpletcp", request="PING\\r\\n", receive="PONG"), 6379).ok
    result = run(CheckSpec(service="simpletcp", request="PING\\r\\n", receive="^NOPE"), 6379)
    assert not result.ok and result.reason == "receive regex not matched"


# ---- SIP, RADIUS, LDAP -------------------------------------------------------------------------------------------


def test_it_checks_sip_options_over_udp(health_servers):
    ok = health_servers.udp(
        lambda d: b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n" if d.startswith(b"OPTIONS") else None
    )
    busy = health_servers.udp(lambda d: b"SIP/2.0 503 Service Unavailable\r\n\r\n")
    assert run(CheckSpec(service="sip", login="ping@example.test"), ok, "udp").ok
    result = run(CheckSpec(service="sip"), busy, "udp")
    assert not result.ok and result.reason == "SIP/2.0 503 Service Unavailable"


def radius_server(servers, secret: bytes, code: int = 2):
    def reply(data: bytes):
        head = bytes([code, data[1]]) + struct.pack("!H", 20)
        return head + hashlib.md5(head + data[4:20] + secret).digest()

    return servers.udp(reply)


def test_it_checks_radius_and_verifies_the_reply(health_servers):
    spec = CheckSpec(service="radius", login="probe", passwd="pw", secret="s3cret", negotiatetimeout=1)
    assert run(spec, radius_server(health_servers, b"s3cret"), "udp").reason == "RADIUS Access-Accept"
    assert run(spec, radius_server(health_servers, b"s3cret", code=3), "udp").ok  # a reject still proves life
    result = run(spec, radius_server(health_servers, b"other"), "udp")
    assert not result.ok and "not authentic" in result.reason


def ldap_server(servers, entries: list[bytes], bind_code: int = 0):
    def message(msg_id: int, op: bytes) -> bytes:
        return ldap.tlv(0x30, ldap.integer(0x02, msg_id) + op)

    def result(tag: int, code: int) -> bytes:
        return ldap.tlv(tag, ldap.integer(0x0A, code) + ldap.tlv(0x04, b"") + ldap.tlv(0x04, b""))

    async def handler(reader, writer):
        await ldap.read_message(reader)
        writer.write(message(1, result(0x61, bind_code)))
        tag, value = await ldap.read_message(reader)
        assert tag == 0x63
        for dn in entries:
            writer.write(message(2, ldap.tlv(0x64, ldap.tlv(0x04, dn) + ldap.tlv(0x30, b""))))
        writer.write(message(2, result(0x65, 0)))
        await writer.drain()
        await reader.read(100)

    return servers.tcp(handler)


def test_it_checks_ldap_bind_and_base_search(health_servers):
    port = ldap_server(health_servers, [b"dc=example,dc=test"])
    assert run(CheckSpec(service="ldap", request="/dc=example,dc=test", receive="dc=example"), port).ok
    result = run(CheckSpec(service="ldap", request="/dc=example,dc=test", receive="^ou="), port)
    assert not result.ok and result.reason == "receive regex not matched"
    assert not run(CheckSpec(service="ldap"), ldap_server(health_servers, [])).ok
    result = run(
        CheckSpec(service="ldap", login="cn=x", passwd="y"), ldap_server(health_servers, [], bind_code=49)
    )
    assert not result.ok and result.reason == "LDAP bind failed: invalidCredentials"
