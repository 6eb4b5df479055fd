"""Benchmark of configuration import at scale, through the real pages: preview, then confirm.

Usage: .venv/bin/python bench/import_bench.py [--reals 20000] [--services 2000] [--repeat 3]

Generates an `ipvsadm -S` file with --reals real servers (500 virtual services x reals/500) and a
keepalived.conf with --services virtual servers (two real servers each, one TCP_CHECK and one HTTP_GET), posts
each to /io/import/ as a logged-in admin (parse + dry run = the preview the user waits for), then confirms it
(parse again + validate + bulk insert + Event + the desired state built and queued), against a fresh SQLite
database (or DATABASE_URL) and a private redis-server on a loopback port. Prints the median wall time of each
step; the target is 5 s per step on a 2-core machine (gunicorn's worker timeout is 30 s).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, REPO)


def ipvsadm_save(reals: int) -> str:
    services = 500
    per = max(1, reals // services)
    out = []
    for s in range(services):
        vip = f"10.{1 + s // 250}.{s % 250}.1"
        out.append(f"-A -t {vip}:80 -s wlc")
        for r in range(per):
            n = s * per + r
            out.append(f"-a -t {vip}:80 -r 192.168.{n // 250 % 250}.{1 + n % 250}:{8000 + r} -m -w 1")
    return "\n".join(out) + "\n"


def keepalived_conf(services: int) -> str:
    out = ["global_defs {\n    router_id BENCH\n}\n"]
    for s in range(services):
        vip = f"172.{16 + s // 250 // 250}.{s // 250 % 250}.{1 + s % 250}"
        out.append(
            f"virtual_server {vip} 443 {{\n    delay_loop 6\n    lb_algo wrr\n    lb_kind NAT\n    protocol TCP\n"
            f"    persistence_timeout 300\n"
            f"    real_server 192.168.1.4 443 {{\n        weight 2\n        TCP_CHECK {{\n"
            f"            connect_timeout 3\n        }}\n    }}\n"
            f"    real_server 192.168.1.5 443 {{\n        weight 1\n        HTTP_GET {{\n"
            f"            url {{\n                path /health\n                status_code 200\n            }}\n"
            f"            connect_timeout 3\n        }}\n    }}\n}}\n"
        )
    return "".join(out)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def private_redis(tmp: str, port: int) -> subprocess.Popen:
    """A throwaway redis-server on a loopback port, keeping nothing on disk (the caller terminates it)."""
    return subprocess.Popen(
        [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            tmp,
        ],  # fmt: skip
        stdout=subprocess.DEVNULL,
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reals", type=int, default=20_000)
    ap.add_argument("--services", type=int, default=2_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="umw-import-bench-")
    port = free_port()
    redis = private_redis(tmp, port)
    try:
        os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp}/bench.sqlite3")
        os.environ.update(
            REDIS_URL=f"redis://127.0.0.1:{port}/0",
            SECRET_KEY="bench-only",
            DJANGO_SETTINGS_MODULE="ultramonkey_web.settings",
            LOG_LEVEL="ERROR",
        )
        import django

        django.setup()
        from django.core.management import call_command
        from django.test import Client
        from django.test.utils import setup_test_environment

        setup_test_environment()  # so the client sees response.context
        call_command("migrate", verbosity=0)
        from django.contrib.auth import get_user_model

        from clusters.models import Director, RealServer

        admin = get_user_model().objects.create_superuser("bench", "", "bench-pw-long-enough")
        client = Client()
        client.force_login(admin)
        cases = [
            ("ipvsadm", f"ipvsadm -S, {args.reals:,} real servers", ipvsadm_save(args.reals)),
            (
                "keepalived",
                f"keepalived.conf, {args.services:,} virtual servers",
                keepalived_conf(args.services),
            ),
        ]
        for fmt, title, text in cases:
            previews, applies, cpu = [], [], []
            for i in range(args.repeat):
                director = Director.objects.create(name=f"{fmt}{i}", masquerade=False)
                form = {"director": director.pk, "format": fmt, "text": text, "hosts": ""}
                t0, c0 = time.perf_counter(), time.process_time()
                response = client.post("/io/import/", form)
                previews.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
                result = response.context["result"]
                if response.status_code != 200 or not result.ok:
                    print(f"{title}: preview failed: {[str(m) for m in result.errors[:5]]}")
                    return 1
                t0, c0 = time.perf_counter(), time.process_time()
                response = client.post("/io/import/confirm/", {"token": response.context["token"]})
                applies.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
                if response.status_code != 302:
                    print(f"{title}: apply failed with HTTP {response.status_code}")
                    return 1
                reals = RealServer.objects.filter(service__director=director).count()
            print(
                f"{title} ({len(text) / 1024:,.0f} KiB, {director.services.count():,} services, {reals:,} reals): "
                f"preview {statistics.median(previews):.2f} s (CPU {statistics.median(cpu[0::2]):.2f} s), "
                f"apply {statistics.median(applies):.2f} s (CPU {statistics.median(cpu[1::2]):.2f} s) "
                f"(median of {args.repeat}; {django.db.connection.vendor}; load {os.getloadavg()[0]:.1f})"
            )
    finally:
        redis.terminate()
        redis.wait(5)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
