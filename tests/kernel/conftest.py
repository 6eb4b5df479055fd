"""Kernel-tier fixtures. These run inside a UML guest (lab/lab.sh pytest tests/kernel) with the classic topology:

    netns client 172.16.10.100/24 -- wan 172.16.10.2/24 [director] lan 192.168.1.1/24 -- netns rs1 .4, rs2 .5
    (rs1/rs2 run lab/rsd.py: HTTP :80 answers "rsN\\n", :5500 answers each line with "rsN <line>")

The VIP is not pre-configured: the `vip` fixture adds it with director.vip and removes it afterwards. Every
test starts and ends with an empty IPVS table (the agent owns the whole table; so do these tests).
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time

import pytest

from director import vip as vip_mod
from director.ipvs.plan import reconcile
from director.ipvs.wire import Wire
from director.sysctl import in_netns

VIP = "172.16.10.52"
CLIENT_NS = "client"
RS = {"rs1": "192.168.1.4", "rs2": "192.168.1.5"}


@pytest.fixture
def wire():
    w = Wire()
    reconcile(w, [])  # start empty (service by service: no flush)
    yield w
    report = reconcile(w, [])
    w.close()
    assert report.errors == []


@pytest.fixture
def vip():
    vip_mod.ensure("wan", [f"{VIP}/24"])
    yield VIP
    vip_mod.ensure("wan", [])


def connect(ns: str | None, address: str, port: int, timeout: float = 5.0) -> socket.socket:
    """A TCP connection opened from inside network namespace `ns` (the socket stays in that namespace)."""
    with in_netns(ns):
        return socket.create_connection((address, port), timeout=timeout)


class LineClient:
    """A held connection to the :5500 line service: ask() sends a line and returns the answer."""

    def __init__(self, ns: str, address: str, port: int = 5500):
        self.sock = connect(ns, address, port)
        self.file = self.sock.makefile("rwb")

    def ask(self, text: str) -> str:
        self.file.write(text.encode() + b"\n")
        self.file.flush()
        return self.file.readline().decode().strip()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.file.close()
            self.sock.close()


def http_get(ns: str, address: str, port: int = 80) -> str:
    """One HTTP/1.0 request on a new connection; returns the body."""
    with contextlib.closing(connect(ns, address, port)) as s:
        s.sendall(b"GET / HTTP/1.0\r\nHost: vip\r\n\r\n")
        data = b""
        for _ in range(100):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    return data.split(b"\r\n\r\n", 1)[1].decode().strip()


def sh(*cmd: str, check: bool = True) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed: {proc.stderr}")
    return proc.stdout


def wait_for(predicate, timeout: float = 8.0, interval: float = 0.2):
    """Poll (bounded) until predicate() is truthy; returns its last value."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = predicate()
    return value
