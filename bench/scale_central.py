"""The central side at keepalived issue #2318's size (issue 17): one director, 2,284 services, 37,298 reals.

Usage: .venv/bin/python bench/scale_central.py [--repeat 5] [--postgres] [--no-snapshot] [--whole-snapshot]

Runs on the host, no lab: a fresh SQLite database (or, with --postgres, a throwaway database on the
PostgreSQL at 127.0.0.1:5432) and a private redis-server on a loopback port. The director is built through
the product path: generated `ipvsadm -S` files (two of them: one import takes at most 25,000 reals) parsed
and applied with clusters.importers.apply_plan, as the import page does. The layout is 2,283 services of 16
reals plus one of 770, so the service page is measured both at a typical size and with a long table.

Unless --no-snapshot, the agent's live stats are written by its own Reporter (director/report.py, from the
desired state the push builds; an empty kernel dump, so counters are 0 but the shape and size are the
agent's): one report round through Reporter.report_once into the private Redis - the meta record, the
per-service records with reals and the summaries (director/keys.py) -, so pages and /metrics read what they
would in production. --whole-snapshot writes instead the one JSON snapshot older agents wrote.

Prints, each next to its goal: DB build time; render time (median of --repeat) and bytes of the overview,
the director page and the service page, full and as their HTMX live fragment; /metrics time, bytes and
series count with and without per-real-server series; push time (services.push, desired state built,
signed and queued on the Redis broker) and the payload bytes, raw and as sent. Timings depend on the load
of the machine: the load average is printed with them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, REPO)

from figures import record  # noqa: E402 - bench/ is the script's directory
from import_bench import free_port, private_redis  # noqa: E402

SERVICES = 2_284
REALS = 37_298
BIG = REALS - (SERVICES - 1) * 16  # the one long service: 770 reals
MAX_PER_IMPORT = 25_000  # clusters/importers/apply.py MAX_REALS


def layout() -> list[int]:
    return [16] * (SERVICES - 1) + [BIG]


def ipvsadm_files() -> list[str]:
    """`ipvsadm -S` texts for the whole director, each small enough for one import."""
    files, lines, reals = [], [], 0
    n = 0
    for s, per in enumerate(layout()):
        if reals + per > MAX_PER_IMPORT:
            files.append("\n".join(lines) + "\n")
            lines, reals = [], 0
        vip = f"10.{1 + s // 250}.{s % 250}.1"
        lines.append(f"-A -t {vip}:80 -s wlc")
        for r in range(per):
            lines.append(
                f"-a -t {vip}:80 -r 172.{16 + n // 62500}.{n // 250 % 250}.{1 + n % 250}:{8000 + r} -m -w 1"
            )
            n += 1
        reals += per
    files.append("\n".join(lines) + "\n")
    return files


def median_ms(fn, repeat: int) -> tuple[float, float, object]:
    """Median wall and CPU milliseconds of `fn()` over `repeat` calls (CPU: this process's own time, which
    the other load on a shared machine inflates far less than the wall time), and its last result."""
    times, cpu, out = [], [], None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return statistics.median(times), statistics.median(cpu), out


def verdict(value: float, goal: float) -> str:
    return "ok" if value <= goal else "OVER"


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `timeout` still cleans up (finally below)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--postgres", action="store_true", help="use a throwaway DB on 127.0.0.1:5432")
    ap.add_argument("--sqlite", help="keep the SQLite database in this file (built once, reused after)")
    ap.add_argument("--no-snapshot", action="store_true", help="measure without a stats snapshot in Redis")
    ap.add_argument(
        "--whole-snapshot",
        action="store_true",
        help="write an older agent's one-value snapshot instead of records",
    )
    ap.add_argument("--profile", metavar="TITLE", help="print a cProfile of the page with this title")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="umw-scale-central-")
    port = free_port()
    redis_proc = private_redis(tmp, port)
    pg_db = f"umw_scale_{os.getpid()}"
    try:
        if args.postgres:
            import psycopg

            with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
                c.execute(f'CREATE DATABASE "{pg_db}"')
            os.environ["DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:5432/{pg_db}"
        else:
            os.environ["DATABASE_URL"] = f"sqlite:///{os.path.abspath(args.sqlite or tmp + '/bench.sqlite3')}"
        os.environ.update(
            REDIS_URL=f"redis://127.0.0.1:{port}/0",
            SECRET_KEY="bench-only",
            DJANGO_SETTINGS_MODULE="ultramonkey_web.settings",
            LOG_LEVEL="ERROR",
            UMW_SIGNING_DIR=os.path.join(tmp, "signing"),
        )
        return run(args)
    finally:
        from django.db import connections

        connections.close_all()
        if args.postgres:
            import psycopg

            with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
                c.execute(f'DROP DATABASE IF EXISTS "{pg_db}"')
        redis_proc.terminate()
        redis_proc.wait(5)
        shutil.rmtree(tmp, ignore_errors=True)


def run(args) -> int:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()
    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model

    from clusters import importers
    from clusters.importers.apply import apply_plan
    from clusters.models import Director, RealServer, VirtualService

    print(
        f"# {connection.vendor}, load {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs, repeat {args.repeat}"
    )
    if Director.objects.filter(name="big").exists():  # --sqlite with a database built before
        return measure(args, Director.objects.get(name="big"), get_user_model().objects.get(username="bench"))
    admin = get_user_model().objects.create_superuser("bench", "", "bench-pw-long-enough")
    director = Director.objects.create(name="big", masquerade=False)

    # -- build through the import path ------------------------------------------------------------------------
    t0 = time.perf_counter()
    for n, text in enumerate(ipvsadm_files()):
        plan = importers.parse(text, "ipvsadm", filename=f"part{n}.rules")
        result = apply_plan(plan, director, user=admin)
        if not result.ok:
            print(f"import failed: {[str(m) for m in result.errors[:5]]}")
            return 1
    build = time.perf_counter() - t0
    record("central.db_build_s", build)
    n_services = VirtualService.objects.filter(director=director).count()
    n_reals = RealServer.objects.filter(service__director=director).count()
    print(
        f"DB build (2 imports, parse + apply_plan): {build:.1f} s for {n_services:,} services / {n_reals:,} reals"
    )

    director.refresh_from_db()
    return measure(args, director, admin)


def profile(fn) -> None:
    """Where one render's time goes (--profile): the 25 biggest by own time and by cumulative time."""
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.runcall(fn)
    stats = pstats.Stats(prof)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(40)


