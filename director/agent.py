"""The director agent: desired state in, kernel table out, health checks acting locally.

One `Agent` lives in the director's Celery worker process (see worker.py). It

* keeps the last desired state and health on local disk (statefile.py) and re-applies them on start, so a
  restart - or a central side that is gone - changes nothing in the data plane;
* turns desired state + health into the kernel table and applies it by netlink *diff* through `Host`
  (host.py: IPVS, VIPs, ip_forward, masquerade, sync daemons): a weight change is one `set`, nothing is
  ever flushed;
* runs the health-check engine (health/engine.py) in a supervised child process (health/process.py, as
  keepalived runs its checker child: the checks keep their own interpreter lock whatever the worker does)
  and, on a flip, re-plans immediately - no round trip - on its own thread, in O(changed): only the
  flipped real servers' services are recomputed and patched;
* publishes a heartbeat, a stats snapshot, history and drift to Redis through `Reporter` (report.py), and
  events through the disk-buffered EventLog (events.py), so nothing is lost while Redis is away;
* when the desired state names a peer (`failover`), lets `Pair` (pair.py) run keepalived's VRRP: the IPVS
  table is programmed on both directors, keepalived holds the VIPs on the MASTER only - all of it without
  Redis or the central side.

This module only wires those parts together with callbacks (none of them imports it). All kernel changes
happen under one lock: applies from Celery, flips from health checks and role changes are serialised.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import logging
import os
import queue
import threading
import time

import redis

from . import keys, schema, signing
from .desired import DesiredState, ServiceSpec
from .events import EventLog
from .health.process import CheckerProcess
from .host import Host, kernel_table
from .ipvs.scan import Scanner
from .pair import Pair
from .report import Reporter
from .statefile import load_json, save_json

log = logging.getLogger(__name__)
HEALTH_WRITE_EVERY = 1.0  # s: the health file is rewritten at most this often while flips keep coming
EVENT_FLUSH_EVERY = 1.0  # s: flip events are sent to Redis at most this often (the disk has them at once)
FLIP_BATCH_MAX = 10_000  # flips taken off the queue in one go (one patch of the kernel)
TRUST_FILE = "/etc/ultramonkey/central.pub"  # the central side's public signing key(s), root's file


class Agent:
    """Owns this director's desired state and health, and wires host, pair and reporter. Thread-safe."""

    def __init__(
        self,
        name: str,
        state_dir: str,
        redis_url: str,
        netns: str | None = None,
        *,
        trust_file: str = TRUST_FILE,
        external_dir: str | None = None,
        redis_options: dict | None = None,
    ):
        self.name = name
        self.state_dir = state_dir
        self.netns = netns
        self.redis = redis.Redis.from_url(
            redis_url,
            socket_timeout=3,
            socket_connect_timeout=2,
            decode_responses=True,
            **(redis_options or {}),
        )
        # signed desired state (signing.py): who may tell this agent what to do
        self.trust = signing.Trust(trust_file, os.path.join(state_dir, "trusted_keys.json"))
        # external check programs: only from this root-owned directory, None = refused (schema.py)
        self.external_dir = external_dir
        self.events = EventLog(os.path.join(state_dir, "events.jsonl"), name)
        self.desired: DesiredState | None = None
        self._specs_by_key: dict = {}  # engine's service key or service id -> (spec, service id, position)
        self.health: dict[str, bool | None] = {}  # dest id -> up?
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._reporter: threading.Thread | None = None
        self._flips: queue.Queue = queue.Queue()
        self._flipper: threading.Thread | None = None
        self._health_dirty = False  # flips applied but not yet in the health file
        self._health_written = float("-inf")
        self._events_pending = False  # flip events on disk, not yet sent
        self._events_flushed = float("-inf")
        # the checks run in a child process (health/checker.py: own interpreter lock, own crashes, lean)
        self.engine = CheckerProcess(
            on_change=self._on_health_change,
            on_event=lambda level, msg: self.events.emit("agent", msg, level=level),
        )
        self.host = Host(netns)
        self.pair = Pair(
            name,
            netns,
            self._lock,
            directory=os.path.join(state_dir, "keepalived"),
            program=self._reconcile,
            emit=self.events.emit,
            flush=self._flush_soon,
            daemons=self._daemons,
        )
        self.reporter = Reporter(
            name,
            self.redis,
            self.events,
            dump=self.host.dump,
            specs=self._specs,
            table=self._table,
            revision=lambda: self.revision,
            health=lambda: self.health,
            results=self.engine.results,
            ha=self.pair.snapshot,
            health_load=lambda: self.engine.load().as_dict(),
            scanner=Scanner(self.host.wire),
            table_for=self._table_for,
        )

    @classmethod
    def from_env(cls) -> Agent:
        from . import transport

        return cls(
            name=os.environ["UMW_DIRECTOR"],
            state_dir=os.environ.get("UMW_STATE_DIR", "/var/lib/ultramonkey"),
            redis_url=os.environ.get("UMW_REDIS_URL", "redis://127.0.0.1:6379/0"),
            trust_file=os.environ.get("UMW_TRUST_FILE") or TRUST_FILE,
            external_dir=os.environ.get("UMW_EXTERNAL_CHECK_DIR") or None,
            redis_options=transport.redis_options_from_env(),
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
        self._check_ipvs()
        restored = None
        if saved:
            try:  # the file is ours, but the rules (e.g. the external-check directory) may have changed
                restored = schema.parse(saved, external_dir=self.external_dir)
            except schema.Invalid as exc:
                self.events.emit("agent", f"saved desired state not restored: {exc}", level="error")
        if restored is not None:
            with self._lock:
                self._set_desired(restored)
                result = self._reconcile(force_host=True, full=True)
                self._update_engine()
            self.events.emit(
                "agent",
                f"agent started, restored revision {self.revision}: {result['ops']} kernel operation(s)",
                data=result,
            )
        else:
            self.events.emit("agent", "agent started with no saved state")
        self.pair.update(self.desired)
        self._stop.clear()
        self._flipper = threading.Thread(target=self._flip_loop, name="umw-flips", daemon=True)
        self._flipper.start()
        self._reporter = threading.Thread(
            target=self.reporter.loop, args=(self._stop,), name="umw-reporter", daemon=True
        )
        self._reporter.start()

    def _check_ipvs(self) -> None:
        """Say, in the log and as an error event, when the kernel's IPVS table cannot be read: on a host
        without the ip_vs module every apply fails, and the operator should learn why (on start, and after
        an apply with errors, since the director may not exist centrally yet when the agent starts)."""
        try:
            self.host.dump()
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.EPROTO):
                msg = (
                    f"IPVS is not available in this kernel ({exc}): load the module on the director "
                    "(`modprobe ip_vs`, and list ip_vs in /etc/modules-load.d/); a container cannot load it"
                )
            elif exc.errno == errno.EPERM:
                msg = f"cannot read the IPVS table ({exc}): the agent needs CAP_NET_ADMIN"
            else:
                msg = f"cannot read the IPVS table: {exc}"
            log.error(msg)
            self.events.emit("agent", msg, level="error")

    def stop(self) -> None:
        self.pair.stop()
        self._stop.set()
        self.engine.stop()
        for thread in (self._flipper, self._reporter):
            if thread is not None:
                thread.join(timeout=10)
        self._housekeep(force=True)
        self.events.emit("agent", "agent stopped")
        self.events.flush(self.redis)

    # -- desired state ---------------------------------------------------------------------------------------
    def receive(self, message) -> dict:
        """A signed desired state from the queue: verify it (signing.py), then `apply_desired`. Never raises.

        Signature, this director's own name and the payload's shape are checked before anything else; a
        message that fails is an error event and changes nothing (not the state file, not the kernel)."""
        try:
            payload = self.trust.open(message, self.name)
        except signing.Rejected as exc:
            return self._reject(f"rejected desired state: {exc}", None)
        except Exception as exc:  # noqa: BLE001 - whatever arrives, the agent keeps serving
            log.exception("verifying a desired state failed")
            return self._reject(f"rejected desired state: {exc.__class__.__name__}: {exc}", None)
        return self.apply_desired(payload["state"], job_id=payload.get("job_id"), trust=payload.get("trust"))

    def _reject(self, reason: str, job_id: int | None, **extra) -> dict:
        """Report a desired state that was not applied. The revision reported is the one still applied, so
        a rejected message can never move the dashboard's idea of what this director runs."""
        reason = reason[:1000]
        result = {"revision": self.revision, "job_id": job_id, "ops": 0, "errors": [reason], **extra}
        log.warning("%s", reason)
        self.events.emit("apply", reason, level="error", data=result)
        self._flush_soon()
        return result

    def apply_desired(self, desired, job_id: int | None = None, trust: list | None = None) -> dict:
        """Validate, store and apply a new desired state; report the result as an apply event (and return it).

        Order matters: the strict schema (schema.py) and the revision check run before the state file is
        written, so nothing invalid or stale ever reaches disk or kernel. The revision must be newer than
        the applied one; the same revision again is accepted only with the same content (a re-delivery).
        Any exception after that is caught and reported as the job's failure: the agent keeps serving.
        """
        started = time.monotonic()
        try:
            state = schema.parse(desired, external_dir=self.external_dir)
        except schema.Invalid as exc:
            return self._reject(f"invalid desired state: {exc}", job_id)
        with self._lock:
            if self.desired is not None and state.revision <= self.desired.revision:
                if state == self.desired:
                    result = {"revision": state.revision, "job_id": job_id, "ops": 0, "errors": []}
                    self.events.emit("apply", f"revision {state.revision} is already applied", data=result)
                    self._flush_soon()
                    return result
                return self._reject(
                    f"rejected desired state: revision {state.revision} is not newer than the applied "
                    f"revision {self.desired.revision}",
                    job_id,
                    stale=state.revision,
                )
            try:
                save_json(self.desired_path, state.to_dict())
            except Exception as exc:  # noqa: BLE001 - a full disk must not leave a half-applied state
                return self._reject(f"cannot store desired state: {exc}", job_id)
            previous = self.desired
            self._set_desired(state)
            try:
                result = self._reconcile(services=_changed_services(previous, state))
                self._update_engine()
            except Exception as exc:  # noqa: BLE001 - reported as the job's failure, the agent keeps serving
                log.exception("applying revision %s failed", state.revision)
                result = {"ops": 0, "errors": [f"apply: {exc.__class__.__name__}: {exc}"[:500]]}
        try:
            self.pair.update(state)
        except Exception as exc:  # noqa: BLE001
            log.exception("failover update failed")
            result["errors"].append(f"failover: {exc}"[:500])
        if trust:
            try:
                self.trust.learn(trust)
            except Exception:  # noqa: BLE001 - keeping the old keys is safe; say so in the log
                log.exception("could not store the signing keys named by revision %s", state.revision)
        result.update(job_id=job_id, revision=state.revision, seconds=round(time.monotonic() - started, 6))
        if result["errors"]:
            self._check_ipvs()  # a kernel without IPVS fails every apply: say so, not only "1 failed"
        level = "error" if result["errors"] else "info"
        msg = f"applied revision {state.revision}: {result['ops']} kernel operation(s)"
        if result["errors"]:
            msg += f", {len(result['errors'])} failed"
        self.events.emit("apply", msg, level=level, data=result)
        self._flush_soon()
        return result

    def _set_desired(self, state: DesiredState) -> None:
        """Take a new desired state and index its services for flips (O(services), once per state)."""
        index = {}
        for pos, spec in enumerate(state.services):
            sid = keys.service_key_for(spec)
            index.setdefault(spec.key, (spec, sid, pos))
            index.setdefault(sid, (spec, sid, pos))
        self.desired, self._specs_by_key = state, index

    def _reconcile(self, force_host: bool = False, full: bool = False, services=None) -> dict:
        """Make the kernel match desired state, health and the pair's role. Caller holds the lock.

        `services`: the only specs whose kernel service may have changed (Host.reconcile patches just
        those); None = the whole table."""
        state = self.desired
        if state is None:
            return {"ops": 0, "errors": []}
        return self.host.reconcile(
            state,
            self.health,
            self.pair.active_vips(state),
            self.pair.sync_wanted(state),
            force_host=force_host,
            full=full,
            services=services,
        )

    def _daemons(self) -> dict:
        """The IPVS sync daemons running now (for the pair's snapshot; one netlink query, under the lock)."""
        with self._lock:
            return self.host.wire.daemons()

    # -- health --------------------------------------------------------------------------------------------
    def _update_engine(self) -> None:
        self.engine.update(list(self.desired.services) if self.desired else [])

    def _on_health_change(self, service_key, real_key, up: bool, result) -> None:
        """Checker-process callback (its supervisor thread): hand the flip to the flip thread, return at once."""
        self._flips.put((service_key, real_key, up, result))

    def _flip_loop(self) -> None:
        """Act on flips off the checking loop: whatever is queued becomes one patch of the kernel.

        The engine only queues (`_on_health_change`); here flips are coalesced per real server and applied in
        O(changed) (Host.reconcile with `services`), then the health file and the events follow, batched and
        rate-limited (`_housekeep`), so a mass outage costs the checks neither a table-wide diff nor a file
        write and an fsync per flip."""
        while not self._stop.is_set():
            batch = []
            try:
                batch.append(self._flips.get(timeout=0.2))
            except queue.Empty:
                pass
            while batch and len(batch) < FLIP_BATCH_MAX:
                try:
                    batch.append(self._flips.get_nowait())
                except queue.Empty:
                    break
            try:
                if batch:
                    self._act_on_flips(batch)
                self._housekeep()
            except Exception:
                log.exception("acting on health flips failed")

    def _act_on_flips(self, batch: list) -> None:
        """Apply a batch of flips: the last word per real server counts, the kernel changes first."""
        latest: dict[str, tuple] = {}
        position: dict[str, int] = {}  # service id -> its place in the table (the patch keeps its order)
        with self._lock:
            for service_key, real_key, up, result in batch:
                found = self._specs_by_key.get(service_key)
                if found is None:
                    continue  # a flip for a service the desired state no longer has
                spec, sid, position[sid] = found
                did = keys.dest_id(sid, *real_key)
                flips = latest[did][-1] + 1 if did in latest else 1
                latest[did] = (spec, sid, real_key, up, result, flips)
            changed = [(did, *item) for did, item in latest.items() if self.health.get(did) is not item[3]]
            if not changed:
                return
            for did, *_, up, _result, _flips in changed:
                self.health[did] = up
            self._health_dirty = True
            touched = {sid: spec for _, spec, sid, *_ in changed}
            outcome = self._reconcile(services=[touched[sid] for sid in sorted(touched, key=position.get)])
        events = []
        for did, spec, sid, (address, port), up, result, flips in changed:
            state = "up" if up else "down"
            reason = getattr(result, "reason", "")
            events.append(
                dict(
                    kind="check",
                    message=f"real server {address}:{port} of {spec.label} is {state}: {reason}",
                    level="info" if up else "warning",
                    service=sid,
                    real=did,
                    health=state,
                    data={
                        "reason": reason,
                        "latency": getattr(result, "latency", None),
                        "flips": flips,
                        "ops": outcome["ops"],
                        "errors": outcome["errors"][:20],
                    },
                )
            )
        self.events.emit_many(events)
        self._events_pending = True

    def _housekeep(self, force: bool = False) -> None:
        """Write the health file and send flip events, each at most once per period (or now, when forced).

        The kernel already holds the flips; the file only lets a restart start from them, so losing the
        last second of flips in a crash costs a re-check, never a wrong kernel table."""
        now = time.monotonic()
        if self._health_dirty and (force or now - self._health_written >= HEALTH_WRITE_EVERY):
            with self._lock:
                health = dict(self.health)
                self._health_dirty = False
            self._health_written = now
            try:
                save_json(self.health_path, health)
            except OSError:
                self._health_dirty = True
                log.exception("cannot write the health file")
        if self._events_pending and (force or now - self._events_flushed >= EVENT_FLUSH_EVERY):
            self._events_pending = False
            self._events_flushed = now
            self._flush_soon()

    # -- reporting -----------------------------------------------------------------------------------------
    def _flush_soon(self) -> None:
        """Try to send events right away (bounded by the client timeouts); the reporter retries anyway."""
        try:
            self.events.flush(self.redis)
        except Exception:
            log.debug("immediate event flush failed", exc_info=True)

    def _specs(self) -> list[ServiceSpec]:
        with self._lock:
            return list(self.desired.services) if self.desired else []

    def _table(self) -> list:
        with self._lock:
            return kernel_table(self.desired, self.health, self.host.quorum)

    def _table_for(self, specs: list[ServiceSpec]) -> list:
        """The kernel table the desired state and health call for, for some of the desired services only
        (the reporter's drift check, a share per round). The quorum memory is copied: checking is not acting."""
        with self._lock:
            if self.desired is None:
                return []
            partial = dataclasses.replace(self.desired, services=tuple(specs))
            return kernel_table(partial, self.health, dict(self.host.quorum))

    def snapshot(self, dump: list | None = None) -> dict:
        """Kernel table with stats + last check results (report.py), for the `director.snapshot` task."""
        return self.reporter.snapshot(dump)

    def reply(self, task_id: str, answer: dict) -> None:
        """Answer a query task on this director's own reply key (keys.reply_key); the asker BLPOPs it."""
        key = keys.reply_key(self.name, str(task_id))
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.rpush(key, json.dumps(answer, default=str))
            pipe.expire(key, keys.REPLY_TTL)
            pipe.execute()
        except redis.RedisError as exc:  # the asker times out and says the director is not answering
            log.warning("cannot send the reply to %s: %s", task_id, exc)

    def conntable(self, **filters) -> dict:
        """The connection table, filtered, counted and ordered (conntable.query; bounded by its READ_MAX).
        `filters` are Host.conntable's keywords (service, client, real, state, port, limit), passed straight
        through so the filter list and its defaults live in one place."""
        return self.host.conntable(**filters)


def _changed_services(old: DesiredState | None, new: DesiredState) -> list[ServiceSpec] | None:
    """The services of `new` that differ from `old`'s when both name the same services in the same order -
    an admin change (weight, drain, maintenance) - so only those are recomputed and patched; None (the whole
    table is diffed) when services were added, removed or reordered, or there is no previous state."""
    if old is None or len(old.services) != len(new.services):
        return None
    changed = []
    for was, spec in zip(old.services, new.services, strict=True):
        if (was.protocol, was.address, was.port, was.fwmark, was.family) != (
            spec.protocol,
            spec.address,
            spec.port,
            spec.fwmark,
            spec.family,
        ):
            return None
        if was != spec:
            changed.append(spec)
    return changed
