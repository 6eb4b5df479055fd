"""The checker process: the health engine in a process of its own, as keepalived runs its checker child.

Why a process and not a thread of the agent: the agent's Celery worker also diffs and programs the kernel
table, reports and verifies signatures, all on one interpreter lock; at 37,000 real servers one full
reconcile holds it for 150 ms and the checks' loop then runs late (the collapse of issue 17). Here the checks
have an interpreter of their own, a crash or a leak in a checker takes down only this process (the agent
restarts it and carries every verdict over), and the process holds only what checking needs: no Celery,
Redis, netlink or signing code, and Python's ssl (5 MB) only when a check may speak TLS
(`registry.needs_tls`; otherwise process.py blocks the import before anything imports asyncio).

Protocol with the agent (process.CheckerProcess), one JSON document per line:
- in (stdin): ``{"update": SEQ, "services": [`to_wire` of each ServiceSpec], "known": [[service key, real
  key, up], ...]}`` replaces what is checked (``known``: verdicts a real not checked yet starts from);
  ``{"stop": true}`` or end of file ends the process.
- out (stdout): ``{"ready": PID, "tls": BOOL}``; ``{"ack": SEQ}`` once an update is applied;
  ``{"flip": [service key, real key, up, ok, latency, reason]}`` at once on every transition;
  ``{"results": [[i, ok, latency, reason, checked_at, checks, failures, since, up], ...], "seq": SEQ,
  "load": EngineLoad}`` every half second, only the reals checked since the previous one (``i``: the real's
  place in update SEQ, `engine.numbering`), so mirroring costs O(checks), not O(table);
  ``{"error": TEXT}`` for a command it could not take.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import queue
import sys
import threading
from dataclasses import replace

from director.desired import RealSpec, ServiceSpec, plain

from .engine import HealthEngine

log = logging.getLogger("director.health.checker")


def to_wire(svc: ServiceSpec) -> dict:
    """A service as the checker process receives it: its fields as plain JSON, its reals as [address, port,
    check port] (all a check needs of one). Why not plain dicts: 5,000 reals decoded as dicts and RealSpecs
    left ~1 KB a real of freed memory the process kept (issue 17's memory goal)."""
    out = plain(replace(svc, reals=(), fallback=None))
    out["reals"] = [[r.address, r.port, r.check_port] for r in svc.reals]
    return out


def from_wire(d: dict) -> ServiceSpec:
    """The ServiceSpec of `to_wire` (ValueError/TypeError/KeyError for anything else: the update is refused)."""
    reals = tuple(RealSpec(str(a), int(p), check_port=int(c)) for a, p, c in d.get("reals") or ())
    return replace(ServiceSpec.from_dict({**d, "reals": ()}), reals=reals)


class _Checker:
    def __init__(self, cafile: str | None):
        self.out: queue.SimpleQueue = queue.SimpleQueue()
        self.engine = HealthEngine(
            on_change=self.on_change,
            on_results=self.on_results,
            cafile=cafile,
            results_every=0.5,
            remember=False,
        )

    # engine thread: only queue, the writer thread encodes
    def on_change(self, service, real, up, result) -> None:
        self.out.put({"flip": [service, real, up, result.ok, round(result.latency, 4), result.reason]})

    def on_results(self, seq: int, items: list) -> None:
        rows = [[i, *last] for i, last in items if last is not None]
        self.out.put({"results": rows, "seq": seq, "load": self.engine.load().as_dict()})

    def write(self, stream) -> None:
        """Writer thread: one line per message; a closed pipe means the agent is gone, and so are we."""
        dumps = json.JSONEncoder(separators=(",", ":")).encode
        for msg in iter(self.out.get, None):
            try:
                stream.write(dumps(msg).encode() + b"\n")
                stream.flush()
            except (BrokenPipeError, ValueError, OSError):
                os._exit(0)

    def command(self, line: bytes) -> bool:
        """One line from the agent; False to stop. Never raises: a bad line is answered with an error."""
        try:
            msg = json.loads(line)
            if not isinstance(msg, dict):
                raise ValueError("not an object")
            if msg.get("stop"):
                return False
            if "update" in msg:
                seq = int(msg["update"])
                services = [from_wire(d) for d in msg.get("services") or ()]
                known = {(tuple(s), tuple(r)): bool(up) for s, r, up in msg.get("known") or ()}
                del msg  # before the engine builds its jobs: they reuse the decoded document's memory
                self.engine.update(services, timeout=120, known=known, tag=seq)
                del services  # the engine keeps what it needs (remember=False)
                self.out.put({"ack": seq})
                return True
            raise ValueError(f"unknown command {sorted(msg)[:3]}")
        except Exception as exc:  # noqa: BLE001 - whatever came in, answer and go on checking
            log.error("checker command refused: %s", exc)
            self.out.put({"error": f"{exc.__class__.__name__}: {exc}"[:300]})
            return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="director.health.checker")
    parser.add_argument("--cafile", help="CA file for verify_tls HTTPS checks")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("UMW_LOGLEVEL", "INFO").upper(),
        format="%(asctime)s checker[%(process)d] %(levelname)s %(name)s: %(message)s",
    )
    checker = _Checker(args.cafile)
    writer = threading.Thread(
        target=checker.write, args=(sys.stdout.buffer,), name="checker-out", daemon=True
    )
    writer.start()
    checker.engine.start()
    checker.out.put({"ready": os.getpid(), "tls": "ssl" in sys.modules and sys.modules["ssl"] is not None})
    for line in sys.stdin.buffer:  # the agent's commands; end of file: the agent is gone
        if not checker.command(line):
            break
    checker.engine.stop()
    checker.out.put(None)
    writer.join(5)
    return 0
