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
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from .model import Dest, Service, Stats
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


def diff_some(desired: list[Service], known: Mapping[tuple, Service]) -> list[Op]:
    """The ops `diff(full_desired, known)` emits for the services in `desired`, in the same order, without
    looking at any other service: O(size of `desired`), whatever the size of the table.

    The caller vouches that every service it leaves out is unchanged (a health flip or an admin change
    touches only its own service) and hands `desired` in desired-table order; then the result is exactly
    the full diff's (tests/unit/test_ipvs_incremental.py checks that with random tables and changes).
    A service is never deleted here: one the caller does not name is one it did not change.
    """
    return diff(desired, [known[s.key] for s in desired if s.key in known])


def advance(known: Mapping[tuple, Service], ops: list[Op]) -> dict[tuple, Service | None]:
    """What the kernel holds for the services `ops` touched once all of them succeeded: key -> Service, or
    None for a deleted one. Pure: the caller merges it into its index of the kernel table, so a successful
    change costs no read-back. A dest the kernel reports as "local" stays "local" (the kernel rewrites any
    method to it for an address of the director's own); counters are not known and keep their last value.
    """
    out: dict[tuple, Service | None] = {}
    dests: dict[tuple, dict[tuple, Dest]] = {}

    def current(key: tuple) -> Service | None:
        return out[key] if key in out else known.get(key)

    for op in ops:
        svc, key = op.service, op.service.key
        if op.kind == "add_service":
            out[key] = replace(svc, dests=())
            dests[key] = {}
        elif op.kind == "set_service":
            old = current(key)
            out[key] = replace(
                svc,
                dests=old.dests if old is not None else (),
                stats=old.stats if old is not None else Stats(),
            )
        elif op.kind == "del_service":
            out[key] = None
            dests.pop(key, None)
        else:
            if key not in dests:
                old = current(key)
                dests[key] = {d.key: d for d in old.dests} if old is not None else {}
                out[key] = old
            table = dests[key]
            if op.kind == "del_dest":
                table.pop(op.dest.key, None)
                continue
            have = table.get(op.dest.key)
            dest = op.dest
            if have is not None:
                dest = replace(dest, stats=have.stats)
                if have.fwd == "local":
                    dest = replace(dest, fwd="local")
            table[dest.key] = dest
    for key, table in dests.items():
        svc = out.get(key)
        if svc is not None:
            out[key] = replace(svc, dests=tuple(table.values()))
    return out


class Reconciler:
    """reconcile() with memory: O(changed) work per call, a full dump when it matters.

    Keeps the kernel table it last left, indexed by service key. `__call__` diffs a whole desired table
    against it (a new desired state); `patch` takes only the services a health flip or an admin change
    touched and costs their own diff and ops - no table-wide diff, no read-back (the index is advanced by
    the ops that succeeded). The kernel is dumped in full on the first call, when `full=True` (agent
    start), after any error - so the index is the kernel's again, never half-applied - and at least every
    `full_every` seconds (`due`): hand-made changes no op runs into are repaired then.
    """

    def __init__(self, wire, full_every: float = 60.0, clock=None):
        self.wire = wire
        self.full_every = full_every
        self._clock = clock or time.monotonic
        self._known: dict[tuple, Service] | None = None
        self._last_full = float("-inf")

    def invalidate(self) -> None:
        self._known = None

    @property
    def known(self) -> dict[tuple, Service] | None:
        """The kernel table as last left (service key -> Service), None when it must be dumped first."""
        return self._known

    def due(self) -> bool:
        """Whether the next call must start from a full dump (nothing known, or the period is over)."""
        return self._known is None or self._clock() - self._last_full >= self.full_every

    def __call__(self, desired_table: list[Service], full: bool = False) -> Report:
        known = None if full or self.due() else list(self._known.values())
        if known is None:
            self._last_full = self._clock()
        try:
            report = reconcile(self.wire, desired_table, actual=known)
        except Exception:
            self._known = None
            raise
        self._known = None if report.errors else {s.key: s for s in report.actual}
        return report

    def patch(self, desired: list[Service]) -> Report | None:
        """Bring only these services (desired-table order) to what they should be: O(their size).

        Returns None when nothing is known (a full reconcile must come first). A refused op drops the
        index (the next call dumps the kernel): the caller then runs a full reconcile, which re-reads the
        kernel and converges. The periodic full reconcile (`due`) is the caller's to run after the patch,
        so a flip reaches the kernel before the table-wide work starts."""
        if self._known is None:
            return None
        known = self._known
        ops = diff_some(desired, known)
        report = Report(ops=ops)
        if not ops:
            return report
        try:
            report.ops_done, report.errors = apply(self.wire, ops)
        except Exception:
            self._known = None
            raise
        if report.errors:
            self._known = None
            return report
        for key, svc in advance(known, ops).items():
            if svc is None:
                known.pop(key, None)
            else:
                known[key] = svc
        return report
