"""From "what the kernel holds" to "what it should hold": a pure diff into ordered operations, and reconcile.

Rules
-----
* Everything the kernel can change in place is a ``set``: a service's scheduler, flags, persistence timeout,
  netmask and persistence engine; a dest's forwarding method, weight, thresholds and tunnel settings.
  A weight change is one SET_DEST - connections of that dest are never dropped.
* Only what is part of a kernel *key* cannot change in place: a service is keyed by (family, protocol,
  address, port) or (family, fwmark), a dest by (family, address, port) inside its service. Changing any of
  those - a VIP, a port, a real server's address (and with it its address family) - is a new entry: it is
  added first and the old one deleted afterwards.
* There is no flush, ever: services the desired table does not name are deleted one by one.

Order (chosen so a service never loses capacity on the way):

1. add services (with nothing in them yet);
2. add dests, then set dests - weight increases before decreases - so new capacity is in place before old
   capacity is drained;
3. delete dests;
4. set services (scheduler/flags/persistence);
5. delete services (their dests go with them).

A dest the kernel reports with forwarding "local" (its address is one of the director's) matches any
desired forwarding method: the kernel rewrote it and would do so again.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from .model import Dest, Service
from .ops import Op

ORDER = ("add_service", "add_dest", "set_dest", "del_dest", "set_service", "del_service")


@dataclass
class OpError:
    """An operation the kernel refused."""

    op: Op
    error: BaseException

    def __str__(self) -> str:
        reason = getattr(self.error, "reason", None)
        if reason is None:
            if isinstance(self.error, OSError) and self.error.errno:
                reason = f"{os.strerror(self.error.errno)} (errno {self.error.errno})"
            else:
                reason = str(self.error) or type(self.error).__name__
        return f"{self.op}: {reason}"


@dataclass
class Report:
    ops: list[Op] = field(default_factory=list)
    ops_done: int = 0
    errors: list[OpError] = field(default_factory=list)
    actual: list[Service] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def _dest_differs(want: Dest, have: Dest) -> bool:
    if have.fwd == "local":
        return want.settings()[1:] != have.settings()[1:]
    return want.settings() != have.settings()


def diff(desired: list[Service], actual: list[Service]) -> list[Op]:
    """Ordered operations that turn `actual` into `desired` (both lists of Service with dests)."""
    have = {s.key: s for s in actual}
    want: dict[tuple, Service] = {}
    for svc in desired:
        want.setdefault(svc.key, svc)
    groups: dict[str, list[Op]] = {kind: [] for kind in ORDER}
    raises: list[Op] = []
    lowers: list[Op] = []
    for key, svc in want.items():
        old = have.get(key)
        if old is None:
            groups["add_service"].append(Op("add_service", svc))
            old_dests: dict[tuple, Dest] = {}
        else:
            if svc.settings() != old.settings():
                groups["set_service"].append(Op("set_service", svc, old=old))
            old_dests = {d.key: d for d in old.dests}
        new_keys = set()
        for dest in svc.dests:
            if dest.key in new_keys:
                continue
            new_keys.add(dest.key)
            cur = old_dests.get(dest.key)
            if cur is None:
                groups["add_dest"].append(Op("add_dest", svc, dest))
            elif _dest_differs(dest, cur):
                (raises if dest.weight >= cur.weight else lowers).append(Op("set_dest", svc, dest, old=cur))
        for dkey, cur in old_dests.items():
            if dkey not in new_keys:
                groups["del_dest"].append(Op("del_dest", svc, cur))
    groups["set_dest"] = raises + lowers
    for key, old in have.items():
        if key not in want:
            groups["del_service"].append(Op("del_service", old))
    return [op for kind in ORDER for op in groups[kind]]


def apply(wire, ops: list[Op]) -> tuple[int, list[OpError]]:
    """Apply ops in order; a refused op is recorded and the rest still go ahead. Returns (done, errors)."""
    errors: list[OpError] = []
    batch = getattr(wire, "apply", None)
    if batch is not None:
        results = batch(ops)
        errors = [OpError(op, err) for op, err in zip(ops, results, strict=True) if err is not None]
    else:
        for op in ops:
            try:
                if op.dest is None:
                    getattr(wire, op.kind)(op.service)
                else:
                    getattr(wire, op.kind)(op.service, op.dest)
            except Exception as exc:  # reported per op, never fatal
                errors.append(OpError(op, exc))
    return len(ops) - len(errors), errors


def reconcile(wire, desired_table: list[Service], actual: list[Service] | None = None) -> Report:
    """Make the kernel hold `desired_table` by diff; report per-op errors and re-read the kernel.

    By default the kernel is dumped first and dumped again afterwards (Report.actual): the cost grows with
    the size of the table. A caller that keeps the last Report.actual can hand it back as `actual`; then
    nothing is dumped up front and only the services the ops touched are read back (`wire.dump_services`),
    so one weight change costs one op and one small read whatever the table's size. If any op fails on
    that path the known state may be stale (someone changed the kernel meanwhile): the kernel is then
    dumped in full and the diff applied once more. Hand-made changes that no op runs into stay until the
    next full reconcile (or drift check) - so keep using full ones periodically.
    Services the desired table does not name are deleted.
    """
    known = actual is not None
    if actual is None:
        actual = wire.dump()
    ops = diff(desired_table, actual)
    report = Report(ops=ops)
    if not ops:
        report.actual = list(actual)
        return report
    report.ops_done, report.errors = apply(wire, ops)
    if known and report.errors:
        fresh = wire.dump()
        retry = diff(desired_table, fresh)
        report.ops += retry
        done, report.errors = apply(wire, retry) if retry else (0, [])
        report.ops_done += done
        report.actual = wire.dump() if retry else fresh
        return report
    scoped = getattr(wire, "dump_services", None)
    if known and scoped is not None:
        touched = set(op.service.key for op in ops)
        refreshed = {s.key: s for s in scoped(sorted(touched, key=str))}
        merged = [refreshed.pop(s.key, s) for s in actual if s.key not in touched or s.key in refreshed]
        report.actual = merged + list(refreshed.values())
    else:
        report.actual = wire.dump()
    return report


class Reconciler:
    """reconcile() with memory: O(changed) kernel work per call, a full dump when it matters.

    Keeps the last Report.actual and hands it back to reconcile(), so a health flip or a drain costs its own
    ops plus a read of the touched services, whatever the table's size. The kernel is dumped in full on the
    first call, when `full=True` (e.g. a new desired state, agent start), when the last call had errors,
    and at least every `full_every` seconds - hand-made changes no op runs into are repaired then.
    """

    def __init__(self, wire, full_every: float = 60.0, clock=None):
        self.wire = wire
        self.full_every = full_every
        self._clock = clock or time.monotonic
        self._actual: list[Service] | None = None
        self._last_full = float("-inf")

    def invalidate(self) -> None:
        self._actual = None

    def __call__(self, desired_table: list[Service], full: bool = False) -> Report:
        now = self._clock()
        known = self._actual
        if full or known is None or now - self._last_full >= self.full_every:
            known = None
            self._last_full = now
        try:
            report = reconcile(self.wire, desired_table, actual=known)
        except Exception:
            self._actual = None
            raise
        self._actual = None if report.errors else report.actual
        return report
