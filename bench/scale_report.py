"""Reporting at scale (issue 17): what one report round costs the agent and Redis, how fresh the numbers a
service page reads are, and our netlink dump + decode against `ipvsadm -Ln`, all in the same guest run.

Run inside the lab (needs IPVS and root):
    lab/lab.sh exec '.venv/bin/python bench/scale_report.py'              # 1,000 x 10 and 2,284 x 37,298
    lab/lab.sh exec '.venv/bin/python bench/scale_report.py --sizes 2284x37298 --rounds 10'

For each size the table is built through the product path (Agent.apply_desired: schema, desired state, Host
reconcile by netlink), then:
1. dump + decode of the whole table (Wire.dump) against `ipvsadm -Ln` and `ipvsadm -Ln --stats`, interleaved
   in the same run (best and median of --dumps each), so the ratio holds whatever the load;
2. the agent's report rounds into a private Redis in this guest, through the director's own ACL user: the first
   (full) round, steady rounds with nothing changed (each reads its rolling 1/30 of the table again and checks
   drift on 1/15 of it), rounds with --flips health changes each, and a full Redis rewrite (every
   keys.RESYNC); CPU of the reporting thread per round, bytes into Redis per round (INFO
   total_net_input_bytes) and Redis CPU per round (INFO cpu);
3. the age of the numbers a service page reads: a reader polls one service's record (as clusters/agents.py
   service_snapshot does: GET meta + HMGET, one MULTI) every 0.25 s while the reporter runs its 2 s loop.
Every figure is printed next to its goal. The machine is shared and loaded: read ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import redis  # noqa: E402
from figures import record  # noqa: E402 - bench/ is the script's directory
from scale_health import rss_mb  # noqa: E402

from clusters import reports  # noqa: E402  (pure: no Django)
from director import acl, keys, report  # noqa: E402
from director.agent import Agent  # noqa: E402
from director.desired import CheckSpec, DesiredState, RealSpec, ServiceSpec  # noqa: E402
from tests.conftest import PrivateRedis  # noqa: E402

PERIOD = report.REPORT_INTERVAL


def desired(services: int, reals: int, revision: int = 1) -> dict:
    """`services` TCP services on 10.200.x.y:80, `reals` real servers spread over them as evenly as possible."""
    per, extra = divmod(reals, services)
    out = []
    for i in range(services):
        n = per + (1 if i < extra else 0)
        out.append(
            ServiceSpec(
                protocol="tcp",
                address=f"10.{200 + i // 65536}.{(i // 256) % 256}.{i % 256}",
                port=80,
                scheduler="wlc",
                check=CheckSpec(checktype="on"),
                reals=tuple(
                    RealSpec(f"192.168.{1 + j // 250}.{10 + j % 250}", 80, "masq", 1) for j in range(n)
                ),
            )
        )
    return DesiredState(director="bench", revision=revision, services=tuple(out)).to_dict()


def info(admin) -> tuple[float, int]:
    cpu, stats = admin.info("cpu"), admin.info("stats")
    return cpu["used_cpu_sys"] + cpu["used_cpu_user"], stats["total_net_input_bytes"]


def timed_round(agent: Agent, admin, **kw) -> dict:
    """One report round: CPU of this thread, wall time, bytes into Redis and Redis CPU."""
    cpu0, in0 = info(admin)
    t0, w0 = time.thread_time(), time.perf_counter()
    agent.reporter.report_once(**kw)
    t1, w1 = time.thread_time(), time.perf_counter()
    cpu1, in1 = info(admin)
    return {
        "cpu": t1 - t0,
        "wall": w1 - w0,
        "bytes": in1 - in0,
        "redis": cpu1 - cpu0,
        "read": agent.reporter.scanner.last_read,
        **agent.reporter.last_round,
    }


def best_median(fn, n: int) -> tuple[float, float]:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times), statistics.median(times)


def dumps(agent: Agent, n: int, dests: int) -> dict:
    """Our dump + decode against ipvsadm, interleaved: one of each per turn, n turns."""
    ours, ln, lns = [], [], []
    for _ in range(n):
        ours.append(best_median(agent.host.wire.dump, 1)[0])
        ln.append(
            best_median(lambda: subprocess.run(["ipvsadm", "-Ln"], capture_output=True, check=True), 1)[0]
        )
        lns.append(
            best_median(
                lambda: subprocess.run(["ipvsadm", "-Ln", "--stats"], capture_output=True, check=True), 1
            )[0]
        )
    got = sum(len(s.dests) for s in agent.host.wire.dump())
    assert got == dests, f"the kernel holds {got} dests, not {dests}"
    for name, xs in (("ipvsadm -Ln", ln), ("ipvsadm -Ln --stats", lns)):
        print(
            f"  dump+decode {min(ours):.3f} s best / {statistics.median(ours):.3f} s median vs {name} "
            f"{min(xs):.3f} / {statistics.median(xs):.3f} s: ratio {min(ours) / min(xs):.2f}x best, "
            f"{statistics.median(ours) / statistics.median(xs):.2f}x median (goal <= 1.0x ipvsadm -Ln)"
        )
    return {
        "ours_best": min(ours),
        "ours_median": statistics.median(ours),
        "ipvsadm_ln_best": min(ln),
        "ipvsadm_ln_median": statistics.median(ln),
        "ipvsadm_stats_best": min(lns),
    }


def line(what: str, rounds: list[dict], goal: str = "") -> None:
    cpu = statistics.median(r["cpu"] for r in rounds)
    print(
        f"  {what}: agent CPU {cpu * 1000:.1f} ms/round = {cpu / PERIOD * 100:.1f}% of one core, "
        f"wall {statistics.median(r['wall'] for r in rounds) * 1000:.1f} ms; into Redis "
        f"{statistics.median(r['bytes'] for r in rounds) / 1024:.1f} KiB/round "
        f"({statistics.median(r['records'] for r in rounds):.0f} records, "
        f"{statistics.median(r['points'] for r in rounds):.0f} history points; "
        f"{statistics.median(r['read'] for r in rounds):.0f} services' dests read); Redis CPU "
        f"{statistics.median(r['redis'] for r in rounds) * 1000:.1f} ms/round = "
        f"{statistics.median(r['redis'] for r in rounds) / PERIOD * 100:.1f}% {goal}"
    )


def freshness(agent: Agent, url: str, seconds: float) -> dict:
    """The reporter's own loop (Reporter.loop) in a thread; a reader polls one service as the service page
    does (agents.service_snapshot: GET meta + HMGET, one MULTI) and computes the age of what it read."""
    stop = threading.Event()
    cpu = []
    once = agent.reporter.report_once

    def counted(**kw):  # the loop's rounds, with the CPU each cost this thread
        t = time.thread_time()
        try:
            return once(**kw)
        finally:
            cpu.append(time.thread_time() - t)

    agent.reporter.report_once = counted
    thread = threading.Thread(target=agent.reporter.loop, args=(stop,), daemon=True)
    thread.start()
    # the loop's first round first: before it, what Redis holds is as old as the bench's own pause since the
    # rounds above (building the old snapshot for comparison takes seconds at 37k), not the reporter's cadence
    for _ in range(600):
        if cpu:
            break
        time.sleep(0.05)
    reader = redis.Redis.from_url(url, decode_responses=True)
    sid = keys.service_key_for(agent.desired.services[len(agent.desired.services) // 2])
    ages, end = [], time.time() + seconds
    while time.time() < end:
        pipe = reader.pipeline(transaction=True)
        pipe.get(keys.stats_key(agent.name))
        pipe.hmget(keys.service_stats_key(agent.name), [sid])
        meta, fields = pipe.execute()
        snap = reports.stats(meta, {sid: fields[0]})
        assert snap and sid in snap["services"], snap
        ages.append(time.time() - snap["time"])
        time.sleep(0.25)
    stop.set()
    thread.join(30)
    agent.reporter.report_once = once
    ages.sort()
    print(
        f"  service page numbers: age median {statistics.median(ages):.2f} s, max {ages[-1]:.2f} s over "
        f"{len(ages)} reads during {len(cpu)} rounds of the reporter's loop (goal <= 4 s); loop CPU "
        f"{statistics.median(cpu) * 1000:.1f} ms/round median = {statistics.median(cpu) / PERIOD * 100:.1f}% "
        "of one core"
    )
    return {
        "age_median": statistics.median(ages),
        "age_max": ages[-1],
        "loop_cpu_pct": statistics.median(cpu) / PERIOD * 100,
    }


def run(size: str, server: PrivateRedis, admin, rounds: int, flips: int, dump_turns: int) -> None:
    services, reals = (int(x) for x in size.split("x"))
    print(f"== {services} services x {reals} real servers ==")
    name = f"bench{services}"
    password = acl.new_password()
    acl.set_director_user(admin, name, acl.password_hash(password))
    url = server.url(acl.username(name), password)
    state = os.path.join(os.environ.get("TMPDIR", "/run"), f"umw-bench-{name}")
    agent = Agent(name, state, url)
    t = time.perf_counter()
    result = agent.apply_desired(desired(services, reals) | {"director": name})
    assert not result["errors"], result["errors"][:3]
    print(
        f"  table built through Agent.apply_desired in {time.perf_counter() - t:.2f} s ({result['ops']} ops)"
    )
    # this process's resident memory: the agent object holding the table (no Celery around it here)
    fig = {"build_s": time.perf_counter() - t, "rss_mb": rss_mb(os.getpid())}
    fig["dump"] = dumps(agent, dump_turns, reals)

    first = timed_round(agent, admin)
    line("first round (full read + full rewrite)", [first])
    warm = [timed_round(agent, admin) for _ in range(report.DRIFT_SLICES)]
    line(
        f"first {report.DRIFT_SLICES} rounds after start (each builds its drift share's wanted table once)",
        warm,
    )
    steady = [timed_round(agent, admin) for _ in range(rounds)]
    line("steady round, nothing changed", steady, "(goal <= 5% each)")
    dids = [
        keys.dest_id(keys.service_key_for(s), r.address, r.port)
        for s in agent.desired.services
        for r in s.reals
    ]
    changed = []
    for k in range(rounds):
        for did in dids[k * flips : (k + 1) * flips]:
            agent.health[did] = k % 2 == 1  # a flip as the health engine reports it
        changed.append(timed_round(agent, admin))
    line(f"round with {flips} health flips", changed, "(goal <= 5% each)")
    agent.reporter._resync_at = None
    resync = timed_round(agent, admin)
    line(f"full Redis rewrite (every {keys.RESYNC:.0f} s)", [resync])
    per_resync = keys.RESYNC / PERIOD
    for what, base in (("nothing changed", steady), (f"{flips} flips/round", changed)):
        avg = statistics.median(r["cpu"] for r in base) + resync["cpu"] / per_resync
        rcpu = statistics.median(r["redis"] for r in base) + resync["redis"] / per_resync
        fig[f"amortised_{'flips' if base is changed else 'steady'}"] = {
            "agent_pct": avg / PERIOD * 100,
            "redis_pct": rcpu / PERIOD * 100,
            "kib_round": statistics.median(r["bytes"] for r in base) / 1024,
        }
        print(
            f"  amortised ({what}, with the periodic rewrite): agent {avg / PERIOD * 100:.1f}% of one core, "
            f"Redis {rcpu / PERIOD * 100:.1f}% (goal <= 5% each)"
        )
    old = agent.snapshot()
    print(
        f"  for scale: the old one-key snapshot of this table was {len(json.dumps(old)) / 1e6:.1f} MB a round"
    )
    fig["freshness"] = freshness(agent, server.url("central"), 12.0)
    fig["rss_after_mb"] = rss_mb(os.getpid())
    record(f"report.{services}x{reals}", fig)
    agent.apply_desired(DesiredState(director=name, revision=10**9).to_dict())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000x10000,2284x37298", help="SERVICESxREALS, comma separated")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--flips", type=int, default=10)
    ap.add_argument("--dumps", type=int, default=5, help="interleaved turns of our dump and ipvsadm's")
    args = ap.parse_args()
    print("(figures under load: 2 shared cores; compare the ratios, measured in the same run)")
    server = PrivateRedis()
    try:
        admin = redis.Redis.from_url(server.url("admin"), decode_responses=True)
        for size in args.sizes.split(","):
            run(size, server, admin, args.rounds, args.flips, args.dumps)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
