"""ldirectord and keepalived as oracles: on every configuration of a corpus (tests/configs/oracle/), the table
the source daemon builds in this kernel against these real servers is the table our import builds.

For each file, inside one UML guest: Debian's ldirectord (or keepalived, checker only: `--check`, its own
config and pid files) runs on it against real servers that answer correctly, refuse, redirect, return errors,
serve the wrong content, hang, or speak UDP (tests/kernel/oracle_servers.py, in the rs1/rs2 namespaces); the
table is read with `ipvsadm -S -n` once it has stayed the same for a while, the daemon is stopped and the
table emptied; then our path runs on the same file - import -> database -> desired state -> the agent (its
health checks and policy) -> netlink - and its stable table is read the same way. The two must be equal.

Normalisations (documented, nothing else): rules are compared as sets with their options in a fixed order;
newer ipvsadm's explicit `--tun-type ipip` (the default tunnel type) is dropped; and a destination with port 0
in an address:port service is read as the virtual port, which is where the kernel sends its connections
(ldirectord adds a real server written without a port as port 0, our import writes the virtual port).

Known ldirectord defect not reproduced (so not in the corpus): with quiescent=yes a gate/ipip real server
written with a port other than the virtual one never gets its weight back, because ipvsadm stored it under
the virtual port and ldirectord looks for it under the written one. ld09 shows the same file with
quiescent=no, where ldirectord's table is right.

Stable means unchanged for STABLE_FOR seconds, sampled every 0.25 s; the wait is bounded by SETTLE_MAX (a
table that never settles fails the test with what it last saw). Every configuration checks every second with
one-second timeouts and at most one retry a second later, so the slowest verdict (a hanging server: timeout,
retry, timeout) is in about 4 s after the start: STABLE_FOR is longer, so the table read is never the
"everything up" table a daemon starts with by accident.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from director.ipvs import plan as ipvs_plan
from director.ipvs.wire import Wire
from tests.configs import CONFIGS, parse_file
from tests.kernel.test_import_to_kernel import canonical

pytestmark = [pytest.mark.kernel, pytest.mark.django_db]

ORACLE = CONFIGS / "oracle"
CORPUS = sorted(p.name for p in ORACLE.iterdir() if p.suffix in (".cf", ".conf"))
STABLE_FOR = 5.0
SETTLE_MAX = 30.0
SCRATCH = Path(os.environ.get("TMPDIR", "/run/tmp"))
CHECKS = Path("/run/tmp/checks")  # the corpus names its external programs here (ld16, ka09)


PORT_ZERO = re.compile(r"^(-a -[tu] \S+:(\d+) -r \S+:)0( |$)")


def normalise(line: str) -> str:
    line = PORT_ZERO.sub(
        lambda m: f"{m.group(1)}{m.group(2)}{m.group(3)}", line.removesuffix(" --tun-type ipip")
    )
    return canonical(line)


def table() -> frozenset[str]:
    out = subprocess.run(["ipvsadm", "-S", "-n"], capture_output=True, text=True, timeout=10).stdout
    return frozenset(normalise(line.strip()) for line in out.splitlines() if line.strip())


def settle(alive=lambda: True) -> tuple[frozenset[str] | None, frozenset[str]]:
    """(the table once it has not changed for STABLE_FOR seconds or None if it never did within SETTLE_MAX,
    the last table seen)."""
    start = time.monotonic()
    last, since = table(), time.monotonic()
    while time.monotonic() - start < SETTLE_MAX:
        time.sleep(0.25)
        assert alive(), "the daemon exited"
        now = table()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= STABLE_FOR and time.monotonic() - start >= STABLE_FOR and last:
            return last, last
    return None, last


def stable_table(alive=lambda: True) -> frozenset[str]:
    """The table once it has not changed for STABLE_FOR seconds (bounded by SETTLE_MAX)."""
    got, last = settle(alive)
    if got is None:
        pytest.fail(f"table did not settle within {SETTLE_MAX} s; last seen: {sorted(last)}")
    return got


def empty_kernel() -> None:
    with contextlib.closing(Wire()) as wire:
        report = ipvs_plan.reconcile(wire, [])
    assert report.errors == []


@pytest.fixture(scope="module")
def servers():
    """oracle_servers.py in rs1 and rs2 (beside lab/rsd.py's :80 and :5500)."""
    script = Path(__file__).with_name("oracle_servers.py")
    # the external check programs, in a directory of root's that only root can write (the agent runs
    # external checks only from such a directory, its external_check_dir): ld16's checkcommand (ldirectord
    # runs it with "VIP VPORT RIP RPORT") passes rs1 only; ka09's MISC_CHECK always passes
    CHECKS.mkdir(mode=0o755, exist_ok=True)
    CHECKS.chmod(0o755)
    for name, text in (("oracle-rs1-only", '[ "$3" = 192.168.1.4 ]'), ("oracle-true", "exit 0")):
        (CHECKS / name).write_text(f"#!/bin/sh\n{text}\n")
        (CHECKS / name).chmod(0o755)
    procs = []
    for name in ("rs1", "rs2"):
        proc = subprocess.Popen(
            ["ip", "netns", "exec", name, sys.executable, str(script), name],
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        procs.append(proc)
        assert proc.stdout.readline().strip() == "ready", f"oracle servers in {name} did not start"
    yield
    for proc in procs:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)


def daemon_command(name: str) -> list[str]:
    path = str(ORACLE / name)
    if name.endswith(".cf"):
        return ["ldirectord", "-d", path, "start"]  # -d: stays in the foreground
    stem = SCRATCH / Path(name).stem
    return [
        "keepalived", "--check", "--dont-fork", "--log-console", "--use-file", path,
        "--no-syslog", "--pid", f"{stem}.pid", "--checkers_pid", f"{stem}.checkers.pid",
        "--vrrp_pid", f"{stem}.vrrp.pid", "--bfd_pid", f"{stem}.bfd.pid",
    ]  # fmt: skip


def daemon_table(name: str) -> frozenset[str]:
    """The reference daemon's stable table. Its checks use one-second timeouts, and on a loaded machine the
    guest is slow enough that a healthy server sometimes misses one (ldirectord with quiescent=no then removes
    and re-adds it, so the table never settles): a daemon whose table did not settle gets one more run from an
    empty kernel before the test fails. Our side gets no second run."""
    last: frozenset[str] = frozenset()
    for _ in range(2):
        got, last = one_daemon_run(name)
        if got is not None:
            return got
    pytest.fail(
        f"{name}: the daemon's table did not settle within {SETTLE_MAX} s twice; last seen: {sorted(last)}"
    )


def one_daemon_run(name: str) -> tuple[frozenset[str] | None, frozenset[str]]:
    empty_kernel()
    log = open(SCRATCH / f"{name}.log", "w")  # the last run's log is the one a failure shows
    proc = subprocess.Popen(
        daemon_command(name), stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=SCRATCH
    )
    try:
        return settle(lambda: proc.poll() is None)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        log.close()
        empty_kernel()


def our_table(name: str, redis_url: str, state_dir: Path) -> frozenset[str]:
    from clusters.desired import desired_state
    from clusters.importers.apply import apply_plan
    from clusters.models import Director
    from director.agent import Agent

    plan = parse_file(f"oracle/{name}")
    assert plan.ok, plan.errors
    director = Director.objects.create(name="oracle", wan_interface="wan", masquerade=False)
    result = apply_plan(plan, director)
    assert not result.errors, result.errors
    # the external checks' programs (ld16, ka09) live in CHECKS: this director allows that directory
    agent = Agent("oracle", str(state_dir), redis_url, external_dir=str(CHECKS))
    agent.start()
    try:
        assert agent.apply_desired(desired_state(director).to_dict())["errors"] == []
        return stable_table()
    finally:
        agent.stop()
        empty_kernel()


@pytest.mark.parametrize("name", CORPUS)
def test_it_builds_the_table_the_source_daemon_builds(name, servers, redis_url, tmp_path):
    theirs = daemon_table(name)
    ours = our_table(name, redis_url, tmp_path / "state")
    assert sorted(ours) == sorted(theirs), (SCRATCH / f"{name}.log").read_text()[-3000:]


def test_it_has_a_corpus_of_at_least_25_configurations_in_both_formats():
    assert len(CORPUS) >= 25
    assert {Path(n).suffix for n in CORPUS} == {".cf", ".conf"}


def test_it_reads_a_port_zero_destination_as_the_virtual_port():
    assert normalise("-a -t 172.16.10.60:8001 -r 192.168.1.4:0 -m -w 1") == normalise(
        "-a -t 172.16.10.60:8001 -r 192.168.1.4:8001 -m -w 1"
    )
    assert normalise("-a -f 9 -r 192.168.1.4:0 -g -w 3").endswith("192.168.1.4:0 -g -w 3")  # fwmark: as is
