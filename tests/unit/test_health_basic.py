"""connect, ping, external, on/off, combined checktype N and ldirectord's port rules."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
import textwrap

import pytest

from director.desired import CheckSpec
from director.health.base import Target, check_port_for
from director.health.registry import CombinedChecker, build_checker


def run(spec: CheckSpec, target: Target, protocol: str = "tcp"):
    return asyncio.run(build_checker(spec, protocol).check(target))


def listener(servers) -> int:
    async def handler(reader, writer):
        await reader.read(100)

    return servers.tcp(handler)


def test_it_connects(health_servers):
    port = listener(health_servers)
    result = run(CheckSpec(checktype="connect"), Target("127.0.0.1", port, port))
    assert result.ok and result.reason == "connected"


def test_it_ends_a_connect_check_with_a_reset_not_a_time_wait():
    """Like HAProxy's checks: at 2,500 connect checks a second a FIN each would leave 150,000 TIME_WAIT
    sockets and twice the packets on the director."""
    import socket

    server = socket.create_server(("127.0.0.1", 0))
    try:
        port = server.getsockname()[1]
        assert run(CheckSpec(checktype="connect"), Target("127.0.0.1", port, port)).ok
        server.settimeout(5)
        conn, _ = server.accept()
        with conn, pytest.raises(ConnectionResetError):
            conn.settimeout(5)
            conn.recv(10)
    finally:
        server.close()


def test_it_reports_connect_refused_and_timeout(health_servers, health_blackhole):
    port = listener(health_servers)
    health_servers.close()
    assert run(CheckSpec(checktype="connect"), Target("127.0.0.1", port, port)).reason == "connection refused"
    result = run(
        CheckSpec(checktype="connect", checktimeout=0.2),
        Target("127.0.0.1", health_blackhole, health_blackhole),
    )
    assert (
        result.reason == "connect timeout 0.2s" and 0.15 < result.latency < 3.0
    )  # margin: a loaded 2-CPU CI box


def test_it_pings_loopback_over_ipv4_and_ipv6():
    assert run(CheckSpec(checktype="ping", checktimeout=1), Target("127.0.0.1", 0, 0)).ok
    result = run(CheckSpec(checktype="ping", checktimeout=1), Target("::1", 0, 0))
    assert result.ok or "permission" in result.reason


def test_it_pings_instead_of_connecting_for_udp_services():
    assert build_checker(CheckSpec(checktype="connect"), "udp").name == "ping"


def test_it_does_a_tcp_handshake_on_a_udp_service_with_tcp_on_udp(health_servers):
    """keepalived's TCP_CHECK on a UDP service: a TCP listener answers, a closed TCP port fails."""
    port = listener(health_servers)
    spec = CheckSpec(checktype="connect", tcp_on_udp=True, checktimeout=1)
    assert run(spec, Target("127.0.0.1", port, port, "udp"), "udp").reason == "connected"
    assert run(CheckSpec(checktype="2", tcp_on_udp=True), Target("127.0.0.1", port, port), "udp").ok
    health_servers.close()
    assert run(spec, Target("127.0.0.1", port, port, "udp"), "udp").reason == "connection refused"


def test_it_answers_on_off_and_none_without_network():
    t = Target("127.0.0.1", 1, 1)
    assert run(CheckSpec(checktype="on"), t).ok
    assert run(CheckSpec(checktype="off"), t).reason == "checktype off"
    assert run(CheckSpec(checktype="negotiate", service="none"), t).ok
    assert run(CheckSpec(checktype="bogus"), t).reason == "unknown checktype bogus"


def test_it_uses_ldirectord_port_rules():
    assert check_port_for(CheckSpec(checkport=8080), 80) == 8080
    assert check_port_for(CheckSpec(service="http"), 8000) == 8000
    assert check_port_for(CheckSpec(service="https"), 0) == 443
    assert check_port_for(CheckSpec(service="mysql"), 0) == 3306


# ---- external -----------------------------------------------------------------------------------------------


@pytest.fixture
def script(tmp_path):
    def make(body: str) -> str:
        path = tmp_path / "check.py"
        path.write_text(f"#!{sys.executable}\nimport sys, time\n" + textwrap.dedent(body))
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
        return str(path)

    return make


