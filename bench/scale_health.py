"""Health checks at scale, ours next to keepalived's, in one lab guest run (issue 17).

usage (in the lab; the guest's single vCPU is the "director"):
  LAB_NS=umwX UMW_LAB_DIR=/tmp/umw-lab-X lab/lab.sh exec '.venv/bin/python bench/scale_health.py'
options: --sizes 1000,5000 --kinds http,tcp --interval 2 --measure 10 --overload 20

Real servers: bench/rsd_many.c (compiled here with cc, so the servers cost the shared vCPU little) listening
on N ports of rs1 (192.168.1.4:20000+i). A check is one TCP connection to them, so the checks a daemon did
are counted the same way for both: the rs1 namespace's TCP PassiveOpens counter (/proc/net/snmp).

For each kind (HTTP GET /, status 200 | TCP connect) and size N, with every real checked every --interval s
(services of 100 reals, 3 s timeouts, one attempt per round):
- ours: the agent's checker process (director.health.process.CheckerProcess, started and fed as the agent
  does, from a small driver process that stands for the agent and keeps its mirror of the results);
  keepalived: `keepalived --check` (checker only, own config and pid files, as the daemon oracle suite runs
  it). Both after a warm-up (until the rate settles).
- CPU-ms per 1,000 checks (utime+stime over the window / checks in the window; ours: the checker process
  plus the driver's mirror, keepalived: its checker process), checks/s, RSS (ours: the checker process;
  keepalived: parent + checker).
Then the overload run: N = the largest size, HTTP, with a CPU hog (a busy shell loop) on the guest's only
vCPU for --overload s: checks/s achieved, false downs (every server is healthy, so every DOWN is false:
ours counts DOWN transitions, keepalived's "Removing service" log lines) and, for ours, what `load()`
reported (lag, behind, stale timeouts re-verified).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from figures import record  # noqa: E402 - bench/ is the script's directory

RS_NS, RS_ADDR, BASE_PORT, VIP, PER_SERVICE = "rs1", "192.168.1.4", 20000, "10.20.0.1", 100
SCRATCH = Path(os.environ.get("TMPDIR", "/run/tmp"))
TIMEOUT = 3
SERVERS_PID: list[int] = []
HOST_MODE = False  # --host: servers and engine in a private network namespace of the host (its CPUs)
HZ = os.sysconf("SC_CLK_TCK")


# ---- the engine side (child process) ------------------------------------------------------------------


def engine_child(kind: str, n: int, interval: float) -> None:
    """Run our engine on n reals until SIGTERM, then print what it saw as JSON."""
    from director.desired import CheckSpec, RealSpec, ServiceSpec
    from director.health.process import CheckerProcess

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    check = CheckSpec(
        checktype="negotiate" if kind == "http" else "connect",
        service="http",
        request="/",
        checkinterval=interval,
        checktimeout=TIMEOUT,
        negotiatetimeout=TIMEOUT,
        redirects=0,
    )
    services = [
        ServiceSpec(
            "tcp",
            VIP,
            80 + i // PER_SERVICE,
            check=check,
            reals=tuple(RealSpec(RS_ADDR, BASE_PORT + j) for j in range(i, min(n, i + PER_SERVICE))),
        )
        for i in range(0, n, PER_SERVICE)
    ]
    downs: dict = {}
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))

    def on_change(service, real, up, result):
        if not up:
            downs[real] = result.reason

    engine = CheckerProcess(on_change)
    engine.start()
    engine.update(services, timeout=120)
    print(json.dumps({"checker": engine.pid}), flush=True)
    worst = {"lag": 0.0, "behind": False, "loop_late": 0.0}
    while not stop:
        time.sleep(0.5)
        load = engine.load()
        worst["lag"] = max(worst["lag"], load.lag)
        worst["loop_late"] = max(worst["loop_late"], load.loop_late)
        worst["behind"] = worst["behind"] or load.behind
    final = engine.load().as_dict()
    engine.stop()
    reasons: dict[str, int] = {}
    for reason in downs.values():
        reasons[reason] = reasons.get(reason, 0) + 1
    report = {
        "downs": len(downs),
        "reasons": reasons,
        "worst": worst,
        "load": final,
        "restarts": engine.restarts,
    }
    print(json.dumps(report), flush=True)


# ---- the parent: servers, daemons, measurements --------------------------------------------------------


def netns(*cmd: str) -> list[str]:
    return ["ip", "netns", "exec", RS_NS, *cmd]


def host_netns() -> str:
    """--host: a network namespace of our own on the host whose loopback holds the real servers' address, so
    the checks never leave it; the engine runs inside it too. Returns its name (removed by the caller)."""
    name = f"umwhealth{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=30)
    for cmd in (["ip", "link", "set", "lo", "up"], ["ip", "addr", "add", f"{RS_ADDR}/32", "dev", "lo"]):
        subprocess.run(["ip", "netns", "exec", name, *cmd], check=True, timeout=30)
    return name


def passive_opens() -> int:
    """Connections the real servers' namespace accepted so far (its own /proc/net/snmp, read through the
    server process: /proc/PID/net is the network namespace of PID)."""
    out = Path(f"/proc/{SERVERS_PID[0]}/net/snmp").read_text()
    tcp = [line.split() for line in out.splitlines() if line.startswith("Tcp:")]
    return int(tcp[1][tcp[0].index("PassiveOpens")])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ  # utime, stime


def idle_seconds() -> float:
    """The guest's idle CPU time so far: whether it had CPU to spare during a window."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return int(fields[4]) / HZ


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def private_mb(pid: int) -> float:
    """Memory only this process holds (no shared library or shared page counted), from smaps_rollup."""
    total = 0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith(("Private_Clean:", "Private_Dirty:")):
            total += int(line.split()[1])
    return total / 1024


