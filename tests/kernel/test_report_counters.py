"""The agent's live stats against a real kernel (issue 17): the records it ships to Redis carry the counters
`ipvsadm -Ln --stats --exact` reads, after traffic and in proportion to change (Scanner re-reads only the
services whose counters moved), and a hand-made change shows on the next full read.

Classic lab topology (see test_agent.py); Redis is the private redis-server of tests/conftest.py.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from clusters import reports
from director import keys
from director.agent import Agent
from director.desired import DesiredState
from director.report import DRIFT_SLICES

from .test_agent import VIP, demo_state, http_get

pytestmark = pytest.mark.kernel


def ipvsadm_counters() -> dict[str, dict[str, tuple[int, ...]]]:
    """{"TCP 172.16.10.52:80": {"192.168.1.4:80": (conns, inpkts, outpkts, inbytes, outbytes)}} by ipvsadm."""
    out = subprocess.run(
        ["ipvsadm", "-Ln", "--stats", "--exact"], capture_output=True, text=True, timeout=10, check=True
    ).stdout
    table: dict[str, dict] = {}
    service = None
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] in ("TCP", "UDP", "SCTP", "FWM"):
            service = f"{parts[0]} {parts[1]}"
            table[service] = {}
        elif parts and parts[0] == "->" and service and parts[1][0].isdigit():
            table[service][parts[1]] = tuple(int(x) for x in parts[2:7])
    return table


def connections_on(label: str) -> int:
    """Active + inactive connections on a service's real servers, as `ipvsadm -Ln` shows them."""
    out = subprocess.run(["ipvsadm", "-Ln"], capture_output=True, text=True, timeout=10, check=True).stdout
    total, inside = 0, False
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] in ("TCP", "UDP", "SCTP", "FWM"):
            inside = f"{parts[0]} {parts[1]}" == label
        elif inside and parts and parts[0] == "->" and parts[1][0].isdigit():
            total += int(parts[4]) + int(parts[5])
    return total


def shipped(redis_client, name: str) -> dict:
    """What a page reads: meta + every service record, through the central side's checks."""
    meta = redis_client.get(keys.stats_key(name))
    return reports.stats(meta, redis_client.hgetall(keys.service_stats_key(name)))


def as_counters(snap: dict) -> dict:
    out = {}
    for svc in snap["services"].values():
        rows = {}
        for d in svc["dests"].values():
            if d["in_kernel"]:
                s = d["stats"]
                rows[f"{d['address']}:{d['port']}"] = tuple(
                    int(s[k]) for k in ("conns", "inpkts", "outpkts", "inbytes", "outbytes")
                )
        out[svc["label"]] = rows
    return out


@pytest.fixture
def agent(tmp_path, redis_url):
    a = Agent("kr", str(tmp_path / "state"), redis_url)  # not started: the test runs the rounds itself
    yield a
    a.apply_desired(DesiredState(director="kr", revision=10**9).to_dict())  # empty table for the next test
    a.host.wire.close()


def test_it_ships_the_kernels_counters_and_only_what_moved(agent, redis_client):
    assert agent.apply_desired(demo_state().to_dict())["errors"] == []
    agent.reporter.report_once()  # first round: everything
    assert agent.reporter.last_round["resync"] is True
    for _ in range(6):
        http_get()
    time.sleep(2.5)  # the kernel folds its per-CPU counters into what dumps show every 2 s (its estimator)
    # connections of earlier tests may still sit on :5500's real servers (IPVS keeps a deleted destination with
    # its connections and gives them back when the same one is added again): such a service is busy, and a
    # busy service is read every round by design
    quiet = f"TCP {VIP}:5500"
    held_before = connections_on(quiet)
    agent.reporter.report_once()
    held_after = connections_on(quiet)
    assert as_counters(shipped(redis_client, "kr")) == {
        label: rows for label, rows in ipvsadm_counters().items()
    }
    web = f"TCP {VIP}:80"
    counted = ipvsadm_counters()[web]
    assert sum(c[0] for c in counted.values()) >= 1 and sum(c[1] for c in counted.values()) >= 6, counted
    if held_before == 0 and held_after == 0:
        # the :5500 service saw no traffic: its dests were not read again, its record not re-sent
        assert agent.reporter.scanner.last_read == 1
        assert agent.reporter.last_round["records"] == 1
    else:
        assert agent.reporter.scanner.last_read == 2, (held_before, held_after)

    # by hand, behind the agent's back: no counter moves; the rolling re-read sees it (and drift says so)
    subprocess.run(
        ["ipvsadm", "-e", "-t", f"{VIP}:5500", "-r", "192.168.1.4:5500", "-m", "-w", "7"], check=True
    )
    agent.reporter.report_once()
    record = json.loads(redis_client.hget(keys.service_stats_key("kr"), f"tcp|{VIP}|5500"))
    # a quiet service waits for its rolling re-read; a busy one (held connections) is read every round
    seen_at_once = not (held_before == 0 and held_after == 0)
    assert record["dests"][f"tcp|{VIP}|5500|192.168.1.4|5500"].get("weight") == (7 if seen_at_once else 1)
    agent.reporter.scanner.spread = 1  # this scan's rolling share is the whole table (1/30 of it by default)
    for _ in range(DRIFT_SLICES):  # drift compares a share of the table per round
        agent.reporter.report_once()
    record = json.loads(redis_client.hget(keys.service_stats_key("kr"), f"tcp|{VIP}|5500"))
    assert record["dests"][f"tcp|{VIP}|5500|192.168.1.4|5500"]["weight"] == 7
    assert any("5500" in line for line in agent.reporter.last_drift)
    assert as_counters(shipped(redis_client, "kr")) == ipvsadm_counters()
