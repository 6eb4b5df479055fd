"""Reading the kernel's table with counters in proportion to what changed (the reporter's view of the kernel).

Why: a full dump is one GET_DEST dump per service - 2,285 netlink dumps and 37k decoded destinations at the
size of keepalived issue #2318 -, about a second of CPU; every 2 s that alone would be half a core. But the
service dump (one request) carries every service's counters, and the kernel adds each packet and connection
to the service's counters together with its destination's. So a service whose raw entry is byte-for-byte the
same as last round has destinations whose counters did not move either, and we keep the ones we read before.

What that does not see, and how it is still caught:
* connection counts that fall without a packet (an inactive connection or a persistence template expiring):
  a service whose destinations had any connection, template or non-zero rate last round is "busy" and is
  read again every round until it is quiet;
* our own weight changes: the caller names the services it changed (`dirty`);
* a destination added, removed or re-weighted by hand (ipvsadm): every scan also reads a rolling share of
  the table, so all of it is read again every `spread` scans (a minute at one scan every 2 s).
"""

from __future__ import annotations

from .. import keys
from .codec import decode_service, parse_attrs
from .model import Service


def _busy(svc: Service) -> bool:
    """Could this service's numbers change without its counters moving (see the module docstring)?"""
    st = svc.stats
    if st.cps or st.inpps or st.outpps or st.inbps or st.outbps:
        return True
    for d in svc.dests:
        s = d.stats
        if s.active or s.inactive or s.persistent or s.cps or s.inbps or s.outbps or s.inpps or s.outpps:
            return True
    return False


class Scanner:
    """The last table read, and `scan()` that refreshes only the services that may have changed."""

    def __init__(self, wire, spread: int = 30):
        self.wire = wire
        self.spread = max(1, spread)  # every service is read again at least every `spread` scans
        self._known: dict[bytes, tuple[str, Service, bool]] = {}  # raw entry -> (sid, service, busy)
        self._tick = 0
        self.last_read = 0  # services whose dests the last scan read (for benchmarks and logs)

    def reset(self) -> None:
        """Forget everything: the next scan reads the whole table."""
        self._known.clear()

    def scan(self, dirty=()) -> tuple[dict[str, Service], set[str]]:
        """({service id: Service with dests and counters}, ids of the services that changed or are gone).

        Read again: services whose raw entry changed (or is new), busy ones, `dirty` ones (service ids,
        keys.service_key_for, the caller changed), and a rolling share of 1/`spread` of the table, so a real
        server edited by hand shows within `spread` scans without a whole read at once (a second of CPU
        at 37k real servers, which would make that round's numbers late). An unchanged quiet service costs
        one dict lookup of its raw entry. Raises OSError like Wire.dump."""
        self._tick += 1
        share = self._tick % self.spread
        dirty = set(dirty)
        known = self._known
        before = {sid: svc for sid, svc, _ in known.values()}
        fresh: dict[bytes, tuple[str, Service, bool]] = {}
        todo: list[tuple[bytes, dict, Service, str]] = []
        for i, raw in enumerate(self.wire.service_entries()):
            old = known.get(raw)
            if old is not None and not old[2] and i % self.spread != share and old[0] not in dirty:
                fresh[raw] = old
                continue
            attrs = parse_attrs(raw)
            probe = decode_service(attrs)
            todo.append((raw, attrs, probe, keys.service_key_for(probe)))
        got = self.wire.dests_of([t[2] for t in todo]) if todo else []
        changed: set[str] = set()
        for (raw, attrs, _, sid), dests in zip(todo, got, strict=True):
            if dests is None:  # deleted between the two dumps
                continue
            svc = decode_service(attrs, dests)
            fresh[raw] = (sid, svc, _busy(svc))
            old = before.get(sid)
            if old is None or old != svc or old.stats != svc.stats or _stats_moved(old, svc):
                changed.add(sid)
        table = {sid: svc for sid, svc, _ in fresh.values()}
        changed.update(sid for sid in before if sid not in table)
        self._known = fresh
        self.last_read = len(todo)
        return table, changed


def _stats_moved(old: Service, new: Service) -> bool:
    """Did any destination's counters change? (Service equality ignores stats on purpose: it is the plan's.)"""
    if len(old.dests) != len(new.dests):
        return True
    return any(a.stats != b.stats for a, b in zip(old.dests, new.dests, strict=True))
