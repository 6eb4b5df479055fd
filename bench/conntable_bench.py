"""Benchmark of the agent's connection-table query (director/conntable.py) at 100,000 connections.

Usage: .venv/bin/python bench/conntable_bench.py [--connections 100000] [--repeat 5]

Writes a table in the exact /proc/net/ip_vs_conn format (ip_vs_conn_seq_show) to a temporary file: 20
virtual services x 10 real servers, 5,000 client addresses, a realistic mix of states (60 % ESTABLISHED,
25 % TIME_WAIT, the rest FIN_WAIT / SYN_RECV / CLOSE_WAIT), and times `conntable.query()` on it the way the
page asks: no filter, one service, a client prefix, and state + port, each with the first page of 100 rows
plus the counts and top talkers. Prints the median wall time and CPU time per query and the rows per second.
The kernel's own cost of producing /proc/net/ip_vs_conn is not included (it is the same for any reader).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from director import conntable  # noqa: E402

STATES = [("ESTABLISHED", 60, 900), ("TIME_WAIT", 25, 120), ("FIN_WAIT", 7, 120), ("SYN_RECV", 4, 60),
          ("CLOSE_WAIT", 4, 60)]  # fmt: skip


def table(n: int, seed: int = 1) -> str:
    rnd = random.Random(seed)
    states = [s for s, weight, _ in STATES for _ in range(weight)]
    timeout = {s: t for s, _, t in STATES}
    lines = ["Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData"]
    for _ in range(n):
        service = rnd.randrange(20)
        vip = 0xAC100A00 + 32 + service
        real = 0xC0A80100 + 4 + rnd.randrange(10)
        client = 0x0A000000 + rnd.randrange(5000)
        state = rnd.choice(states)
        lines.append(
            f"TCP {client:08X} {rnd.randrange(1024, 65536):04X} {vip:08X} 0050 {real:08X} 0050 "
            f"{state:<11s} {rnd.randrange(timeout[state]):7d}"
        )
    return "\n".join(lines) + "\n"


def measure(path: str, repeat: int, **filters) -> tuple[float, float, dict]:
    walls, cpus = [], []
    answer = {}
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        answer = conntable.query(path=path, limit=100, **filters)
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus), answer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="umw-conn-bench-") as tmp:
        path = os.path.join(tmp, "ip_vs_conn")
        with open(path, "w") as f:
            f.write(table(args.connections))
        print(
            f"{args.connections:,} connections (read bound {conntable.READ_MAX:,}), median of {args.repeat}"
        )
        cases = [
            ("no filter", {}),
            ("one service", {"service": "tcp|172.16.10.35|80"}),
            ("client prefix /20", {"client": "10.0.0.0/20"}),
            ("state + port", {"state": "ESTABLISHED", "port": 80}),
        ]
        for label, filters in cases:
            wall, cpu, answer = measure(path, args.repeat, **filters)
            print(
                f"  {label:<18s} {wall * 1000:7.0f} ms wall {cpu * 1000:7.0f} ms CPU "
                f"{answer['total'] / wall:>10,.0f} conns/s  matched {answer['matched']:,}, "
                f"{len(answer['talkers']['services'])} services with talkers"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
