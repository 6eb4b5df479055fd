"""The reporting part of the agent: stats snapshot, drift and the report loop that publishes them to Redis.

Why a room of its own: it only reads (the kernel dump, the desired state, health, the pair's view) and writes
to Redis, never to the kernel, so it can change shape without touching what keeps the data plane up. It reads
the agent through the callbacks it was built with; a Redis outage costs a failed round, never the agent.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable

from . import drift as drift_mod
from . import keys
from .desired import ServiceSpec
from .events import EventLog
from .ipvs import model as ipvs_model

log = logging.getLogger(__name__)

REPORT_INTERVAL = 2.0
DRIFT_EVERY = 5  # reporter ticks between drift checks


class Reporter:
    """Heartbeat, snapshot, history, drift and the event backlog, every REPORT_INTERVAL seconds."""

    def __init__(
        self,
        name: str,
        redis,
        events: EventLog,
        *,
        dump: Callable[[], list],
        specs: Callable[[], list[ServiceSpec]],
        table: Callable[[], list],
        revision: Callable[[], int],
        health: Callable[[], dict],
        results: Callable[[], dict],
        ha: Callable[[], dict | None],
        health_load: Callable[[], dict] | None = None,
    ):
        self.name = name
        self.redis = redis
        self.events = events
        self.dump = dump  # the kernel's table with counters
        self.specs = specs  # the desired services
        self.table = table  # the kernel table the desired state and health call for
        self.revision = revision
        self.health = health  # dest id -> up?
        self.results = results  # the health engine's last results
        self.ha = ha  # the pair's view, or None
        self.health_load = health_load  # whether the health engine keeps up (HealthEngine.load().as_dict())
        self.last_drift: list[str] = []

    def snapshot(self, dump: list | None = None) -> dict:
        """Kernel table with stats + last check results, in the shape director/keys.py documents.

        `dump` is a kernel dump the caller already has (the report loop shares one with drift()).
        """
        specs = self.specs()
        kernel = {ipvs_model.service_id_of(s): s for s in (self.dump() if dump is None else dump)}
        results = self.results()
        health = self.health()
        services = {}
        for spec in specs:
            sid = keys.service_key_for(spec)
            ksvc = kernel.get(sid)
            kdests = {ipvs_model.dest_id_of(sid, d): d for d in (ksvc.dests if ksvc else ())}
            dests = {}
            healthy = 0
            for real in spec.reals:
                did = keys.dest_id(sid, real.address, real.port)
                # the kernel holds port-0 reals on the service port
                kd = kdests.get(keys.dest_id(sid, real.address, ipvs_model.real_port(spec, real)))
                res = results.get((spec.key, real.key))
                up = health.get(did)
                healthy += up is not False
                dests[did] = {
                    "address": real.address,
                    "port": real.port,
                    "in_kernel": kd is not None,
                    "weight": kd.weight if kd else None,
                    "active": kd.stats.active if kd else 0,
                    "inactive": kd.stats.inactive if kd else 0,
                    "persistent": kd.stats.persistent if kd else 0,
                    "stats": ipvs_model.stats_dict(kd.stats) if kd else {},
                    "health": {
                        "up": up,
                        "reason": getattr(res, "reason", ""),
                        "latency": getattr(res, "latency", None),
                        "checked": getattr(res, "checked_at", None),
                    },
                }
            services[sid] = {
                "label": spec.label,
                "scheduler": spec.scheduler,
                "stats": ipvs_model.stats_dict(ksvc.stats) if ksvc else {},
                "healthy": healthy,
                "total": len(spec.reals),
                "quorum": healthy >= spec.check.quorum,
                "dests": dests,
            }
        return {
            "time": time.time(),
            "revision": self.revision(),
            "director": self.name,
            "drift": self.last_drift,
            "services": services,
            "ha": self.ha(),
            "health_load": self.health_load() if self.health_load is not None else None,
        }

    def drift(self, dump: list | None = None) -> list[str]:
        """How the kernel differs from what the desired state and health call for (drift.py), one line each."""
        return drift_mod.report(self.table(), self.dump() if dump is None else dump)

    def loop(self, stop: threading.Event) -> None:
        """The reporter thread: a round at once, then every REPORT_INTERVAL, drift every DRIFT_EVERY rounds."""
        tick = 0
        while not stop.wait(0 if tick == 0 else REPORT_INTERVAL):
            tick += 1
            try:
                self.report_once(check_drift=tick % DRIFT_EVERY == 1)
            except Exception:
                log.debug("report failed", exc_info=True)

    def report_once(self, check_drift: bool = False) -> None:
        """Heartbeat, snapshot, history, drift and the event backlog: one bounded round (one kernel dump)."""
        try:
            dump = self.dump()
        except OSError:
            # No table to report (no ip_vs, no CAP_NET_ADMIN): the agent is still alive and connected, and the
            # events saying why (the agent's IPVS check, the failed applies) must reach the dashboard.
            self.redis.set(
                keys.heartbeat_key(self.name),
                json.dumps({"time": time.time(), "revision": self.revision()}),
                ex=keys.HEARTBEAT_TTL,
            )
            self.events.flush(self.redis)
            raise
        if check_drift:
            found = self.drift(dump)
            if found != self.last_drift:
                if found:
                    self.events.emit(
                        "drift",
                        f"kernel differs from desired state: {len(found)} difference(s)",
                        level="warning",
                        data={"drift": found},
                    )
                elif self.last_drift:
                    self.events.emit("drift", "kernel matches desired state again")
                self.last_drift = found
        snap = self.snapshot(dump)
        now = snap["time"]
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(
            keys.heartbeat_key(self.name),
            json.dumps({"time": now, "revision": snap["revision"]}),
            ex=keys.HEARTBEAT_TTL,
        )
        pipe.set(keys.stats_key(self.name), json.dumps(snap), ex=keys.STATS_TTL)
        for svc in snap["services"].values():
            for did, d in svc["dests"].items():
                st = d["stats"]
                sample = json.dumps(
                    {
                        "t": round(now, 1),
                        "active": d["active"],
                        "inactive": d["inactive"],
                        "cps": st.get("cps", 0),
                        "inbps": st.get("inbps", 0),
                        "outbps": st.get("outbps", 0),
                    }
                )
                hk = keys.history_key(self.name, did)
                pipe.rpush(hk, sample)
                pipe.ltrim(hk, -keys.HISTORY_POINTS, -1)
                pipe.expire(hk, 7200)
        pipe.execute()
        self.events.flush(self.redis)
