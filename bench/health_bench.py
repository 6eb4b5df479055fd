"""Benchmark of the health-check engine: HTTP checks per CPU-second and failure detection latency.

Usage: .venv/bin/python bench/health_bench.py [--sizes 100,1000,10000] [--rate 4000] [--duration 5]

For each N, a separate server process listens on N loopback ports (127.0.0.1, ephemeral ports) and answers
every request with a fixed HTTP/1.0 200; keeping the servers in another process means their CPU is not
counted. This process runs a `HealthEngine` (its own thread and loop, as in the agent) with N reals in
services of 100, interval = N / rate (at least 50 ms) so the offered load is about `rate` checks/s, and:

1. throughput: after one warm-up interval, counts the checks done in `duration` seconds and the CPU time
   this process used meanwhile (time.process_time covers all its threads), and prints checks/s and
   checks per CPU-second (the "per core" figure);
2. detection: tells the server process to close `--kill` random listeners (connection refused from then
   on) and measures, per killed real, the time from the kill to the engine's DOWN callback. Goal: at most
   interval + 100 ms.

Only loopback is used. RLIMIT_NOFILE is raised to the hard limit in both processes; N is capped to what
that limit allows (listeners + in-flight connections must fit) and the cap is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import random
import resource
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from director.desired import CheckSpec, RealSpec, ServiceSpec  # noqa: E402
from director.health.engine import HealthEngine  # noqa: E402

RESPONSE = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


class _Http(asyncio.Protocol):
    """Answer once the request head is in, then close: the cheapest correct HTTP/1.0 server."""

    def connection_made(self, transport):
        self.transport = transport
        self.buf = b""

    def data_received(self, data):
        self.buf += data
        if b"\r\n\r\n" in self.buf:
            self.transport.write(RESPONSE)
            self.transport.close()


def serve(n: int, conn) -> None:
    """Server process: N listeners; replies with their ports, then obeys ("kill", [ports]) / ("stop",)."""
    raise_nofile()

    async def main():
        loop = asyncio.get_running_loop()
        servers = {}
        for _ in range(n):
            server = await loop.create_server(_Http, "127.0.0.1", 0, backlog=128, reuse_address=True)
            servers[server.sockets[0].getsockname()[1]] = server
        conn.send(sorted(servers))
        while True:
            msg = await loop.run_in_executor(None, conn.recv)
            if msg[0] == "kill":
                for port in msg[1]:
                    servers.pop(port).close()
                conn.send("killed")
            else:
                for server in servers.values():
                    server.close()
                conn.send("stopped")
                return

    asyncio.run(main())


def bench(n: int, rate: float, duration: float, kills: int) -> dict:
    parent, child = mp.Pipe()
    proc = mp.get_context("fork").Process(target=serve, args=(n, child), daemon=True)
    proc.start()
    try:
        if not parent.poll(120):
            raise RuntimeError("server process did not start")
        ports = parent.recv()
        interval = max(0.05, n / rate)
        check = CheckSpec(service="http", checkinterval=interval, checktimeout=2, negotiatetimeout=2)
        services = [
            ServiceSpec(
                "tcp",
                "192.0.2.1",
                10000 + i,
                check=check,
                reals=tuple(RealSpec("127.0.0.1", p) for p in ports[i : i + 100]),
            )
            for i in range(0, n, 100)
        ]
        down_at: dict[int, float] = {}
        ups = threading.Semaphore(0)

        def on_change(service_key, real_key, up, result):
            if up:
                ups.release()
            else:
                down_at.setdefault(real_key[1], time.monotonic())

        engine = HealthEngine(on_change)
        engine.update(services)
        engine.start()
        try:
            deadline = time.monotonic() + interval + 30
            for _ in range(n):
                if not ups.acquire(timeout=max(0.0, deadline - time.monotonic())):
                    raise RuntimeError("not every real came up")
            time.sleep(interval)  # warm-up: every task is past its jittered start

            def total_checks():
                return sum(s.checks for s in engine.results().values())

            c0, cpu0, t0 = total_checks(), time.process_time(), time.monotonic()
            time.sleep(duration)
            c1, cpu1, t1 = total_checks(), time.process_time(), time.monotonic()
            failures = sum(1 for s in engine.results().values() if not s.ok)

            victims = random.sample(ports, min(kills, n))
            killed_at = time.monotonic()
            parent.send(("kill", victims))
            parent.recv()
            wait_until = time.monotonic() + interval * 2 + 5
            while len(down_at) < len(victims) and time.monotonic() < wait_until:
                time.sleep(0.01)
            latencies = [down_at[p] - killed_at for p in victims if p in down_at]
        finally:
            engine.stop()
        parent.send(("stop",))
        parent.recv()
    finally:
        proc.join(10)
        if proc.is_alive():
            proc.kill()
    checks, cpu, wall = c1 - c0, cpu1 - cpu0, t1 - t0
    return {
        "n": n,
        "interval": interval,
        "checks_per_s": checks / wall,
        "checks_per_cpu_s": checks / cpu if cpu else float("inf"),
        "cpu_util": cpu / wall,
        "failures": failures,
        "detected": len(latencies),
        "killed": len(victims),
        "detect_median": statistics.median(latencies) if latencies else float("nan"),
        "detect_max": max(latencies) if latencies else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--rate", type=float, default=4000, help="offered checks per second")
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--kill", type=int, default=20)
    args = parser.parse_args()
    hard = raise_nofile()
    cap = max(100, hard - 1000)  # listeners live in the server process; leave room for its other fds
    print(f"RLIMIT_NOFILE {hard}; CPUs {os.cpu_count()}; Python {sys.version.split()[0]}")
    print(f"{'N':>6} {'interval':>9} {'checks/s':>9} {'checks/CPU-s':>13} {'CPU':>5} {'fail':>5} "
          f"{'detected':>9} {'detect med':>11} {'detect max':>11} {'goal':>7}")  # fmt: skip
    for n in (int(x) for x in args.sizes.split(",")):
        if n > cap:
            print(
                f"{n:>6} skipped: needs {n} listening sockets, RLIMIT_NOFILE hard limit {hard} allows ~{cap}"
            )
            continue
        r = bench(n, args.rate, args.duration, args.kill)
        goal = r["interval"] + 0.1
        print(
            f"{r['n']:>6} {r['interval']:>8.2f}s {r['checks_per_s']:>9.0f} {r['checks_per_cpu_s']:>13.0f} "
            f"{r['cpu_util']:>5.0%} {r['failures']:>5} {r['detected']:>4}/{r['killed']:<4} "
            f"{r['detect_median'] * 1000:>9.0f}ms {r['detect_max'] * 1000:>9.0f}ms {'ok' if r['detect_max'] <= goal else 'MISS':>7}",
            flush=True,
        )


if __name__ == "__main__":
    main()
