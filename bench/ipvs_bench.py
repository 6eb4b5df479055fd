"""IPVS programming speed: reconcile (netlink diff) against `ipvsadm -R`, and the cost of one weight change.

Run inside the lab (needs IPVS and root):  lab/lab.sh exec "python bench/ipvs_bench.py"

1. 1,000 services x 10 dests from an empty table: plan.reconcile vs `ipvsadm -R` of the same table, best of
   ROUNDS each, in the same guest; prints both and the ratio (goal <= 1.0x).
2. One weight change in that 10k-dest table: ops and time for a full reconcile (dump, diff, 1 op, re-read),
   and for a reconcile that is handed the last known kernel state (no dump; only the touched service is
   read back - the kernel work is O(changed), what is left is the pure-Python diff over the table).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from director.ipvs.model import Dest, Service  # noqa: E402
from director.ipvs.plan import diff, reconcile  # noqa: E402
from director.ipvs.wire import Wire  # noqa: E402


def build_table(services: int, dests: int) -> list[Service]:
    table = []
    for i in range(services):
        vip = f"10.{200 + i // 65536}.{(i // 256) % 256}.{i % 256}"
        table.append(
            Service(
                "tcp",
                vip,
                80,
                scheduler="wlc",
                dests=tuple(
                    Dest(f"192.168.{1 + j // 250}.{10 + j % 250}", 80, weight=1 + j) for j in range(dests)
                ),
            )
        )
    return table


def ipvsadm_rules(table: list[Service]) -> str:
    lines = []
    for svc in table:
        lines.append(f"-A -t {svc.address}:{svc.port} -s {svc.scheduler}")
        for d in svc.dests:
            lines.append(f"-a -t {svc.address}:{svc.port} -r {d.address}:{d.port} -m -w {d.weight}")
    return "\n".join(lines) + "\n"


def clear(wire: Wire) -> None:
    report = reconcile(wire, [])
    assert not report.errors, report.errors[:3]
    assert wire.services() == []


def timed(fn):
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--dests", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    table = build_table(args.services, args.dests)
    n_dests = sum(len(s.dests) for s in table)
    rules = ipvsadm_rules(table)
    wire = Wire()
    clear(wire)
    print(f"table: {len(table)} services x {args.dests} dests = {len(table) + n_dests} kernel entries")

    ours, apply_only, theirs, dump_times = [], [], [], []
    for _ in range(max(1, args.rounds)):
        # ours: dump (empty) + diff + batched apply + re-read of the whole table
        seconds, report = timed(lambda: reconcile(wire, table))
        assert report.errors == [] and report.ops_done == len(table) + n_dests, report.errors[:3]
        ours.append(seconds)
        d, dumped = timed(wire.dump)
        dump_times.append(d)
        assert len(dumped) == len(table)
        clear(wire)
        # ours without the dumps: diff + apply only
        ops = diff(table, [])
        seconds, results = timed(lambda ops=ops: wire.apply(ops))
        assert not any(results)
        apply_only.append(seconds)
        clear(wire)
        # ipvsadm -R
        t0 = time.perf_counter()
        proc = subprocess.run(["ipvsadm", "-R"], input=rules, text=True, capture_output=True, timeout=600)
        theirs.append(time.perf_counter() - t0)
        assert proc.returncode == 0, proc.stderr
        assert len(wire.services()) == len(table)
        clear(wire)

    best_ours, best_apply, best_theirs = min(ours), min(apply_only), min(theirs)
    print(
        f"from empty, reconcile (dump+diff+apply+re-read): best {best_ours * 1000:.0f} ms "
        f"(median {statistics.median(ours) * 1000:.0f} ms)"
    )
    print(f"from empty, diff+apply only:                     best {best_apply * 1000:.0f} ms")
    print(
        f"from empty, ipvsadm -R:                          best {best_theirs * 1000:.0f} ms "
        f"(median {statistics.median(theirs) * 1000:.0f} ms)"
    )
    print(f"ratio reconcile / ipvsadm -R: {best_ours / best_theirs:.2f}x (goal <= 1.0x)")
    print(f"ratio apply only / ipvsadm -R: {best_apply / best_theirs:.2f}x")
    print(f"full dump of the table: best {min(dump_times) * 1000:.0f} ms")

    # one weight change in the full table
    assert reconcile(wire, table).errors == []
    known = wire.dump()
    full, scoped = [], []
    for i in range(max(1, args.rounds)):
        changed = list(table)
        svc = changed[len(changed) // 2]
        dests = list(svc.dests)
        dests[3] = dataclasses.replace(dests[3], weight=1000 + i)
        changed[len(changed) // 2] = dataclasses.replace(svc, dests=tuple(dests))
        seconds, report = timed(lambda changed=changed: reconcile(wire, changed))
        assert report.errors == [] and report.ops_done == 1, (report.ops_done, report.errors[:3])
        full.append((seconds, report.ops_done))
        known = report.actual
        # the change back, with the last known state handed in: no dump, only the touched service re-read
        seconds, report = timed(lambda known=known: reconcile(wire, table, actual=known))
        assert report.errors == [] and report.ops_done == 1
        scoped.append((seconds, report.ops_done))
        known = report.actual
    print(
        f"one weight change, full reconcile: {full[0][1]} op, best {min(s for s, _ in full) * 1000:.0f} ms "
        f"(dump + diff + 1 op + re-read)"
    )
    print(
        f"one weight change, reconcile(actual=last known): {scoped[0][1]} op, "
        f"best {min(s for s, _ in scoped) * 1000:.0f} ms (diff of the table + 1 op + scoped re-read)"
    )
    seconds, ops = timed(lambda: diff(table, known))
    print(
        f"  of which the pure diff over {len(table) + n_dests} entries: {seconds * 1000:.0f} ms, {len(ops)} ops"
    )
    clear(wire)
    wire.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
