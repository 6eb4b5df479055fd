"""Lab control channel: a Celery worker inside each lab guest, on queue ``lab.<name>``, for tests and demos.

It is NOT part of the product: it lets host-side tests act like the people and machines around a director -
a client opening connections to the VIP, a real server going down and up, an admin typing ipvsadm by hand,
an agent being restarted - and look at the guest kernel with a tool independent of our own code (ipvsadm).
It uses its own Redis (the lab's control Redis), so tests keep their hands on the guest while the product's
Redis is stopped on purpose.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import socket
import subprocess
import time

from celery import Celery
from celery.signals import worker_ready

SIDE = os.environ.get("LAB_SIDE", "host")
LAB_DIR = os.environ.get("UMW_LAB_DIR", "/tmp/umw-lab")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = os.path.join(REPO, ".venv", "bin", "python")
VIP = "172.16.10.52"
URL = {"host": f"redis+socket://{LAB_DIR}/run/ctl.sock", "guest": "redis://100.64.0.1:6380/0"}[SIDE]

app = Celery("umw_lab", broker=URL, backend=URL, fixups=[])  # no Django fixup: see director/worker.py
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    worker_prefetch_multiplier=1,
    result_expires=600,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)

_held: dict[int, tuple[socket.socket, int]] = {}
_ids = itertools.count(1)


@worker_ready.connect
def _ready(sender=None, **kw):
    if SIDE == "guest":
        with open(f"{LAB_DIR}/run/{socket.gethostname()}.labctl", "w") as f:
            f.write(f"{time.time():.3f}\n")


def _connect(port: int, netns: str = "client", timeout: float = 3.0) -> socket.socket:
    """A client connection to the VIP from inside `netns` (traffic.connect: only the socket lives there)."""
    from traffic import connect

    return connect(VIP, port, netns, timeout)


def _http_once(s: socket.socket, keep: bool) -> str:
    s.sendall(
        b"GET /index.html HTTP/1.1\r\nHost: lab\r\nConnection: %s\r\n\r\n"
        % (b"keep-alive" if keep else b"close")
    )
    data = b""
    deadline = time.monotonic() + 5
    while b"\r\n\r\n" not in data and time.monotonic() < deadline:
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("connection closed")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
    while len(body) < length and time.monotonic() < deadline:
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("connection closed")
        body += chunk
    return body.decode().strip()


@app.task(name="lab.http_get")
def http_get(n: int = 4, port: int = 80) -> list[str]:
    """n fresh HTTP connections to the VIP from the client namespace; the answering servers' names."""
    out = []
    for _ in range(min(n, 1000)):
        try:
            with _connect(port) as s:
                out.append(_http_once(s, keep=False))
        except OSError as exc:
            out.append(f"error: {exc}")
    return out


@app.task(name="lab.hold_open")
def hold_open(port: int = 80) -> dict:
    """Open a connection to the VIP and keep it; returns its id and which server answered first."""
    s = _connect(port)
    hid = next(_ids)
    _held[hid] = (s, port)
    return {"id": hid, "server": hold_probe(hid), "client_port": s.getsockname()[1]}


@app.task(name="lab.hold_probe")
def hold_probe(hid: int) -> str:
    """Use a held connection again: proves it is still established to the same server."""
    s, port = _held[hid]
    if port == 5500:
        s.sendall(b"ping\n")
        reply = s.recv(4096).decode().strip()
        if not reply:
            raise ConnectionError("connection closed")
        return reply.split()[0]
    return _http_once(s, keep=True)


@app.task(name="lab.hold_close")
def hold_close(hid: int) -> None:
    s, _ = _held.pop(hid)
    s.close()


_traffic: list[subprocess.Popen] = []


