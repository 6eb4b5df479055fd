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
    """Kernel tests only run where IPVS exists (inside the UML lab); say so instead of failing elsewhere.

    Inside a lab guest (LAB_MODE is set on its kernel command line) a missing IPVS is a broken lab, not a
    reason to skip: the run stops with an error, so the kernel tier cannot pass without running.
    """
    has_ipvs = os.path.exists("/proc/net/ip_vs")
    kernel_items = [item for item in items if "kernel" in item.keywords]
    if kernel_items and not has_ipvs and os.environ.get("LAB_MODE"):
        raise pytest.UsageError("this lab guest has no IPVS (/proc/net/ip_vs): the kernel tier cannot run")
    skip = pytest.mark.skip(reason="needs a kernel with IPVS: run through lab/lab.sh pytest tests/kernel")
    for item in kernel_items:
        if not has_ipvs:
            item.add_marker(skip)


# -- tiers that must not pass by skipping ------------------------------------------------------------------
GUARDED_TIERS = ("kernel", "e2e")
_outcomes: dict[str, dict[str, list]] = {}


def _tier(nodeid: str) -> str | None:
    parts = nodeid.split("/")
    return parts[1] if len(parts) > 2 and parts[0] == "tests" and parts[1] in GUARDED_TIERS else None


def pytest_runtest_logreport(report):
    tier = _tier(report.nodeid)
    if tier is None:
        return
    seen = _outcomes.setdefault(tier, {"passed": [], "failed": [], "skipped": []})
    if report.skipped and report.when in ("setup", "call"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        seen["skipped"].append((report.nodeid, reason))
    elif report.failed:
        seen["failed"].append(report.nodeid)
    elif report.passed and report.when == "call":
        seen["passed"].append(report.nodeid)


def _empty_tiers() -> list[str]:
    """Guarded tiers where tests were collected, some skipped, and none ran."""
    return [
        tier
        for tier, seen in _outcomes.items()
        if seen["skipped"] and not seen["passed"] and not seen["failed"]
    ]


def pytest_sessionfinish(session, exitstatus):
    """A kernel or e2e tier that ran nothing has not passed: fail when that tier is what was asked for
    (every collected test belongs to it) or in CI, where every tier must run."""
    collected = {_tier(item.nodeid) for item in session.items}
    for tier in _empty_tiers():
        if os.environ.get("CI", "").lower() == "true" or collected == {tier}:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """One line per guarded tier with skips (and why), so a skip is never silent."""
    for tier, seen in sorted(_outcomes.items()):
        if not seen["skipped"]:
            continue
        ran = len(seen["passed"]) + len(seen["failed"])
        terminalreporter.write_line(
            f"{tier} tier: {len(seen['passed'])} passed, {len(seen['failed'])} failed, "
            f"{len(seen['skipped'])} SKIPPED"
            + ("" if ran else " - the tier ran nothing, so it has not passed"),
            red=not ran,
            yellow=bool(ran),
        )
        reasons: dict[str, int] = {}
        for _, reason in seen["skipped"]:
            reasons[reason] = reasons.get(reason, 0) + 1
        for reason, n in sorted(reasons.items()):
            terminalreporter.write_line(f"  {n} skipped: {reason}")


def pytest_addoption(parser):
    parser.addoption(
        "--slow",
        action="store_true",
        help="fuzz every endpoint with 5,000 examples (tests/django/test_fuzz.py)",
    )


def pytest_configure(config):
    if config.getoption("--slow"):
        os.environ["UMW_FUZZ_SLOW"] = "1"
