"""The whole product on one machine, for end-to-end tests and benchmarks: lab director + central side.

`Stack` starts what `make run` starts - the UML lab (guest with our agent, the classic topology, the lab's
Redis in its own namespace), a fresh SQLite database with the demo and a known admin, the event follower and
gunicorn on a free loopback port - and stops all of it (by process group) afterwards. It also gives the lab
control channel (lab/labtasks.py) to act in the guest: client connections, real servers up/down, ipvsadm.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAB_SH = os.path.join(REPO, "lab", "lab.sh")
PY = os.path.join(REPO, ".venv", "bin", "python")
# Debian's chromium as Playwright drives it everywhere here (tests/browser, tests/e2e, bench): without
# background networking it never reaches for anything but the pages under test.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def central_redis_url(lab_dir: str) -> str:
    """The lab's product Redis as the central side's ACL user (lab.sh made the password)."""
    with open(os.path.join(lab_dir, "run", "redis-central.pass")) as f:
        return f"unix://central:{f.read().strip()}@{lab_dir}/run/redis.sock"


def signing_dir(lab_dir: str) -> str:
    """The lab dashboard's signing key ring; the lab's agents trust its public key (lab.sh)."""
    return os.path.join(lab_dir, "run", "signing")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stack:
    def __init__(self, lab_dir: str | None = None, director: str = "lab1", demo: bool = True):
        self.lab_dir = lab_dir or os.environ.get("UMW_LAB_DIR", "/tmp/umw-lab")
        self.director = director
        self.demo = demo  # False: no director in the database; the test creates it through the browser
        self.tmp = tempfile.mkdtemp(prefix="umw-stack-")
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.password = "admin-pw-e2e"
        self.procs: list[subprocess.Popen] = []
        self.env = dict(
            os.environ,
            UMW_LAB_DIR=self.lab_dir,
            DATABASE_URL=f"sqlite:///{self.tmp}/db.sqlite3",
            UMW_SIGNING_DIR=signing_dir(self.lab_dir),
            SECRET_KEY="e2e",
            DJANGO_SETTINGS_MODULE="ultramonkey_web.settings",
            PYTHONPATH=REPO,
        )
        self.ctl = None

    # -- helpers -------------------------------------------------------------------------------------------
    def manage(self, *args: str, timeout: float = 120) -> str:
        p = subprocess.run(
            [PY, "manage.py", *args], cwd=REPO, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if p.returncode:
            raise RuntimeError(f"manage.py {' '.join(args)} failed: {p.stdout}{p.stderr}")
        return p.stdout

    def spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = open(os.path.join(self.tmp, f"{name}.log"), "w")
        p = subprocess.Popen(
            argv, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.procs.append(p)
        return p

    def lab(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        return subprocess.run(
            [LAB_SH, *args], cwd=REPO, env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def call(self, task: str, *args, timeout: float = 30, **kwargs):
        """Run a lab control task in the guest and wait for its result."""
        return self.ctl.send_task(task, args=args, kwargs=kwargs, queue=f"lab.{self.director}").get(
            timeout=timeout
        )

    def log_in(self, page) -> None:
        """Log a Playwright page in as the stack's admin (the login form, as a user would)."""
        page.goto(self.base_url + "/login/")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", self.password)
        page.click("button[type=submit], input[type=submit]")
        page.wait_for_url(self.base_url + "/")

    # -- life cycle ----------------------------------------------------------------------------------------
    def start(self) -> Stack:
        up = self.lab("up", "1", timeout=240)
        if up.returncode:
            raise RuntimeError(f"lab up failed:\n{up.stdout}\n{up.stderr}")
        self.env["REDIS_URL"] = central_redis_url(self.lab_dir)  # made by `lab up`
        os.environ["UMW_LAB_DIR"] = self.lab_dir
        sys.path.insert(0, os.path.join(REPO, "lab"))
        import labtasks

        self.ctl = labtasks.app
        self.manage("migrate", "--noinput", "-v0")
        demo = ["--demo", self.director] if self.demo else []
        self.manage("setup", "--admin", "admin", "--password", self.password, *demo)
        self.manage("collectstatic", "--noinput", "-v0")
        self.spawn("ingest", [PY, "manage.py", "ingest", "--follow", "--max-seconds", "7200"])
        self.spawn(
            "worker",
            [
                os.path.join(REPO, ".venv", "bin", "celery"),
                "-A",
                "ultramonkey_web",
                "worker",
                "-B",
                "-Q",
                "central",
                "-c",
                "1",
                "-l",
                "WARNING",
                "--schedule",
                os.path.join(self.tmp, "beat-schedule"),
            ],
        )
        self.spawn(
            "web",
            [
                os.path.join(REPO, ".venv", "bin", "gunicorn"),
                "ultramonkey_web.wsgi",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                "2",
                "--threads",
                "4",
            ],
        )
        if self.demo:
            self.manage("push", self.director)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.base_url + "/login/", timeout=2).read()
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise RuntimeError("dashboard did not come up")
        return self

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)
        self.lab("down", timeout=120)
        if os.environ.get("UMW_KEEP_STACK"):  # database and process logs, for a post-mortem
            print(f"stack files kept in {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