@app.task(name="lab.traffic")
def traffic(action: str, rate: float = 10.0, sessions: int = 6, duration: float = 600.0) -> str:
    """Start or stop the lab traffic generator (lab/traffic.py: bounded rate, sessions and duration)."""
    assert action in ("start", "stop")
    while _traffic:
        p = _traffic.pop()
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(10)
    if action == "stop":
        return "stopped"
    argv = [PY, os.path.join(REPO, "lab", "traffic.py"), "--rate", str(rate), "--sessions", str(sessions)]
    _traffic.append(
        subprocess.Popen(
            [*argv, "--duration", str(min(duration, 3600.0))],
            cwd=os.path.join(REPO, "lab"),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    )
    return "started"


def _pidfile(rs: str, what: str) -> str:
    return f"/run/rsd-{rs}-{what}.pid"


@app.task(name="lab.rs")
def rs(name: str, action: str, what: str = "http") -> str:
    """Stop or start one real server's HTTP (:80) or line (:5500) service."""
    assert name in ("rs1", "rs2") and what in ("http", "tcp") and action in ("stop", "start")
    pidfile = _pidfile(name, what)
    if action == "stop":
        try:
            pid = int(open(pidfile).read())
            os.kill(pid, signal.SIGTERM)
        except (FileNotFoundError, ProcessLookupError, ValueError):
            return "not running"
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return "stopped"
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
        return "killed"
    ports = (
        ["--http-port", "80", "--tcp-port", "0"]
        if what == "http"
        else ["--http-port", "0", "--tcp-port", "5500"]
    )
    subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            name,
            PY,
            os.path.join(REPO, "lab", "rsd.py"),
            name,
            *ports,
            "--pidfile",
            pidfile,
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    port = "80" if what == "http" else "5500"
    for _ in range(200):
        out = subprocess.run(
            ["ip", "netns", "exec", name, "ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True
        ).stdout
        if out.strip():
            return "started"
        time.sleep(0.05)
    return "start timed out"


def parse_ipvsadm(text: str) -> dict[str, dict[str, int]]:
    """`ipvsadm -Ln` -> {"TCP 172.16.10.52:80": {"192.168.1.4:80": weight}}."""
    table: dict[str, dict[str, int]] = {}
    current = None
    for line in text.splitlines():
        m = re.match(r"^(TCP|UDP|SCTP|FWM)\s+(\S+)\s+\S+", line)
        if m:
            current = f"{m.group(1)} {m.group(2)}"
            table[current] = {}
            continue
        m = re.match(r"^\s+->\s+(\S+)\s+\S+\s+(\d+)\s+", line)
        if m and current and m.group(1) != "RemoteAddress:Port":
            table[current][m.group(1)] = int(m.group(2))
    return table


@app.task(name="lab.table")
def table() -> dict[str, dict[str, int]]:
    """The guest kernel's IPVS table as ipvsadm (not our code) sees it."""
    return parse_ipvsadm(
        subprocess.run(["ipvsadm", "-Ln"], capture_output=True, text=True, timeout=10).stdout
    )


@app.task(name="lab.ipvsadm")
def ipvsadm(args: list[str]) -> tuple[int, str]:
    """Run ipvsadm by hand (an admin bypassing the dashboard), argv list, no shell."""
    p = subprocess.run(["ipvsadm", *[str(a) for a in args]], capture_output=True, text=True, timeout=10)
    return p.returncode, p.stdout + p.stderr


@app.task(name="lab.wait_weight")
def wait_weight(service: str, real: str, weight: int | None, timeout: float = 10.0) -> float | None:
    """Poll the kernel until `real` in `service` has `weight` (None: absent); wall time it happened, or None."""
    from director.ipvs import wire

    proto, addr = service.split()
    host, port = addr.rsplit(":", 1)
    r_host, r_port = real.rsplit(":", 1)
    deadline = time.monotonic() + min(timeout, 120)
    with wire.Wire() as w:
        while time.monotonic() < deadline:
            found = w.dest_weight((proto.lower(), host, int(port)), (r_host, int(r_port)))
            if found == weight:
                return time.time()
            time.sleep(0.002)
    return None


@app.task(name="lab.agent_restart")
def agent_restart(timeout: float = 60.0) -> dict:
    """SIGTERM the director agent; the guest's supervisor starts it again. Returns old and new pid."""
    old = _agent_pid()
    t0 = time.time()
    os.kill(old, signal.SIGTERM)
    return _wait_new_agent(old, t0, timeout)


HOLD = "/run/agent.hold"  # guest-private: while it exists, guest-init.sh does not restart the agent


def _agent_pid() -> int:
    return int(open(f"{LAB_DIR}/run/{socket.gethostname()}/agent.pid").read())


def _wait_new_agent(old: int, t0: float, timeout: float) -> dict:
    """Until an agent other than `old` reports ready after `t0` (bounded); {"old", "new", "seconds"}."""
    state = f"{LAB_DIR}/run/{socket.gethostname()}"
    deadline = time.monotonic() + min(timeout, 180)
    while time.monotonic() < deadline:
        try:
            ready_at = float(open(f"{state}/agent.ready").read())
            new = _agent_pid()
        except (FileNotFoundError, ValueError):
            ready_at, new = 0.0, old
        if ready_at > t0 and new != old:
            return {"old": old, "new": new, "seconds": round(ready_at - t0, 3)}
        time.sleep(0.1)
    raise TimeoutError("agent did not come back")


@app.task(name="lab.agent_stop")
def agent_stop(sig: str = "KILL", timeout: float = 30.0) -> dict:
    """Take the director agent down and keep it down: KILL = a crash (nothing cleaned up, the kernel keeps its
    VIPs and table), TERM = a clean stop, STOP = a hung agent (frozen, not gone). Returns pid and wall time."""
    assert sig in ("KILL", "TERM", "STOP")
    open(HOLD, "w").close()
    pid = _agent_pid()
    t0 = time.time()
    os.kill(pid, getattr(signal, f"SIG{sig}"))
    if sig != "STOP":
        deadline = time.monotonic() + min(timeout, 120)
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.02)
        else:
            raise TimeoutError(f"agent {pid} did not exit")
    return {"pid": pid, "time": t0, "exited": time.time()}


@app.task(name="lab.agent_start")
def agent_start(timeout: float = 90.0) -> dict:
    """Undo agent_stop: a frozen agent continues, a stopped one is started again by the supervisor."""
    t0 = time.time()
    pid = _agent_pid()
    try:
        os.remove(HOLD)
    except FileNotFoundError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as f:
            frozen = f.read().rsplit(")", 1)[1].split()[0] in ("T", "t")
    except FileNotFoundError:
        frozen = False
    if frozen:
        os.kill(pid, signal.SIGCONT)
        return {"pid": pid, "continued": True, "seconds": 0.0}
    back = _wait_new_agent(pid, t0, timeout)
    return {"pid": back["new"], "continued": False, "seconds": back["seconds"]}


@app.task(name="lab.addrs")
def addrs(ifname: str = "eth0", family: int = 4) -> list[str]:
    """Addresses of one family on `ifname` as `ip` (not our code) lists them: ["100.64.0.2/24", ...]."""
    out = subprocess.run(
        ["ip", f"-{family}", "-o", "addr", "show", "dev", ifname], capture_output=True, text=True
    )
    return [line.split()[3] for line in out.stdout.splitlines() if len(line.split()) > 3]


@app.task(name="lab.wait_addr")
def wait_addr(
    address: str, present: bool = True, ifname: str = "eth0", timeout: float = 10.0
) -> float | None:
    """Poll (in the guest, so no round trip blurs it) until `address` is on `ifname` (or gone); wall time or None."""
    family = 6 if ":" in address else 4
    deadline = time.monotonic() + min(timeout, 120)
    while time.monotonic() < deadline:
        if (address in addrs(ifname, family)) == present:
            return time.time()
        time.sleep(0.01)
    return None


def _keepalived_pid() -> int:
    return int(open(f"{LAB_DIR}/run/{socket.gethostname()}/keepalived/keepalived.pid").read())


@app.task(name="lab.keepalived_kill")
def keepalived_kill() -> dict:
    """SIGKILL the agent's keepalived, parent and VRRP child (its process group): a crash, no goodbye advert,
    its addresses left behind. Returns its pid and the wall time of the kill."""
    pid = _keepalived_pid()
    t0 = time.time()
    os.killpg(pid, signal.SIGKILL)
    return {"pid": pid, "time": t0}


@app.task(name="lab.keepalived_pid")
def keepalived_pid() -> int | None:
    try:
        pid = _keepalived_pid()
        os.kill(pid, 0)
        return pid
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None


@app.task(name="lab.clock_shift")
def clock_shift(seconds: float) -> float:
    """Move this guest's wall clock (a UML guest keeps its own from boot; the host's is untouched)."""
    assert abs(seconds) <= 86400
    subprocess.run(
        ["date", "-s", f"@{time.time() + seconds:.3f}"], capture_output=True, check=True, timeout=10
    )
    return time.time()


@app.task(name="lab.now")
def now() -> float:
    return time.time()
