"""Shared test fixtures: a real, private Redis for the whole session, with the product's ACLs.

We start our own `redis-server` on a free loopback port (nothing persisted) so tests can flush it freely.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from urllib.parse import quote

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRedis:
    """A throwaway redis-server on a loopback port with the product's ACLs (director/acl.py): the default
    user is off, `central` has the central side's rules and `admin` is the tests' own (FLUSHDB, ACL LOG).
    Everything talks to it with a password, so every test runs through the same ACLs as production.
    `tls`: {"cert", "key", "ca"} files to serve TLS (rediss://) instead of plain TCP, clients verified."""

    def __init__(self, tls: dict | None = None):
        from director import acl

        self.binary = shutil.which("redis-server")
        self.port = _free_port()
        self.tmp = tempfile.mkdtemp(prefix="umw-redis-")
        self.central_password = secrets.token_urlsafe(16)
        self.admin_password = secrets.token_urlsafe(16)
        self.tls = tls
        args = [self.binary, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", self.tmp]
        if tls:
            args += ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", tls["cert"]]
            args += [
                "--tls-key-file",
                tls["key"],
                "--tls-ca-cert-file",
                tls["ca"],
                "--tls-auth-clients",
                "yes",
            ]
        else:
            args += ["--port", str(self.port)]
        args += [
            "--user",
            "default",
            "off",
            "--user",
            "admin",
            "on",
            f">{self.admin_password}",
            "~*",
            "&*",
            "+@all",
        ]
        args += ["--user", "central", f">{self.central_password}", *acl.CENTRAL_RULES]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("private redis-server did not start")

    def url(self, user: str = "central", password: str | None = None) -> str:
        password = password or {"central": self.central_password, "admin": self.admin_password}[user]
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server():
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is missing (apt-get install redis-server)")
    server = PrivateRedis()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server):
    """URL of a real Redis for this test session, as the central side's ACL user."""
    return redis_server.url("central")


@pytest.fixture(scope="session")
def signing_dir(tmp_path_factory):
    """The central signing key ring of this test session (made on first use, like in production)."""
    return str(tmp_path_factory.mktemp("signing") / "keys")


@pytest.fixture
def redis_admin(redis_server):
    """An unrestricted connection to the test Redis (the tests' own user, never the product's)."""
    import redis

    r = redis.Redis.from_url(redis_server.url("admin"), decode_responses=True)
    yield r
    r.close()


@pytest.fixture
def redis_client(redis_url, redis_admin):
    """The central side's connection, on an empty database."""
    import redis

    redis_admin.flushdb()
    r = redis.Redis.from_url(redis_url, decode_responses=True)
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
