"""Shared test fixtures: a real, private Redis for the whole session.

We start our own `redis-server` on a free loopback port (nothing persisted) so tests can flush it freely;
if the binary is missing we fall back to the machine's Redis on 127.0.0.1:6379, database 15.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def redis_url():
    """URL of a real Redis for this test session."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield "redis://127.0.0.1:6379/15"
        return
    port = _free_port()
    tmp = tempfile.mkdtemp(prefix="umw-redis-")
    proc = subprocess.Popen(
        [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            tmp,
            "--protected-mode",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("private redis-server did not start")
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def redis_client(redis_url):
    import redis

    r = redis.Redis.from_url(redis_url, decode_responses=True)
    r.flushdb()
    yield r
    r.close()


def pytest_collection_modifyitems(config, items):
    """Kernel tests only run where IPVS exists (inside the UML lab); say so instead of failing elsewhere."""
    has_ipvs = os.path.exists("/proc/net/ip_vs")
    skip = pytest.mark.skip(reason="needs a kernel with IPVS: run through lab/lab.sh pytest tests/kernel")
    for item in items:
        if "kernel" in item.keywords and not has_ipvs:
            item.add_marker(skip)
