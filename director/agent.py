"""The director agent: desired state in, kernel table out, health checks acting locally.

One `Agent` lives in the director's Celery worker process (see worker.py). It

* keeps the last desired state and health on local disk (statefile.py) and re-applies them on start, so a
  restart - or a central side that is gone - changes nothing in the data plane;
* turns desired state + health into the kernel table (policy.py) and applies it by netlink *diff*
  (ipvs/plan.py): a weight change is one `set`, nothing is ever flushed;
* runs the health-check engine (health/engine.py) and, on a flip, re-plans immediately - no round trip;
* publishes a heartbeat, a stats snapshot and history to Redis every couple of seconds, and events through
  the disk-buffered EventLog (events.py), so nothing is lost while Redis is away;
* when the desired state names a peer (`failover`), runs the pair protocol (failover.py) in its own thread:
  the IPVS table is programmed on both directors, the VIPs are only up while this one is MASTER, a new
  MASTER sends gratuitous ARP for them, and the IPVS connection sync daemons copy the MASTER's connections
  to the BACKUP - all of it without Redis or the central side.

All kernel changes happen under one lock: applies from Celery and flips from health checks are serialised.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time

import redis

from . import conntable as conntable_mod
from . import failover, keys, netfilter, policy, sysctl, vip
from .desired import DesiredState, ServiceSpec
from .events import EventLog
from .health.engine import HealthEngine
from .ipvs import model as ipvs_model
from .ipvs import plan as ipvs_plan
from .ipvs import wire as ipvs_wire
from .statefile import load_json, save_json

log = logging.getLogger(__name__)

REPORT_INTERVAL = 2.0
DRIFT_EVERY = 5  # reporter ticks between drift checks
GARP_REPEATS = (1.0, 2.0)  # seconds after becoming MASTER when the gratuitous ARPs are sent again


def svc_id(spec: ServiceSpec) -> str:
    return keys.service_id(spec.protocol, spec.address, spec.port, spec.fwmark, spec.family)


class Agent:
    """Owns this director's kernel state. Thread-safe; see module docstring."""

    def __init__(self, name: str, state_dir: str, redis_url: str, netns: str | None = None):
        self.name = name
        self.state_dir = state_dir
        self.netns = netns
        self.redis = redis.Redis.from_url(
            redis_url, socket_timeout=3, socket_connect_timeout=2, decode_responses=True
        )
        self.events = EventLog(os.path.join(state_dir, "events.jsonl"), name)
        self.desired: DesiredState | None = None
        self.health: dict[str, bool | None] = {}  # dest id -> up?
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._reporter: threading.Thread | None = None
        self._last_drift: list[str] = []
        self._host_applied: tuple | None = None  # host settings last applied without error
        self._flips: queue.Queue = queue.Queue()
        self._flipper: threading.Thread | None = None
        self.engine = HealthEngine(on_change=self._on_health_change)
        self.wire = ipvs_wire.Wire(netns=netns) if netns else ipvs_wire.Wire()
        # remembers the kernel table it last left, so a drain or a flip costs its own ops, not a full dump
        # (a full dump still happens on start, after an error, and at least once a minute)
        self.reconciler = ipvs_plan.Reconciler(self.wire, full_every=60.0)
        # director pair (failover.py): the runner lives in its own thread; `ha_state` is what _reconcile reads
        self.ha_state = failover.INIT
        self.ha: failover.Runner | None = None
        self._ha_config: dict | None = None
        self._ha_thread: threading.Thread | None = None
        self._ha_stop = threading.Event()
        self._ha_resign = False  # when stopping the pair thread: hand over to the peer at once
        self._garp_due: list[float] = []

    @classmethod
    def from_env(cls) -> Agent:
        return cls(
            name=os.environ["UMW_DIRECTOR"],
            state_dir=os.environ.get("UMW_STATE_DIR", "/var/lib/ultramonkey"),
            redis_url=os.environ.get("UMW_REDIS_URL", "redis://127.0.0.1:6379/0"),
        )

    # -- paths ---------------------------------------------------------------------------------------------
    @property
    def desired_path(self) -> str:
        return os.path.join(self.state_dir, "desired.json")

    @property
    def health_path(self) -> str:
        return os.path.join(self.state_dir, "health.json")

    @property
    def revision(self) -> int:
        return self.desired.revision if self.desired else 0

    # -- life cycle ----------------------------------------------------------------------------------------
    def start(self) -> None:
        """Restore, re-apply, start checks and reporting. Never needs Redis to succeed."""
        os.makedirs(self.state_dir, exist_ok=True)
        self.health = {k: v for k, v in (load_json(self.health_path, {}) or {}).items()}
        saved = load_json(self.desired_path)
        self.engine.start()
        if saved:
            with self._lock:
                self.desired = DesiredState.from_dict(saved)
                result = self._reconcile(force_host=True, full=True)
                self._update_engine()
            self.events.emit(
                "agent",
                f"agent started, restored revision {self.revision}: {result['ops']} kernel operation(s)",
                data=result,
            )
        else:
            self.events.emit("agent", "agent started with no saved state")
        self._update_failover()
        self._stop.clear()
        self._flipper = threading.Thread(target=self._flip_loop, name="umw-flips", daemon=True)
        self._flipper.start()
        self._reporter = threading.Thread(target=self._report_loop, name="umw-reporter", daemon=True)
        self._reporter.start()

    def stop(self) -> None:
        self._stop_failover(resign=True)
        self._stop.set()
        self.engine.stop()
        for thread in (self._flipper, self._reporter):
            if thread is not None:
                thread.join(timeout=10)
        self.events.emit("agent", "agent stopped")
        self.events.flush(self.redis)

    # -- desired state ---------------------------------------------------------------------------------------
    def apply_desired(self, desired: dict, job_id: int | None = None) -> dict:
        """Store and apply a new desired state; report the result as an apply event (and return it)."""
        started = time.monotonic()
        try:
            state = DesiredState.from_dict(desired)
        except (TypeError, ValueError, KeyError) as exc:
            result = {
                "revision": desired.get("revision", 0),
                "job_id": job_id,
                "ops": 0,
                "errors": [f"invalid desired state: {exc}"],
            }
            self.events.emit("apply", f"rejected desired state: {exc}", level="error", data=result)
            self._flush_soon()
            return result
        with self._lock:
            if self.desired is not None and state.revision < self.desired.revision:
                result = {
                    "revision": self.desired.revision,
                    "job_id": job_id,
                    "ops": 0,
                    "errors": [],
                    "stale": state.revision,
                }
                self.events.emit(
                    "apply",
                    f"ignored stale revision {state.revision} (have {self.desired.revision})",
                    data=result,
                )
                self._flush_soon()
                return result
            save_json(self.desired_path, state.to_dict())
            self.desired = state
            result = self._reconcile()
            self._update_engine()
        self._update_failover()
        result.update(job_id=job_id, revision=state.revision, seconds=round(time.monotonic() - started, 6))
        level = "error" if result["errors"] else "info"
        msg = f"applied revision {state.revision}: {result['ops']} kernel operation(s)"
        if result["errors"]:
            msg += f", {len(result['errors'])} failed"
        self.events.emit("apply", msg, level=level, data=result)
        self._flush_soon()
        return result

    def _kernel_table(self) -> list:
        """Desired kernel services with their dests, from desired state and health."""
        table = []
        for spec in self.desired.services if self.desired else ():
            sid = svc_id(spec)
            health = {r.key: self.health.get(keys.dest_id(sid, r.address, r.port)) for r in spec.reals}
            table.append(ipvs_model.service_from_spec(spec, policy.kernel_reals(spec, health)))
        return table

    def _reconcile(self, force_host: bool = False, full: bool = False) -> dict:
        """Make the kernel match; returns {"ops": n, "errors": [...]}. Caller holds the lock.

        The host settings (ip_forward, VIPs, masquerade) are only touched when they changed since the last
        successful apply, or when forced (agent start): a drain click must cost one netlink diff, not an
        nft run.
        """
        errors: list[str] = []
        ops = 0
        state = self.desired
        if state is None:
            return {"ops": 0, "errors": []}
        vips = self._active_vips(state)
        sync = self._sync_wanted(state)
        host = (state.ip_forward, state.wan_interface, vips, state.masquerade, sync)
        if force_host or host != self._host_applied:
            host_errors = []
            for label, fn in (
                (
                    "ip_forward",
                    lambda: sysctl.set_ip_forward(True, netns=self.netns) if state.ip_forward else None,
                ),
                ("vips", lambda: vip.ensure(state.wan_interface, list(vips), netns=self.netns)),
                (
                    "masquerade",
                    lambda: netfilter.ensure_masquerade(
                        state.wan_interface, list(state.masquerade), netns=self.netns
                    ),
                ),
                ("sync", lambda: self._ensure_sync(*sync) if sync else None),
            ):
                if label != "ip_forward" and not state.wan_interface:
                    continue
                try:
                    fn()
                except Exception as exc:  # reported; the IPVS part still goes ahead
                    host_errors.append(f"{label}: {exc}")
            errors += host_errors
            self._host_applied = None if host_errors else host
        try:
            report = self.reconciler(self._kernel_table(), full=full)
            ops += report.ops_done
            errors += [str(e) for e in report.errors]
        except Exception as exc:
            log.exception("IPVS apply failed")
            errors.append(f"ipvs: {exc}")
        return {"ops": ops, "errors": errors}

    # -- director pair -------------------------------------------------------------------------------------
    def _active_vips(self, state: DesiredState) -> tuple[str, ...]:
        """The VIPs to hold now: all of them for a lone director, none unless MASTER for one of a pair."""
        if not state.failover:
            return state.vips
        return state.vips if self.ha_state == failover.MASTER else ()

    def _sync_wanted(self, state: DesiredState) -> tuple[str, int] | None:
        """(interface, sync id) of the pair's connection sync, or None (no pair, sync off, no WAN interface)."""
        if not state.failover or not state.wan_interface:
            return None
        config = failover.Config.from_dict(state.failover)
        return (state.wan_interface, config.sync_id) if config.sync_daemon else None

    def _ensure_sync(self, wan: str, sync_id: int) -> None:
        """Both IPVS sync daemons on both directors of a pair, whatever the role: the MASTER's master daemon
        multicasts its connections on the WAN, the BACKUP's backup daemon keeps a copy, so a new MASTER finds
        the established connections already in its table. A BACKUP's master daemon has nothing to send, and
        not switching daemons (kernel threads) on a role change keeps that work off the takeover's path."""
        running = self.wire.daemons()
        for role in ("master", "backup"):
            current = running.get(role)
            if current == {"ifname": wan, "sync_id": sync_id}:
                continue
            if current:
                self.wire.stop_daemon(role)
            self.wire.start_daemon(role, wan, sync_id)

    def _update_failover(self) -> None:
        """Start, restart or stop the pair thread when the `failover` settings change. Never under the lock:
        stopping joins the thread, and its transitions take the lock."""
        wanted = self.desired.failover if self.desired else None
        if wanted == self._ha_config:
            return
        self._stop_failover(resign=True)
        self._ha_config = wanted
        if not wanted:
            with self._lock:
                self.ha_state = failover.INIT
                self._reconcile()  # a lone director again: its VIPs go up
            return
        config = failover.Config.from_dict(wanted)
        self._ha_stop = threading.Event()
        self._ha_thread = threading.Thread(
            target=self._ha_loop, args=(config, self._ha_stop), name="umw-failover", daemon=True
        )
        self._ha_thread.start()

    def _stop_failover(self, resign: bool) -> None:
        """Leave the pair: a MASTER drops its VIPs and resigns (priority 0) so the peer takes over at once."""
        thread = self._ha_thread
        if thread is None:
            return
        self._ha_resign = resign
        self._ha_stop.set()
        thread.join(timeout=10)
        self._ha_thread = None
        self.ha = None

    def _ha_loop(self, config: failover.Config, stop: threading.Event) -> None:
        """The pair thread: bind (retrying while the address is missing), then run the protocol until stopped."""
        transport = None
        for attempt in range(1_000_000):
            try:
                transport = failover.UdpTransport(config, netns=self.netns)
                break
            except OSError as exc:
                if attempt == 0:
                    self.events.emit(
                        "agent",
                        f"failover: cannot bind {config.local_address}:{config.port}: {exc}; retrying",
                        level="error",
                    )
                    self._flush_soon()
            if stop.wait(1.0):
                return
        if transport is None:
            return
        runner = failover.Runner(self.name, config, transport, self._on_ha_transition)
        self.ha = runner
        try:
            runner.start()
            while not stop.is_set():
                runner.step(max_wait=0.2)
                self._garp_repeat()
            if self._ha_resign and runner.state == failover.MASTER:
                with self._lock:
                    self.ha_state = failover.BACKUP
                    self._reconcile()
                runner.resign()
                self.events.emit("agent", "failover: left the pair, VIPs released", data={"ha": "resigned"})
        except Exception:
            log.exception("failover thread failed")
        finally:
            transport.close()
            with self._lock:
                self.ha_state = failover.INIT

    def _apply_vips(self) -> dict:
        """Only the VIPs, for a role change: the takeover time is what a client waits, so no nft run, no sysctl,
        no IPVS diff (the table is already programmed on both directors). Caller holds the lock."""
        state = self.desired
        if state is None or not state.wan_interface:
            return {"ops": 0, "errors": []}
        vips = self._active_vips(state)
        try:
            done = vip.ensure(state.wan_interface, list(vips), netns=self.netns)
        except Exception as exc:
            self._host_applied = None  # the next reconcile retries the host settings
            return {"ops": 0, "errors": [f"vips: {exc}"]}
        if self._host_applied is not None:
            ip_forward, wan, _, masquerade, sync = self._host_applied
            self._host_applied = (ip_forward, wan, vips, masquerade, sync)
        return {"ops": len(done["added"]) + len(done["removed"]), "errors": []}

    def _on_ha_transition(self, state: str, reason: str) -> None:
        """Pair-thread callback: VIPs follow the role, a new MASTER announces them, and it is an event."""
        started = time.monotonic()
        with self._lock:
            self.ha_state = state
            outcome = self._apply_vips()
            wan = self.desired.wan_interface if self.desired else ""
            vips = list(self.desired.vips) if self.desired else []
        garp = 0
        if state == failover.MASTER and wan:
            garp = self._send_garp(wan, vips)
            self._garp_due = [time.monotonic() + d for d in GARP_REPEATS]
        else:
            self._garp_due = []
        seconds = round(time.monotonic() - started, 4)
        self.events.emit(
            "agent",
            f"failover: {state}: {reason}",
            level="warning" if state == failover.MASTER else "info",
            data={"ha": state, "reason": reason, "garp": garp, "seconds": seconds, **outcome},
        )
        log.warning("failover: %s: %s (%s s)", state, reason, seconds)
        self._flush_soon()

    def _garp_repeat(self) -> None:
        """Gratuitous ARP again shortly after a takeover, in case the first frames met a busy neighbour."""
        if not self._garp_due or time.monotonic() < self._garp_due[0]:
            return
        self._garp_due = self._garp_due[1:]
        if self.ha_state == failover.MASTER and self.desired and self.desired.wan_interface:
            self._send_garp(self.desired.wan_interface, list(self.desired.vips))

    def _send_garp(self, wan: str, vips: list[str]) -> int:
        try:
            return failover.send_garp(wan, vips, netns=self.netns)
        except OSError as exc:
            log.warning("gratuitous ARP on %s failed: %s", wan, exc)
            return 0

    def ha_snapshot(self) -> dict | None:
        runner = self.ha
        if not self._ha_config:
            return None
        ago = runner.peer_seen_ago() if runner else None
        return {
            "state": self.ha_state,
            "priority": int(self._ha_config.get("priority", failover.DEFAULT_PRIORITY)),
            "peer_seen": None if ago is None else round(time.time() - ago, 3),
            "peer_seen_ago": None if ago is None else round(ago, 3),
            "peer": self._ha_config.get("peer_address"),
            "rejected": runner.rejected if runner else 0,
        }

    # -- health --------------------------------------------------------------------------------------------
    def _update_engine(self) -> None:
        self.engine.update(list(self.desired.services) if self.desired else [])

    def _on_health_change(self, service_key, real_key, up: bool, result) -> None:
        """Engine-thread callback: hand the flip to the agent's flip thread and return at once."""
        self._flips.put((service_key, real_key, up, result))

    def _flip_loop(self) -> None:
        """Act on flips: all flips pending at once become one kernel reconcile (a mass outage is one diff)."""
        while not self._stop.is_set():
            try:
                first = self._flips.get(timeout=0.5)
            except queue.Empty:
                continue
            batch = [first]
            while len(batch) < 10_000:
                try:
                    batch.append(self._flips.get_nowait())
                except queue.Empty:
                    break
            try:
                self._act_on_flips(batch)
            except Exception:
                log.exception("acting on health flips failed")

    def _act_on_flips(self, batch: list) -> None:
        changed = []
        with self._lock:
            for service_key, real_key, up, result in batch:
                spec = self._spec_for(service_key)
                if spec is None:
                    continue
                did = keys.dest_id(svc_id(spec), *real_key)
                if self.health.get(did) is up:
                    continue
                self.health[did] = up
                changed.append((spec, real_key, did, up, result))
            if not changed:
                return
            save_json(self.health_path, self.health)
            outcome = self._reconcile()
        for spec, (address, port), did, up, result in changed:
            state = "up" if up else "down"
            reason = getattr(result, "reason", "")
            where = f"{spec.address}:{spec.port}" if spec.protocol != "fwmark" else f"FWM {spec.fwmark}"
            self.events.emit(
                "check",
                f"real server {address}:{port} of {spec.protocol.upper()} {where} is {state}: {reason}",
                level="info" if up else "warning",
                service=svc_id(spec),
                real=did,
                health=state,
                data={
                    "reason": reason,
                    "latency": getattr(result, "latency", None),
                    "ops": outcome["ops"],
                    "errors": outcome["errors"],
                },
            )
        self._flush_soon()

    def _spec_for(self, service_key) -> ServiceSpec | None:
        for spec in self.desired.services if self.desired else ():
            if spec.key == service_key or svc_id(spec) == service_key:
                return spec
        return None

    # -- reporting -----------------------------------------------------------------------------------------
    def _flush_soon(self) -> None:
        """Try to send events right away (bounded by the client timeouts); the reporter retries anyway."""
        try:
            self.events.flush(self.redis)
        except Exception:
            log.debug("immediate event flush failed", exc_info=True)

    def snapshot(self, dump: list | None = None) -> dict:
        """Kernel table with stats + last check results, in the shape director/keys.py documents.

        `dump` is a kernel dump the caller already has (the reporter shares one with drift()).
        """
        with self._lock:
            specs = list(self.desired.services) if self.desired else []
        kernel = {ipvs_model.service_id_of(s): s for s in (self.wire.dump() if dump is None else dump)}
        results = self.engine.results()
        services = {}
        for spec in specs:
            sid = svc_id(spec)
            ksvc = kernel.get(sid)
            kdests = {ipvs_model.dest_id_of(sid, d): d for d in (ksvc.dests if ksvc else ())}
            dests = {}
            healthy = 0
            for real in spec.reals:
                did = keys.dest_id(sid, real.address, real.port)
                # the kernel holds port-0 reals on the service port
                kd = kdests.get(keys.dest_id(sid, real.address, ipvs_model.real_port(spec, real)))
                res = results.get((spec.key, real.key))
                up = self.health.get(did)
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
                "label": f"{spec.protocol.upper()} {spec.address}:{spec.port}"
                if spec.protocol != "fwmark"
                else f"FWM {spec.fwmark}",
                "scheduler": spec.scheduler,
                "stats": ipvs_model.stats_dict(ksvc.stats) if ksvc else {},
                "healthy": healthy,
                "total": len(spec.reals),
                "quorum": healthy >= spec.check.quorum,
                "dests": dests,
            }
        return {
            "time": time.time(),
            "revision": self.revision,
            "director": self.name,
            "drift": self._last_drift,
            "services": services,
            "ha": self.ha_snapshot(),
        }

    def drift(self, dump: list | None = None) -> list[str]:
        from . import drift as drift_mod

        with self._lock:
            table = self._kernel_table()
        return drift_mod.report(table, self.wire.dump() if dump is None else dump)

    def conntable(
        self,
        service: str | None = None,
        client: str = "",
        real: str = "",
        state: str = "",
        port: int | None = None,
        limit: int = conntable_mod.DEFAULT_LIMIT,
    ) -> dict:
        """The connection table, filtered, counted and ordered (conntable.query; bounded by its READ_MAX)."""
        return conntable_mod.query(
            service=service, client=client, real=real, state=state, port=port, limit=limit, netns=self.netns
        )

    def _report_loop(self) -> None:
        tick = 0
        while not self._stop.wait(0 if tick == 0 else REPORT_INTERVAL):
            tick += 1
            try:
                self.report_once(check_drift=tick % DRIFT_EVERY == 1)
            except Exception:
                log.debug("report failed", exc_info=True)

    def report_once(self, check_drift: bool = False) -> None:
        """Heartbeat, snapshot, history, drift and the event backlog: one bounded round (one kernel dump)."""
        dump = self.wire.dump()
        if check_drift:
            found = self.drift(dump)
            if found != self._last_drift:
                if found:
                    self.events.emit(
                        "drift",
                        f"kernel differs from desired state: {len(found)} difference(s)",
                        level="warning",
                        data={"drift": found},
                    )
                elif self._last_drift:
                    self.events.emit("drift", "kernel matches desired state again")
                self._last_drift = found
        snap = self.snapshot(dump)
        now = snap["time"]
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(
            keys.heartbeat_key(self.name),
            json.dumps({"time": now, "revision": self.revision}),
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