def test_it_runs_an_external_check_with_ldirectords_arguments(script, tmp_path):
    out = tmp_path / "args"
    prog = script(f"open({str(out)!r}, 'w').write(' '.join(sys.argv[1:]))\n")
    target = Target("10.1.1.2", 8080, 8080, "tcp", "192.0.2.10", 80)
    result = run(CheckSpec(checktype="external", external=prog), target)
    assert result.ok and result.reason == "exit 0"
    assert out.read_text() == "192.0.2.10 80 10.1.1.2 8080"


def test_it_reports_the_exit_code_and_message_of_a_failing_external_check(script):
    prog = script("print('backend says no', file=sys.stderr); sys.exit(2)\n")
    result = run(CheckSpec(checktype="external", external=prog), Target("127.0.0.1", 1, 1))
    assert not result.ok and result.reason == "exit 2: backend says no"


def test_it_kills_an_external_check_that_overruns_checktimeout(script, tmp_path):
    pidfile = tmp_path / "pid"
    prog = script(f"import os; open({str(pidfile)!r}, 'w').write(str(os.getpid())); time.sleep(30)\n")
    result = run(CheckSpec(checktype="external", external=prog, checktimeout=0.5), Target("127.0.0.1", 1, 1))
    assert not result.ok and result.reason == "external timeout 0.5s"
    assert result.latency < 10  # killed at 0.5 s, not left to sleep 30 s (margin for a loaded machine)
    pid = int(pidfile.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_it_passes_arguments_without_a_shell(script, tmp_path):
    marker = tmp_path / "pwned"
    result = run(
        CheckSpec(checktype="external", external="/bin/true"), Target(f"1.2.3.4; touch {marker}", 1, 1)
    )
    assert result.ok and not marker.exists()


def test_it_runs_only_programs_inside_the_directors_external_check_directory(script, tmp_path, monkeypatch):
    allowed = tmp_path / "checks"
    allowed.mkdir()
    inside = allowed / "check-app"
    inside.symlink_to(script("sys.exit(0)\n"))  # resolves outside: a link does not smuggle a program in
    real_inside = allowed / "real-check"
    real_inside.write_text(f"#!{sys.executable}\nimport sys; sys.exit(0)\n")
    real_inside.chmod(0o755)
    monkeypatch.setenv("UMW_EXTERNAL_CHECK_DIR", str(allowed))
    target = Target("127.0.0.1", 1, 1)

    assert run(CheckSpec(checktype="external", external=f"{real_inside} --quick"), target).ok
    for program in ("/bin/true", str(inside), f"{allowed}/../checks/../check.py", "true"):
        result = run(CheckSpec(checktype="external", external=program), target)
        assert not result.ok
        assert result.reason == (
            f"external program {program} is not in the director's external-check directory {allowed}"
        )


# ---- checktype N ----------------------------------------------------------------------------------------------


def test_it_negotiates_every_nth_check_and_connects_in_between(health_servers):
    requests = []

    async def handler(reader, writer):
        data = await reader.read(1000)
        if data:
            requests.append(data)
            writer.write(b"HTTP/1.0 200 OK\r\n\r\nok")
            await writer.drain()

    port = health_servers.tcp(handler)
    checker = build_checker(CheckSpec(checktype="3", service="http"))
    assert isinstance(checker, CombinedChecker)
    target = Target("127.0.0.1", port, port)

    async def many():
        return [await checker.check(target) for _ in range(8)]

    results = asyncio.run(many())
    assert all(r.ok for r in results)
    assert [r.reason for r in results] == ["HTTP 200", "connected", "connected", "connected", "HTTP 200", "connected",
                                            "connected", "connected"]  # fmt: skip
    assert len(requests) == 2


def test_it_checks_the_port_the_source_daemon_checked_unless_told_to_follow_traffic():
    assert check_port_for(CheckSpec(service="http"), 8080, source_port=80) == 80
    assert check_port_for(CheckSpec(service="http", check_traffic_port=True), 8080, source_port=80) == 8080
    assert check_port_for(CheckSpec(checkport=9000), 8080, source_port=80) == 9000