def measure_reads(args, client, pages, per_real: tuple[bool, ...], tag: str) -> int:
    """Render every page of `pages` and scrape /metrics (per-real series on and/or off); prints each figure
    next to its goal; 1 when a page does not answer 200."""
    from django.test.utils import override_settings

    print(f"{'what':34} {'wall ms':>8} {'CPU ms':>7} {'goal':>5}  {'KB':>6} {'goal':>5}")
    for title, url, headers in pages:
        ms, cpu, response = median_ms(
            lambda url=url, headers=headers: client.get(url, headers=headers), args.repeat
        )
        if response.status_code != 200:
            print(f"{title}: HTTP {response.status_code}")
            return 1
        if args.profile == title:
            profile(lambda url=url, headers=headers: client.get(url, headers=headers))
        kb = len(response.content) / 1024
        record(f"central.{tag}.{title}", {"ms": ms, "cpu_ms": cpu, "kb": kb})
        print(
            f"{title:34} {ms:8.0f} {cpu:7.0f} {200:5}  {kb:6.0f} {200:5}  {verdict(ms, 200)}/{verdict(kb, 200)}"
        )

    for on in per_real:
        with override_settings(UMW_METRICS_REALSERVERS=on, METRICS_ALLOW_ANONYMOUS=True):
            ms, cpu, response = median_ms(lambda: client.get("/metrics"), max(1, args.repeat // 2))
        body = response.content.decode()
        series = sum(1 for line in body.splitlines() if line and not line.startswith("#"))
        title = f"/metrics, per-real series {'on' if on else 'off'}"
        record(f"central.{tag}.{title}", {"ms": ms, "cpu_ms": cpu, "kb": len(body) / 1024, "series": series})
        print(
            f"{title:34} {ms:8.0f} {cpu:7.0f} {1000:5}  {len(body) / 1024:6.0f}  "
            f"{series:,} series  {verdict(ms, 1000)}"
        )

    return 0


def measure(args, director, admin) -> int:
    from django.test import Client

    from clusters import agents, services
    from clusters.desired import desired_state
    from clusters.models import VirtualService
    from director import keys, schema, signing
    from director.events import EventLog
    from director.host import kernel_table
    from director.report import Reporter

    client = Client()
    client.force_login(admin)
    typical = VirtualService.objects.filter(director=director).order_by("pk").first()
    big = VirtualService.objects.filter(director=director).order_by("-pk").first()
    hx = {"HX-Request": "true"}
    pages = [
        ("overview", "/", {}),
        ("overview fragment", "/", hx),
        ("director page", director.get_absolute_url(), {}),
        ("director fragment", director.get_absolute_url(), hx),
        ("director page 46 of 46", director.get_absolute_url() + "?page=46", {}),
        ("director filtered ?q=10.5.", director.get_absolute_url() + "?q=10.5.", {}),
        (f"service page ({typical.reals.count()} reals)", typical.get_absolute_url(), {}),
        ("service fragment", typical.get_absolute_url(), hx),
        (f"service page ({big.reals.count()} reals)", big.get_absolute_url(), {}),
        ("service fragment (long)", big.get_absolute_url(), hx),
    ]
    agents.client().delete(
        keys.stats_key(director.name), keys.service_stats_key(director.name), keys.summary_key(director.name),
        keys.heartbeat_key(director.name),
    )  # fmt: skip
    print("\n## without a stats snapshot (database and rendering only)")
    if measure_reads(args, client, pages, per_real=(False,), tag="bare"):
        return 1
    if not args.no_snapshot:
        state = schema.parse(desired_state(director).to_dict())
        table = kernel_table(state, {})  # every real in the kernel, as the agent puts it there
        events = EventLog(os.path.join(tempfile.mkdtemp(prefix="umw-events-"), "events.jsonl"), director.name)
        reporter = Reporter(
            director.name, None, events,
            dump=lambda: table, specs=lambda: list(state.services), table=lambda: table,
            revision=lambda: state.revision, health=dict, results=dict, ha=lambda: None,
        )  # fmt: skip
        if args.whole_snapshot:
            raw = json.dumps(reporter.snapshot())
            agents.client().set(keys.stats_key(director.name), raw, ex=3600)
            agents.client().set(
                keys.heartbeat_key(director.name), json.dumps({"time": time.time(), "revision": 1}), ex=3600
            )
            print(f"\n## with an older agent's whole stats snapshot: one {len(raw) / 1e6:.1f} MB JSON value")
        else:
            reporter.redis = agents.client()
            reporter.report_once()  # the agent's own round: meta, records with reals, summaries, history
            stats_keys = (keys.stats_key(director.name), keys.service_stats_key(director.name))
            for key in (*stats_keys, keys.summary_key(director.name)):
                agents.client().expire(key, 3600)  # the bench outlasts keys.STATS_TTL
            meta = len(agents.client().get(keys.stats_key(director.name)) or "")
            with_reals, sums = (
                sum(len(v) for v in agents.client().hgetall(key).values())
                for key in (keys.service_stats_key(director.name), keys.summary_key(director.name))
            )
            print(
                f"\n## with the agent's records (format {keys.STATS_FORMAT}): meta {meta / 1e3:.1f} KB, records "
                f"with reals {with_reals / 1e6:.1f} MB, summaries {sums / 1e6:.2f} MB of JSON"
            )
        if measure_reads(args, client, pages, per_real=(False, True), tag="records"):
            return 1

    # -- push: desired state built, signed and queued on the broker ---------------------------------------------
    ms, cpu, _ = median_ms(lambda: services.push(director, user=admin, reason="bench"), args.repeat)
    queued = agents.client().llen(director.queue)
    print(
        f"{'push (build, sign, queue)':34} {ms:8.0f} {cpu:7.0f} {1000:5}  {verdict(ms, 1000)} ({queued} queued)"
    )
    desired = desired_state(director).to_dict()
    raw_json = json.dumps(desired, separators=(",", ":")).encode()
    message = signing.KeyRing(os.environ["UMW_SIGNING_DIR"]).sign(
        director=director.name, revision=desired["revision"], state=desired, job_id=1
    )
    sent = json.dumps(message, separators=(",", ":")).encode()
    form = "compressed" if "payload_zlib" in message else "uncompressed"
    record(
        "central.push", {"ms": ms, "cpu_ms": cpu, "raw_kb": len(raw_json) / 1024, "sent_kb": len(sent) / 1024}
    )
    print(
        f"desired state: {len(raw_json) / 1024:,.0f} KB raw JSON; signed message as sent {len(sent) / 1024:,.0f} KB "
        f"({form})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