def start_servers(n: int) -> subprocess.Popen:
    binary = SCRATCH / "rsd_many"
    if not binary.exists():
        cc = shutil.which("cc") or shutil.which("gcc")
        if cc is None:
            raise SystemExit("scale_health needs a C compiler for bench/rsd_many.c")
        subprocess.run(
            [cc, "-O2", "-o", str(binary), str(REPO / "bench/rsd_many.c")], check=True, timeout=300
        )
    proc = subprocess.Popen(
        netns(str(binary), RS_ADDR, str(BASE_PORT), str(n)),
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    if proc.stdout.readline().strip() != "ready":
        raise SystemExit("real servers did not start")
    return proc


def keepalived_conf(kind: str, n: int, interval: float) -> str:
    if kind == "http":
        check = (
            f"HTTP_GET {{\n url {{\n path /\n status_code 200\n }}\n connect_timeout {TIMEOUT}\n retry 1\n }}"
        )
    else:
        check = f"TCP_CHECK {{\n connect_timeout {TIMEOUT}\n retry 1\n }}"
    out = []
    for i in range(0, n, PER_SERVICE):
        reals = "".join(
            f" real_server {RS_ADDR} {BASE_PORT + j} {{\n weight 1\n {check}\n }}\n"
            for j in range(i, min(n, i + PER_SERVICE))
        )
        out.append(
            f"virtual_server {VIP} {80 + i // PER_SERVICE} {{\n delay_loop {interval:g}\n lb_algo rr\n"
            f" lb_kind NAT\n protocol TCP\n{reals}}}\n"
        )
    return "".join(out)


class Ours:
    name = "ours"

    def __init__(self, kind, n, interval):
        child = [sys.executable, __file__, "--child", kind, str(n), str(interval)]
        self.proc = subprocess.Popen(
            netns(*child) if HOST_MODE else child,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
            cwd=REPO,
        )
        self.report: dict = {}
        first = self.proc.stdout.readline()  # the driver says once the checker runs the whole set
        self.checker = json.loads(first)["checker"] if first.strip() else None
        if not self.checker:
            raise RuntimeError("the checker process did not start")

    def pids(self) -> list[int]:
        return [self.checker]

    def checker_pid(self) -> int:
        return self.checker

    def cpu_pids(self) -> list[int]:
        return [self.checker, self.proc.pid]

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=60)
        self.report = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}

    def downs(self) -> int:
        return int(self.report.get("downs", -1))


def start_keepalived(stem: Path, conf: str) -> subprocess.Popen:
    """`keepalived --check` (checker only, as the daemon oracle suite runs it) on `conf`, in its own process
    group, with its config, pid and log files beside `stem` (stem.conf, stem.checkers.pid, stem.log...)."""
    Path(f"{stem}.conf").write_text(conf)
    Path(f"{stem}.checkers.pid").unlink(missing_ok=True)
    with open(f"{stem}.log", "w") as log:
        return subprocess.Popen(
            [
                "keepalived", "--check", "--dont-fork", "--log-console", "--no-syslog",
                "--use-file", f"{stem}.conf", "--pid", f"{stem}.pid", "--checkers_pid", f"{stem}.checkers.pid",
                "--vrrp_pid", f"{stem}.vrrp.pid", "--bfd_pid", f"{stem}.bfd.pid",
            ],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=stem.parent,
        )  # fmt: skip


