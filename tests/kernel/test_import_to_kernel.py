"""An imported ldirectord.cf / keepalived.conf / ipvsadm dump builds, in a real kernel, the table the original
tool would have built: config file -> importer -> database -> desired state -> agent policy -> netlink ->
kernel, read back with ipvsadm -S -n (not our code) and compared with the hand-written expected table.
"""

from __future__ import annotations

import re
import subprocess

import pytest

from director import policy
from director.ipvs import model as ipvs_model
from director.ipvs import plan as ipvs_plan
from director.ipvs.wire import Wire

pytestmark = [pytest.mark.kernel, pytest.mark.django_db]

CASES = [
    ("ldirectord-ultramonkey.cf", "ldirectord-ultramonkey.expected.rules"),
    ("ldirectord-full.cf", "ldirectord-full.expected.rules"),
    ("keepalived-full.conf", "keepalived-full.expected.rules"),
    ("ipvsadm-script.sh", "ipvsadm-script.expected.rules"),
]


def canonical(line: str) -> str:
    """An ipvsadm rule with its options in a fixed order ("-p 120 -b sh-port" == "-b sh-port -p 120")."""
    tokens = line.split()
    head = 5 if tokens[0] == "-a" else 3  # -a -t VIP:PORT -r REAL:PORT | -A -t VIP:PORT
    groups, current = [], []
    for tok in tokens[head:]:
        if tok.startswith("-") and current:
            groups.append(" ".join(current))
            current = []
        current.append(tok)
    if current:
        groups.append(" ".join(current))
    return " ".join(tokens[:head] + sorted(groups))


def kernel_rules() -> set[str]:
    out = subprocess.run(
        ["ipvsadm", "-S", "-n"], capture_output=True, text=True, timeout=10, check=True
    ).stdout
    # newer ipvsadm spells out the default tunnel type of -i dests; the expected files use the classic form
    return {
        canonical(line.strip().removesuffix(" --tun-type ipip")) for line in out.splitlines() if line.strip()
    }


def kernel_thresholds() -> dict[str, tuple[int, int]]:
    """{"192.168.1.4:80": (upper, lower)} from `ipvsadm -Ln --thresholds` (ipvsadm -S never prints them)."""
    out = subprocess.run(
        ["ipvsadm", "-Ln", "--thresholds"], capture_output=True, text=True, timeout=10
    ).stdout
    found = {}
    for line in out.splitlines():
        m = re.match(r"^\s+->\s+(\S+)\s+(\d+)\s+(\d+)\s", line)
        if m and (int(m.group(2)) or int(m.group(3))):
            found[m.group(1)] = (int(m.group(2)), int(m.group(3)))
    return found


def expected_rules(text: str) -> tuple[set[str], dict[str, tuple[int, int]]]:
    rules, thresholds = set(), {}
    for line in filter(None, (raw.strip() for raw in text.splitlines())):
        m = re.search(r" -r (\S+) .*?(?: -x (\d+))?(?: -y (\d+))?$", line)
        if m and (m.group(2) or m.group(3)):
            thresholds[m.group(1)] = (int(m.group(2) or 0), int(m.group(3) or 0))
            line = re.sub(r" -[xy] \d+", "", line)
        rules.add(canonical(line))
    return rules, thresholds


@pytest.fixture
def wire():
    w = Wire()
    yield w
    ipvs_plan.reconcile(w, [])  # leave an empty table (service by service: there is no flush)
    w.close()


@pytest.mark.parametrize(("config", "expected"), CASES)
def test_it_builds_the_table_the_original_tool_would(config, expected, wire):
    from clusters.desired import desired_state
    from clusters.importers.apply import apply_plan
    from clusters.models import Director
    from tests.configs import CONFIGS, parse_file

    plan = parse_file(config)
    assert plan.ok, plan.errors
    director = Director.objects.create(name="kt", wan_interface="wan")
    result = apply_plan(plan, director)
    assert not result.errors, result.errors
    state = desired_state(director)
    # health unknown = every real server in, as ldirectord and keepalived start
    table = [ipvs_model.service_from_spec(s, policy.kernel_reals(s, {})) for s in state.services]
    report = ipvs_plan.reconcile(wire, table)
    assert [str(e) for e in report.errors] == []
    rules, thresholds = expected_rules((CONFIGS / expected).read_text())
    assert kernel_rules() == rules
    assert kernel_thresholds() == thresholds
