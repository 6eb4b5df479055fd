"""The reporting part of the agent: live stats, drift and the report loop that publishes them to Redis.

Why a room of its own: it only reads (the kernel dump, the desired state, health, the pair's view) and writes
to Redis, never to the kernel, so it can change shape without touching what keeps the data plane up. It reads
the agent through the callbacks it was built with; a Redis outage costs a failed round, never the agent.

Proportional to change (issue 17): the kernel is read through a Scanner (ipvs/scan.py) that re-reads only the
services whose counters moved, a record is rebuilt only for a service that changed (kernel, health, desired
state) plus a rolling slice so health latencies stay fresh, and Redis gets only the records whose text changed
(records.py; the layout is in keys.py). Everything is rewritten on start, after a failed round and every
keys.RESYNC seconds, so a reader never depends on a delta it missed.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable

from . import drift as drift_mod
from . import keys, records
from .desired import ServiceSpec
from .events import EventLog
from .ipvs import model as ipvs_model

log = logging.getLogger(__name__)

REPORT_INTERVAL = 2.0
DRIFT_EVERY = 15  # reporter ticks between drift checks (whole table: ~0.2 s of CPU at 37k real servers)
RESYNC_CHUNK = 256  # records per pipeline of a full rewrite
DRIFT_SLICES = 15  # with table_for: drift compares 1/DRIFT_SLICES of the table each round
REFRESH_ROUNDS = max(
    1, int(keys.HEALTH_REFRESH / REPORT_INTERVAL)
)  # rolling rebuild: every record this often


class Reporter:
    """Heartbeat, live stats, history, drift and the event backlog, every REPORT_INTERVAL seconds."""

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
        scanner=None,
        table_for: Callable[[list[ServiceSpec]], list] | None = None,
        clock: Callable[[], float] = time.time,
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
        # ipvs/scan.Scanner: the kernel read in proportion to change; without one, a whole dump every round
        self.scanner = scanner
        # the wanted kernel table of some desired services: drift a share at a time (see _drift_slice)
        self.table_for = table_for
        self._drift_parts: dict[int, list[str]] = {}
        self._drift_seen: dict[int, tuple] = {}  # slice -> (wanted part, kernel part) last compared
        self._wanted_by_sid: dict[str, object] = {}  # service id -> the kernel Service it should be (drift)
        self.clock = clock
        self.last_drift: list[str] = []
        self._records: dict[str, str] = {}  # service id -> record text, as built last
        self._summaries: dict[str, str] = {}
        self._shipped: dict[str, str] = {}  # what Redis holds (after the last round that succeeded)
        self._shipped_summaries: dict[str, str] = {}
        self._maybe: set[str] = set()  # service ids that may have a record in Redis (written, not deleted)
        self._samples: dict[str, tuple] = {}  # dest id -> the last history point written
        self._kernel: dict[str, object] = {}  # service id -> kernel Service, as last read
        self._seen_revision: int | None = None
        self._layouts: dict[str, tuple] = {}  # service id -> Reporter._layout of its desired spec
        self._sorted: list[str] = []  # those ids in order: the rolling slices
        self._health_stamp = 0  # bumped when a health verdict changes
        self._wanted: tuple | None = None  # ((revision, health stamp), the table drift compares with)
        self._built_from: dict[str, tuple] = {}
        self._read_at: float | None = None
        self._epoch: float | None = (
            None  # history: a real server without a point since then was all zeros  # service id -> ids of the health results its record shows
        )
        self._seen_health: dict = {}
        self._resync_at: float | None = None  # None: the next round rewrites everything
        self._round = 0
        self.last_round: dict = {}  # what the last round did (benchmarks, logs)

    # -- building records -------------------------------------------------------------------------------
    @staticmethod
    def _layout(spec: ServiceSpec) -> tuple:
        """What building a service's record needs that depends on the desired state only, computed once per
        revision (ids and keys parse addresses): (spec, sid, spec key, [(real, dest id, kernel dest id, real
        key)])."""
        sid = keys.service_key_for(spec)
        reals = tuple(
            # the kernel holds port-0 reals on the service port
            (real, keys.dest_id(sid, real.address, real.port),
             keys.dest_id(sid, real.address, ipvs_model.real_port(spec, real)), real.key)
            for real in spec.reals
        )  # fmt: skip
        return (spec, sid, spec.key, reals)

    @staticmethod
    def _record(layout: tuple, ksvc, results: dict, health: dict) -> dict:
        """One service as the pages show it: the kernel's numbers for each desired real and its health."""
        spec, sid, skey, reals = layout
        # kernel addresses are canonical already (codec), so the dest id is a plain join
        kdests = {f"{sid}|{d.address}|{d.port}": d for d in ksvc.dests} if ksvc else {}
        dests = {}
        healthy = 0
        for real, did, kid, rkey in reals:
            kd = kdests.get(kid)
            res = results.get((skey, rkey))
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
        return {
            "label": spec.label,
            "scheduler": spec.scheduler,
            "stats": ipvs_model.stats_dict(ksvc.stats) if ksvc else {},
            "healthy": healthy,
            "total": len(spec.reals),
            "quorum": healthy >= spec.check.quorum,
            "dests": dests,
        }

    def snapshot(self, dump: list | None = None) -> dict:
        """The whole table with stats + last check results, in the shape of the old one-key snapshot (the
        `director.snapshot` task answers with it): built on demand from a kernel dump, O(table)."""
        kernel = {ipvs_model.service_id_of(s): s for s in (self.dump() if dump is None else dump)}
        results, health = self.results(), self.health()
        services = {}
        for spec in self.specs():
            layout = self._layout(spec)
            services[layout[1]] = self._record(layout, kernel.get(layout[1]), results, health)
        return {
            "time": time.time(),
            "revision": self.revision(),
            "director": self.name,
            "drift": self.last_drift,
            "services": services,
            "ha": self.ha(),
            "health_load": self.health_load() if self.health_load is not None else None,
        }

    def _relayout(self, specs: list[ServiceSpec]) -> set[str]:
        """Layouts for a new desired state; returns the ids of the services that are new or changed (an
        unchanged spec keeps its layout: a push that changes one service costs one service)."""
        old = self._layouts
        by_spec = {layout[0]: layout for layout in old.values()}
        fresh, moved = {}, set()
        for spec in specs:
            layout = by_spec.get(spec)
            if layout is None:
                layout = self._layout(spec)
                moved.add(layout[1])
            fresh[layout[1]] = layout
        moved.update(sid for sid in old if sid not in fresh)
        self._layouts = fresh
        self._sorted = sorted(fresh)
        return moved

    def _rebuild(self, which: set[str] | None, slice_: list[str]) -> None:
        """Rebuild the records of the services in `which` (None: all) and, of the rolling `slice_`, those
        whose health results differ from those their record was built from; drop the undesired."""
        results, health = self.results(), self.health()
        if which is None:
            todo = list(self._layouts.values())
        else:
            todo = [self._layouts[s] for s in which if s in self._layouts]
        if which is not None and (results or self._built_from):  # checks report latencies: look again
            for sid in slice_:
                layout = self._layouts[sid]
                seen = tuple(results.get((layout[2], r[3])) for r in layout[3])
                if seen != self._built_from.get(sid):
                    todo.append(layout)
        for layout in todo:
            sid = layout[1]
            self._built_from[sid] = tuple(results.get((layout[2], r[3])) for r in layout[3])
            record = self._record(layout, self._kernel.get(sid), results, health)
            self._records[sid] = records.encode(records.compact(record))
            self._summaries[sid] = records.encode(records.summary(record))
        for sid in [s for s in self._records if s not in self._layouts]:
            del self._records[sid]
            self._summaries.pop(sid, None)
            self._built_from.pop(sid, None)

    def _health_changes(self) -> set[str]:
        """Service ids whose health verdicts changed since the last round."""
        health = dict(self.health())  # a copy: the flip thread changes the agent's dict
        if health == self._seen_health:
            return set()
        old = self._seen_health
        self._seen_health = health
        moved = {did for did in set(health) | set(old) if health.get(did) != old.get(did)}
        return {did.rsplit("|", 2)[0] for did in moved}

    # -- the round --------------------------------------------------------------------------------------
    def drift(self, dump: list | None = None) -> list[str]:
        """How the kernel differs from what the desired state and health call for (drift.py), one line each.
        The wanted table is built again only when the revision or health changed (37k dests: seconds)."""
        stamp = (self.revision(), self._health_stamp)
        if self._wanted is None or self._wanted[0] != stamp:
            self._wanted = (stamp, self.table())
        return drift_mod.report(self._wanted[1], self.dump() if dump is None else dump)

    def loop(self, stop: threading.Event) -> None:
        """The reporter thread: a round at once, then every REPORT_INTERVAL, drift every DRIFT_EVERY rounds."""
        tick = 0
        due = time.monotonic()
        # a fixed cadence, not REPORT_INTERVAL after the end of the last round: the age of what a page reads
        # stays below REPORT_INTERVAL + one round, and a slow round is not followed by a full idle interval
        while not stop.wait(max(0.0, due - time.monotonic())):
            tick += 1
            try:
                self.report_once(check_drift=tick % DRIFT_EVERY == 1)
            except Exception:
                log.debug("report failed", exc_info=True)
            due = max(due + REPORT_INTERVAL, time.monotonic() + REPORT_INTERVAL / 4)

    def report_once(self, check_drift: bool = False) -> None:
        """Heartbeat, changed records, history, drift and the event backlog: one bounded round.

        What is read and rebuilt: with a scanner (ipvs/scan.py), the services whose counters moved, that are
        busy, that the desired state or a health flip changed, plus its rolling share of the table; without
        one, everything. Drift: a share of the table every round with `table_for` (_drift_slice), else the
        whole table when `check_drift`."""
        self._round += 1
        revision = self.revision()
        moved = self._health_changes()
        if moved:
            self._health_stamp += 1
        if revision != self._seen_revision:
            moved |= self._relayout(self.specs())
        for sid in moved:
            self._wanted_by_sid.pop(sid, None)
        self._read_at = self.clock()  # the time of the numbers: what pages compute their age from
        try:
            if self.scanner is None:
                table, changed = {ipvs_model.service_id_of(s): s for s in self.dump()}, None
            else:
                table, changed = self.scanner.scan(dirty=moved)
                changed |= moved
        except OSError:
            # No table to report (no ip_vs, no CAP_NET_ADMIN): the agent is still alive and connected, and the
            # events saying why (the agent's IPVS check, the failed applies) must reach the dashboard.
            self.redis.set(
                keys.heartbeat_key(self.name),
                json.dumps({"time": time.time(), "revision": revision}),
                ex=keys.HEARTBEAT_TTL,
            )
            self.events.flush(self.redis)
            raise
        self._seen_revision = revision
        self._kernel = table
        if self.table_for is not None:
            self._drift_slice()
        elif check_drift:
            self._check_drift(list(table.values()))
        # the rolling slice: every record is looked at again at least every HEALTH_REFRESH (check latencies)
        self._rebuild(changed, self._sorted[self._round % REFRESH_ROUNDS :: REFRESH_ROUNDS])
        self._ship(revision)
        self.events.flush(self.redis)

    def _check_drift(self, table: list) -> None:
        self._set_drift(self.drift(table))

    def _drift_slice(self) -> None:
        """Drift of this round's share of the table (1/DRIFT_SLICES of the desired services, plus any service
        the kernel has and the desired state does not), so the whole table is compared every DRIFT_SLICES
        rounds at a small cost each: a whole comparison at 37k real servers is seconds of CPU in one round,
        which would make that round's numbers late. plan.diff works service by service, so the parts add up
        to the whole."""
        k = self._round % DRIFT_SLICES
        part = self._sorted[k::DRIFT_SLICES]
        missing = [sid for sid in part if sid not in self._wanted_by_sid]
        if missing:  # wanted entries are built per service, again only when its desired state or health moved
            built = {
                ipvs_model.service_id_of(s): s
                for s in self.table_for([self._layouts[sid][0] for sid in missing])
            }
            for sid in missing:
                self._wanted_by_sid[sid] = built.get(sid)
        wanted = [w for w in (self._wanted_by_sid[sid] for sid in part) if w is not None]
        actual = [self._kernel[sid] for sid in part if sid in self._kernel]
        last = self._drift_seen.get(k)
        # the scanner keeps the very Service objects of services it did not re-read: same objects on both
        # sides = same answer, nothing to compare
        if (
            last is None
            or len(last[0]) != len(wanted)
            or len(last[1]) != len(actual)
            or any(a is not b for a, b in zip((*last[0], *last[1]), (*wanted, *actual), strict=True))
        ):
            self._drift_parts[k] = drift_mod.report(wanted, actual)
            self._drift_seen[k] = (wanted, actual)
        foreign = [svc for sid, svc in self._kernel.items() if sid not in self._layouts]
        self._drift_parts[DRIFT_SLICES] = drift_mod.report([], foreign)
        self._set_drift([line for i in range(DRIFT_SLICES + 1) for line in self._drift_parts.get(i, ())])

    def _set_drift(self, found: list[str]) -> None:
        """Keep `found` as the drift and say so in an event when it changed."""
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

    def _ship(self, revision: int) -> None:
        """Heartbeat, meta, the records and summaries that changed and the history points that moved: one
        MULTI/EXEC, so a reader sees a round whole or not at all.

        A full rewrite on the first round (after a DEL: the agent does not know what an earlier run left),
        after a round that failed (Redis may have missed anything) and every keys.RESYNC seconds, in chunks of
        RESYNC_CHUNK records before the round's MULTI: one huge MULTI at 37k real servers can take longer
        than the client's timeout on a loaded Redis, and would then fail for ever."""
        now = self._read_at if self._read_at is not None else self.clock()
        resync = self._resync_at is None or now - self._resync_at >= keys.RESYNC
        svc_key, sum_key = keys.service_stats_key(self.name), keys.summary_key(self.name)
        stamp = round(now, 1)
        points = 0
        if resync:
            if not self._samples:  # nothing known of what the history lists hold: a new epoch
                self._epoch = stamp
            changed, sums = dict(self._records), dict(self._summaries)
            removed = sorted(s for s in self._maybe if s not in self._records)
            try:
                ids = list(changed)
                for start in range(0, max(len(ids), 1), RESYNC_CHUNK):
                    pipe = self.redis.pipeline(transaction=False)
                    if start == 0 and not self._maybe:
                        pipe.delete(svc_key, sum_key)  # a fresh start: whatever is there is not ours to keep
                    part = {sid: changed[sid] for sid in ids[start : start + RESYNC_CHUNK]}
                    self._maybe.update(part)
                    if part:
                        pipe.hset(svc_key, mapping=part)
                        pipe.hset(sum_key, mapping={sid: sums[sid] for sid in part})
                    points += self._history(pipe, part, stamp, anchor=True)
                    pipe.execute()
            except Exception:
                self._failed()
                raise
            sums_removed = removed
        else:
            changed, removed = records.delta(self._shipped, self._records)
            sums, sums_removed = records.delta(self._shipped_summaries, self._summaries)
        pipe = self.redis.pipeline(transaction=True)
        if not resync:
            self._maybe.update(changed)
            if changed:
                pipe.hset(svc_key, mapping=changed)
            if sums:
                pipe.hset(sum_key, mapping=sums)
            points += self._history(pipe, changed, stamp)
        if removed:
            pipe.hdel(svc_key, *removed)
        if sums_removed:
            pipe.hdel(sum_key, *sums_removed)
        meta = {
            "format": keys.STATS_FORMAT,
            "time": now,
            "revision": revision,
            "director": self.name,
            "drift": self.last_drift,
            "ha": self.ha(),
            "count": len(self._records),
            "resync": now if resync else self._resync_at,
            "epoch": self._epoch,
            "health_load": self.health_load() if self.health_load is not None else None,
        }
        pipe.set(
            keys.heartbeat_key(self.name),
            json.dumps({"time": now, "revision": revision}),
            ex=keys.HEARTBEAT_TTL,
        )
        pipe.set(keys.stats_key(self.name), json.dumps(meta), ex=keys.STATS_TTL)
        pipe.expire(svc_key, keys.STATS_TTL)
        pipe.expire(sum_key, keys.STATS_TTL)
        try:
            pipe.execute()
        except Exception:
            self._failed()
            raise
        if resync:
            self._resync_at = now
        for sid in removed:
            self._maybe.discard(sid)
        self._shipped = dict(self._records)
        self._shipped_summaries = dict(self._summaries)
        self.last_round = {
            "records": len(changed),
            "removed": len(removed),
            "points": points,
            "resync": resync,
            "bytes": sum(len(k) + len(v) for k, v in changed.items())
            + sum(len(k) + len(v) for k, v in sums.items()),
        }

    def _failed(self) -> None:
        """A round that did not reach Redis: rewrite everything next time, history points included (what was
        sent may or may not have arrived)."""
        self._resync_at = None
        self._samples = {}

    def _history(self, pipe, changed: dict[str, str], now: float, anchor: bool = False) -> int:
        """A sparkline point for each real server of a changed record whose numbers moved (with `anchor`, also
        for those that are not all zero: their list's TTL is renewed); returns how many.

        A real server with no point since the history epoch (meta "epoch": the agent's first round, or the
        rewrite after a failed one) was all zeros then: readers assume it, so those points are not written -
        at 37k quiet real servers that is 110k commands less on every start."""
        written = 0
        for text in changed.values():
            for did, dest in (json.loads(text).get("dests") or {}).items():
                point = records.sample(dest)
                last = self._samples.get(did)
                if last == point and not (anchor and any(point)):
                    continue
                self._samples[did] = point
                if last is None and not any(point):
                    continue  # implied by the epoch
                hk = keys.history_key(self.name, did)
                pipe.rpush(hk, json.dumps({"t": now, **dict(zip(records.SAMPLE_FIELDS, point, strict=True))}))
                pipe.ltrim(hk, -keys.HISTORY_POINTS, -1)
                pipe.expire(hk, keys.HISTORY_TTL)
                written += 1
        return written