def stop_group(proc: subprocess.Popen, timeout: float = 60) -> None:
    """SIGTERM to the process group (keepalived removes its table on the way out: at 37k that takes a while),
    SIGKILL if it is not gone within `timeout` s."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)


class Keepalived:
    name = "keepalived"

    def __init__(self, kind, n, interval):
        stem = SCRATCH / f"ka-scale-{kind}-{n}"
        self.log = Path(f"{stem}.log")
        self.checkers_pid = Path(f"{stem}.checkers.pid")
        self.proc = start_keepalived(stem, keepalived_conf(kind, n, interval))
        deadline = time.monotonic() + 60
        while not self.checkers_pid.exists() and time.monotonic() < deadline:
            time.sleep(0.2)

    def checker_pid(self) -> int:
        return int(self.checkers_pid.read_text().split()[0])

    def pids(self) -> list[int]:
        return [self.proc.pid, self.checker_pid()]

    def cpu_pids(self) -> list[int]:
        return [self.checker_pid()]

    def stop(self) -> None:
        stop_group(self.proc)
        subprocess.run(["ipvsadm", "-C"], timeout=60)

    def downs(self) -> int:
        text = self.log.read_text(errors="replace")
        return len(set(re.findall(r"Removing service \[([^\]]+)\]:tcp:(\d+)", text)))


def measure(daemon_cls, kind: str, n: int, interval: float, seconds: float, hog: bool = False) -> dict:
    offered = n / interval
    hog_proc = subprocess.Popen(["sh", "-c", "while :; do :; done"], start_new_session=True) if hog else None
    daemon = daemon_cls(kind, n, interval)
    try:
        # warm-up: at least one interval after the start, then until the rate settles (bounded)
        start = time.monotonic()
        time.sleep(interval + 1)
        last = passive_opens()
        t_last = time.monotonic()
        while time.monotonic() - start < 20:
            time.sleep(2)
            now_opens, now = passive_opens(), time.monotonic()
            rate = (now_opens - last) / (now - t_last)
            last, t_last = now_opens, now
            if rate >= 0.9 * offered or (hog and time.monotonic() - start > 3 * interval):
                break
        pids = daemon.cpu_pids()
        c0, o0, t0, i0 = sum(map(cpu_seconds, pids)), passive_opens(), time.monotonic(), idle_seconds()
        time.sleep(seconds)
        c1, o1, t1, i1 = sum(map(cpu_seconds, pids)), passive_opens(), time.monotonic(), idle_seconds()
        rss = sum(rss_mb(p) for p in daemon.pids())
        private = sum(private_mb(p) for p in daemon.pids())
    finally:
        daemon.stop()
        if hog_proc is not None:
            os.killpg(hog_proc.pid, signal.SIGKILL)
            hog_proc.wait()
    checks = o1 - o0
    return {
        "checks_per_s": checks / (t1 - t0),
        "cpu_ms_per_1000": (c1 - c0) * 1000 / checks * 1000 if checks else float("nan"),
        "cpu_util": (c1 - c0) / (t1 - t0),
        "idle": (i1 - i0) / (t1 - t0),
        "rss_mb": rss,
        "private_mb": private,
        "downs": daemon.downs(),
        "report": getattr(daemon, "report", {}),
        "offered": offered,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--child", nargs=3, metavar=("KIND", "N", "INTERVAL"))
    ap.add_argument("--sizes", default="1000,5000")
    ap.add_argument("--kinds", default="http,tcp")
    ap.add_argument("--interval", type=float, default=2.0)
    ap.add_argument("--measure", type=float, default=10.0)
    ap.add_argument("--overload", type=float, default=20.0)
    ap.add_argument("--repeat", type=int, default=2, help="runs of each daemon per row (alternating)")
    ap.add_argument(
        "--host",
        action="store_true",
        help="run on the host in a private network namespace (ours only: keepalived needs IPVS); "
        "shows the rate the engine keeps where the CPU is there",
    )
    args = ap.parse_args()
    if args.child:
        engine_child(args.child[0], int(args.child[1]), float(args.child[2]))
        return
    if args.host:
        global HOST_MODE, RS_NS, SCRATCH
        HOST_MODE, RS_NS = True, host_netns()
        SCRATCH = Path(tempfile.mkdtemp(prefix="umw-scale-health-"))
        try:
            return run(args, (Ours,), "host")
        finally:
            subprocess.run(["ip", "netns", "del", RS_NS], timeout=30)
            shutil.rmtree(SCRATCH, ignore_errors=True)
    subprocess.run(["ipvsadm", "-C"], timeout=60)
    return run(args, (Ours, Keepalived), "guest")


def run(args, daemons: tuple, where: str) -> None:
    """Every kind x size with each daemon (--repeat times, alternating), medians, then the overload run."""
    SCRATCH.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    servers = start_servers(max(sizes))
    SERVERS_PID.append(servers.pid)
    t = time.perf_counter()
    for _ in range(10_000):
        time.monotonic()
    clock_us = (time.perf_counter() - t) * 100
    print(f"scale_health: clock read {clock_us:.1f} us; CPUs {os.cpu_count()}, interval {args.interval:g} s, timeouts {TIMEOUT} s, "
          f"window {args.measure:g} s; keepalived checker only vs our engine process", flush=True)  # fmt: skip
    head = f"{'kind':<5} {'reals':>6} {'who':<11} {'checks/s':>9} {'offered':>8} {'CPU-ms/1000':>12} {'CPU':>5} {'RSS MB':>7} {'priv MB':>7} {'downs':>6} {'idle':>5}  ours: behind, worst lag"
    print(head, flush=True)
    rows = []
    try:
        for kind in [k for k in args.kinds.split(",") if k]:  # --kinds '': the overload run only
            for n in sizes:
                for cls in daemons * args.repeat:
                    r = measure(cls, kind, n, args.interval, args.measure)
                    rows.append((kind, n, cls.name, r))
                    record(f"health.{where}.rows", [[k, m, w, x] for k, m, w, x in rows])
                    worst = r["report"].get("worst") if r["report"] else None
                    behind = f"  {worst['behind']}, {worst['lag']:.1f} s" if worst else ""
                    if worst and r["downs"]:
                        behind += f", down reasons {r['report']['reasons']}"
                    print(
                        f"{kind:<5} {n:>6} {cls.name:<11} {r['checks_per_s']:>9.0f} {r['offered']:>8.0f} "
                        f"{r['cpu_ms_per_1000']:>12.0f} {r['cpu_util']:>5.0%} {r['rss_mb']:>7.1f} "
                        f"{r['private_mb']:>7.1f} {r['downs']:>6} {r['idle']:>5.0%}{behind}",
                        flush=True,
                    )
        print("\nmedians (CPU-ms per 1,000 checks, checks/s, false downs summed over the runs):", flush=True)
        for kind in [k for k in args.kinds.split(",") if k]:
            for n in sizes:
                line = f"{kind:<5} {n:>6}"
                for who in [cls.name for cls in daemons]:
                    runs = [r for k, m, w, r in rows if (k, m, w) == (kind, n, who)]
                    cpu = statistics.median(r["cpu_ms_per_1000"] for r in runs)
                    rate = statistics.median(r["checks_per_s"] for r in runs)
                    downs = sum(max(0, r["downs"]) for r in runs)
                    record(
                        f"health.{where}.{kind}.{n}.{who}",
                        {
                            "cpu_ms_per_1000": cpu,
                            "checks_per_s": rate,
                            "offered": runs[0]["offered"],
                            "downs": downs,
                            "rss_mb": statistics.median(r["rss_mb"] for r in runs),
                            "private_mb": statistics.median(r["private_mb"] for r in runs),
                            "idle": statistics.median(r["idle"] for r in runs),
                            "cpu_util": statistics.median(r["cpu_util"] for r in runs),
                        },
                    )
                    line += f"   {who} {cpu:>5.0f} CPU-ms/1000 {rate:>5.0f}/s {downs} downs"
                print(line, flush=True)
        n = max(sizes)
        if not args.overload:
            return
        print(f"\noverload: {n} HTTP reals, a CPU hog on the guest's vCPU, {args.overload:g} s", flush=True)
        for cls in daemons:
            r = measure(cls, "http", n, args.interval, args.overload, hog=True)
            rows.append(("overload", n, cls.name, r))
            record(f"health.{where}.overload.{cls.name}", r)
            extra = ""
            if r["report"]:
                w, load = r["report"]["worst"], r["report"]["load"]
                extra = (
                    f"  worst lag {w['lag']:.1f} s, behind reported: {w['behind']}, loop late {w['loop_late']:.2f} s, "
                    f"stale timeouts re-verified {load['stale_timeouts']}, reasons {r['report']['reasons']}"
                )
            print(
                f"{cls.name:<11} checks/s {r['checks_per_s']:>6.0f} of {r['offered']:.0f} offered, "
                f"false downs {r['downs']} of {n}, CPU-ms/1000 {r['cpu_ms_per_1000']:.0f}{extra}",
                flush=True,
            )
    finally:
        os.killpg(servers.pid, signal.SIGTERM)
        servers.wait(10)


if __name__ == "__main__":
    main()
