"""Live data shaped for pages: per-director totals, per-real rows, sparklines and the connection table.

agents.py reads Redis; this module turns what it read into the few numbers a page shows, as pure functions
where possible, so the arithmetic is tested without a browser and the views stay a handful of lines.
A director that has never reported simply has no numbers: every function here copes with `None`.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from urllib.parse import urlencode

from django.conf import settings
from django.core.paginator import Page, Paginator
from django.db import models as db
from django.urls import reverse
from django.utils import timezone

from director import conntable as conntable_mod
from director import keys

from . import agents
from . import choices as C
from .models import ApplyJob, Director, RealServer, VirtualService

log = logging.getLogger(__name__)

RATES = ("cps", "inpps", "outpps", "inbps", "outbps")
COUNTS = ("active", "inactive", "persistent")
CONNTABLE_PAGE = 100  # rows per "show more"
# Long tables are paged (issue 17: a director of 2,284 services and 37,298 reals must render in <= 200 ms
# and <= 200 KB per refresh): rows per page of the director's services, its hosts and a service's reals.
SERVICES_PAGE = 50
HOSTS_PAGE = 50
REALS_PAGE = 50
OVERVIEW_SERVICES = 20  # services a director's card on the overview lists (problems first when it has more)
DRIFT_SHOWN = 50  # drift lines the director page lists (the count says how many there are)
# A job older than this is history, not something the row should still announce.
RECENT_JOB = timedelta(minutes=10)
# Poll fast while numbers can move (an agent reports, or an apply is pending), slowly otherwise.
POLL_LIVE = 2
POLL_IDLE = 10


def poll_every(*, live: bool, pending: bool = False) -> int:
    """Seconds between refreshes of a live fragment.

    Without a reporting agent and with nothing pending, the only changes are other users' edits, so the
    page backs off to a slow check instead of asking every 2 s for numbers that cannot change; it speeds up
    again by itself on the first refresh that sees a snapshot or a pending job.
    """
    return POLL_LIVE if live or pending else POLL_IDLE


# -- agent state -------------------------------------------------------------------------------------------
def refresh_last_seen(director: Director) -> Director:
    """Fold the live heartbeat into `director.last_seen` (in memory) so status is fresh between ingests."""
    hb = agents.heartbeat(director.name)
    director.report_problem = (hb or {}).get(agents.PROBLEM)  # shown as "bad report" next to the status
    if hb and hb.get("time"):
        seen = datetime.fromtimestamp(float(hb["time"]), tz=UTC)
        if director.last_seen is None or seen > director.last_seen:
            director.last_seen = seen
    return director


def snapshot_age(snap: dict | None, now: float | None = None) -> float | None:
    """Seconds since the agent took the snapshot, or None without one."""
    if not snap or not snap.get("time"):
        return None
    now = timezone.now().timestamp() if now is None else now
    return max(0.0, now - float(snap["time"]))


# -- numbers per service and per director ------------------------------------------------------------------
def _num(d: dict | None, key: str) -> float:
    try:
        return float((d or {}).get(key) or 0)
    except (TypeError, ValueError):
        return 0.0


def service_counts(svc_snap: dict | None) -> dict:
    """A service's connections (active, inactive, persistent): summed over its real servers in a record with
    them, else the sums a summary record (keys.summary_key, no real servers) carries under "stats"."""
    dests = (svc_snap or {}).get("dests") or {}
    if dests:
        return {k: sum(_num(d, k) for d in dests.values()) for k in COUNTS}
    return {k: _num((svc_snap or {}).get("stats"), k) for k in COUNTS}


def service_numbers(svc_snap: dict | None) -> dict:
    """Connections summed over a service's reals plus the kernel's per-service rates; from a summary record
    (no real servers) the connections it carries. Either shape, so pages listing every service of a big
    director read the summaries and a service page its whole record."""
    out = {k: 0.0 for k in COUNTS + RATES}
    if not svc_snap:
        return out
    out.update(service_counts(svc_snap))
    rates = svc_snap.get("stats") or {}
    if rates:
        for k in RATES:
            out[k] = _num(rates, k)
    else:  # no service-level counters: add up the reals'
        for dest in (svc_snap.get("dests") or {}).values():
            for k in RATES:
                out[k] += _num(dest.get("stats"), k)
    return out


@dataclass
class ServiceSummary:
    service: VirtualService
    healthy: int
    total: int
    numbers: dict
    live: bool  # numbers come from a snapshot (False: only the database's last known health)


@dataclass
class DirectorSummary:
    director: Director
    status: str
    snapshot: dict | None
    age: float | None
    services: list[ServiceSummary] = field(default_factory=list)
    totals: dict = field(default_factory=dict)
    pair: PairStatus | None = None

    @property
    def drift(self) -> list:
        return list((self.snapshot or {}).get("drift") or [])

    @property
    def drift_shown(self) -> list:
        """The first DRIFT_SHOWN drift lines (a kernel wiped by hand differs in every one of 37,000 reals)."""
        return self.drift[:DRIFT_SHOWN]

    @property
    def overview_services(self) -> list[ServiceSummary]:
        """The services a director's card on the overview lists: all of them up to OVERVIEW_SERVICES, else
        that many with the ones missing healthy reals first (what someone glancing at the overview needs)."""
        if len(self.services) <= OVERVIEW_SERVICES:
            return self.services
        return sorted(self.services, key=lambda s: not (s.service.enabled and s.healthy < s.total))[
            :OVERVIEW_SERVICES
        ]

    @property
    def reported_revision(self) -> int | None:
        return (self.snapshot or {}).get("revision")

    @property
    def problem(self) -> str | None:
        """Why what the agent wrote could not (all) be read: the page shows "bad report" and this."""
        heartbeat = getattr(self.director, "report_problem", None)
        return heartbeat or (self.snapshot or {}).get(agents.PROBLEM)


@dataclass(frozen=True)
class ServiceRef:
    """What a services table shows of one virtual service, read with values_list: at 2,284 services model
    instances cost more than the rest of the page. Quacks like a VirtualService for summaries, templates
    and keys.service_key_for."""

    pk: int
    protocol: str
    address: str | None
    port: int | None
    fwmark: int | None
    family: int
    name: str
    enabled: bool
    scheduler: str
    persistence: int
    n_reals: int = 0
    n_healthy: int = 0

    @property
    def label(self) -> str:
        return keys.service_label(self.protocol, self.address, self.port, self.fwmark, self.family)

    def get_absolute_url(self) -> str:
        return reverse("service_detail", args=[self.pk])


REF_FIELDS = (
    "pk",
    "protocol",
    "address",
    "port",
    "fwmark",
    "family",
    "name",
    "enabled",
    "scheduler",
    "persistence",
)


def service_refs(directors: list[Director]) -> dict[int, list[ServiceRef]]:
    """Director pk -> its services as ServiceRefs with real-server counts, in the model's order: two
    queries whatever the number of directors, services and reals."""
    counts = {
        sid: (n, up)
        for sid, n, up in RealServer.objects.filter(service__director__in=directors)
        .order_by()
        .values("service_id")
        .annotate(n=db.Count("id"), up=db.Count("id", filter=db.Q(health=C.Health.UP)))
        .values_list("service_id", "n", "up")
    }
    out: dict[int, list[ServiceRef]] = {d.pk: [] for d in directors}
    rows = (
        VirtualService.objects.filter(director__in=directors)
        .order_by("director_id", "address", "port", "fwmark")  # the model's order within one director
        .values_list("director_id", *REF_FIELDS)
    )
    for director_id, *fields in rows:
        n, up = counts.get(fields[0], (0, 0))
        out[director_id].append(ServiceRef(*fields, n_reals=n, n_healthy=up))
    return out


def with_counts(services):
    """`services` (a VirtualService queryset) with each one's real-server count and healthy count, computed
    by the database: a summary then never loads the reals themselves (37,298 rows at issue 17's size)."""
    return services.annotate(
        n_reals=db.Count("reals"), n_healthy=db.Count("reals", filter=db.Q(reals__health=C.Health.UP))
    )


def _db_counts(vs: VirtualService) -> tuple[int, int]:
    """(healthy, total) from the database: the annotations of `with_counts`, else the (prefetched) reals."""
    if hasattr(vs, "n_reals"):
        return vs.n_healthy, vs.n_reals
    reals = list(vs.reals.all())
    return sum(1 for r in reals if r.health == C.Health.UP), len(reals)


def summarize_service(vs: VirtualService, snap: dict | None) -> ServiceSummary:
    services = (snap or {}).get("services")
    svc_snap = services.get(keys.service_key_for(vs)) if services else None
    if svc_snap is not None:
        healthy = int(svc_snap.get("healthy", 0))
        total = int(svc_snap["total"]) if "total" in svc_snap else _db_counts(vs)[1]
    else:
        healthy, total = _db_counts(vs)
    return ServiceSummary(vs, healthy, total, service_numbers(svc_snap), svc_snap is not None)


def summarize(director: Director, now=None, services=None) -> DirectorSummary:
    """Status, per-service health counts and totals for one director (one Redis read of its service summaries,
    without real servers - O(services), not O(table) -, one more for the peer's when the director is one of a
    pair). `services` defaults to the director's own, as prefetched; pass `with_counts(...)` to have the
    database count the reals instead of loading them."""
    refresh_last_seen(director)
    snap = agents.service_summaries(director.name)
    summary = DirectorSummary(director, director.agent_status(now), snap, snapshot_age(snap))
    if (snap or {}).get("ha"):
        peer = director.pair_peer()
        summary.pair = pair_status(snap, peer, agents.service_summaries(peer.name) if peer else None)
    services = director.services.all() if services is None else services
    summary.services = [summarize_service(vs, snap) for vs in services]
    summary.totals = {k: sum(s.numbers[k] for s in summary.services) for k in COUNTS + RATES}
    summary.totals["healthy"] = sum(s.healthy for s in summary.services)
    summary.totals["total"] = sum(s.total for s in summary.services)
    return summary


# -- director pairs -----------------------------------------------------------------------------------------
@dataclass
class PairStatus:
    """One director's side of a pair as the pages show it: keepalived's state, priority, peer, last transition,
    and whether the pair is ready for a takeover (checks: (ok, text) - peer seen, sync daemons on both,
    connections copied to the BACKUP)."""

    state: str
    priority: int | None
    peer: Director | None
    peer_state: str | None
    since_ago: float | None
    reason: str
    keepalived: dict
    checks: list[tuple[bool, str]]

    @property
    def badge(self) -> str:
        return {"MASTER": "ok", "BACKUP": "ok", "FAULT": "bad"}.get(self.state, "warn")

    @property
    def ready(self) -> bool:
        return all(ok for ok, _ in self.checks)


def _connections(snap: dict | None) -> int:
    """Active and inactive connections of a director, from its summaries or a whole snapshot."""
    return int(
        sum(
            n[k]
            for n in map(service_counts, ((snap or {}).get("services") or {}).values())
            for k in ("active", "inactive")
        )
    )


def pair_status(
    snap: dict, peer: Director | None, peer_snap: dict | None, now: float | None = None
) -> PairStatus:
    """Pure: both directors' snapshots (or service summaries) -> what the page says about the pair."""
    ha = snap.get("ha") or {}
    peer_ha = (peer_snap or {}).get("ha") or {}
    state = str(ha.get("state") or "INIT")
    peer_state = peer_ha.get("state") if peer_ha else None
    now = timezone.now().timestamp() if now is None else now
    since = ha.get("since")
    name = peer.name if peer else str(ha.get("peer") or "the peer")
    checks: list[tuple[bool, str]] = []
    if peer_state is None:
        checks.append((False, f"peer {name} not reporting"))
    elif {state, peer_state} == {"MASTER", "BACKUP"}:
        checks.append((True, f"peer {name} seen ({peer_state})"))
    elif state == peer_state == "MASTER":
        checks.append((False, f"peer {name} is MASTER too: they cannot hear each other"))
    else:
        checks.append((False, f"peer {name} is {peer_state}"))
    ours, theirs = ha.get("sync"), peer_ha.get("sync")
    if "sync" in ha and ours is None:  # the pair runs without connection sync (sync_daemon off)
        checks.append((False, "connection sync is off"))
    else:
        missing = [who for who, sync in (("here", ours), (name, theirs)) if not (sync and all(sync.values()))]
        checks.append(
            (
                not missing,
                "sync daemons running on both"
                if not missing
                else f"sync daemons not running: {', '.join(missing)}",
            )
        )
    if peer_state is not None and {state, peer_state} == {"MASTER", "BACKUP"}:
        master, backup = (snap, peer_snap) if state == "MASTER" else (peer_snap, snap)
        m, b = _connections(master), _connections(backup)
        checks.append((b >= m, f"BACKUP holds {b} of {m} MASTER connections"))
    return PairStatus(
        state=state,
        priority=ha.get("priority"),
        peer=peer,
        peer_state=peer_state,
        since_ago=None if not since else max(0.0, now - float(since)),
        reason=str(ha.get("reason") or ""),
        keepalived=ha.get("keepalived") or {},
        checks=checks,
    )


def directors_for_overview():
    return Director.objects.all()


def overview_summaries() -> list[DirectorSummary]:
    """Every director's summary for the overview, its services as ServiceRefs (a fixed number of queries)."""
    directors = list(directors_for_overview())
    refs = service_refs(directors)
    return [summarize(d, services=refs[d.pk]) for d in directors]


def page_of(rows, number, per_page: int) -> Page:
    """Page `number` (anything from a query string: a bad or out-of-range value gives the first or last
    page, never an error) of `rows`, a list or a queryset (which then counts and slices in the database)."""
    return Paginator(rows, per_page).get_page(number)


def filter_services(summaries: list[ServiceSummary], text: str) -> list[ServiceSummary]:
    """The summaries whose label (`TCP 10.1.0.1:80`, `FWM 7`) or name contains `text`, ignoring case."""
    text = text.strip().lower()
    if not text:
        return summaries
    return [s for s in summaries if text in s.service.label.lower() or text in (s.service.name or "").lower()]


# -- real-server rows --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RowAction:
    """One button of a real-server row: POST to server_action/<action>, with `then` when it is set."""

    action: str
    label: str
    title: str = ""
    then: str = ""
    primary: bool = False


@dataclass
class RealRow:
    """Everything one row of the real-servers table shows."""

    server: RealServer
    live: dict | None
    history: list[dict]
    job: ApplyJob | None

    @property
    def health(self) -> str:
        """Live check result when the agent reports one, else the last flip the ingest stored."""
        up = ((self.live or {}).get("health") or {}).get("up")
        if up is True:
            return C.Health.UP
        if up is False:
            return C.Health.DOWN
        return self.server.health

    @property
    def reason(self) -> str:
        return ((self.live or {}).get("health") or {}).get("reason") or self.server.health_reason

    @property
    def latency(self) -> float | None:
        latency = ((self.live or {}).get("health") or {}).get("latency")
        return latency if latency is not None else self.server.health_latency

    @property
    def numbers(self) -> dict:
        live = self.live or {}
        out = {k: _num(live, k) for k in COUNTS}
        out.update({k: _num(live.get("stats"), k) for k in RATES})
        return out

    @property
    def connections_query(self) -> str:
        """The connection-table filters for this server (port 0 is the service port, as in the kernel; a
        fwmark service cannot be told apart in the table, so only the server is named)."""
        server, service = self.server, self.server.service
        fwmark = service.protocol == C.Protocol.FWMARK
        port = server.port or (0 if fwmark else service.port)
        query = {} if fwmark else {"service": service.pk}
        query["real"] = _hostport(server.address, port) if port else server.address
        return urlencode(query)

    @property
    def kernel_weight(self):
        return (self.live or {}).get("weight")

    @property
    def actions(self) -> list[RowAction]:
        """The one-click operations that change something for this server's admin state, in button order.

        Decided here once, so the page (and anything else offering them) only renders the list.
        """
        state, out = self.server.admin_state, []
        if state != C.AdminState.DRAINING:
            out.append(
                RowAction("drain", "Drain", "Weight 0: existing connections continue, new ones go elsewhere")
            )
        elif not self.server.after_drain:
            out.append(RowAction("drain", "Maintenance when drained", then=C.AfterDrain.MAINTENANCE))
        if state != C.AdminState.MAINTENANCE:
            out.append(RowAction("maintenance", "Maintenance", "Out of the kernel table"))
        if state != C.AdminState.ACTIVE:
            out.append(RowAction("enable", "Enable", primary=True))
        return out

    @property
    def draining_done(self) -> bool:
        """A draining server the agent reports without connections (no report: we do not know)."""
        n = self.numbers
        return (
            self.live is not None
            and self.server.admin_state == C.AdminState.DRAINING
            and not (n["active"] or n["inactive"] or n["persistent"])
        )


def latest_jobs(servers) -> dict[int, ApplyJob]:
    """The newest recent apply job per server: what the row announces as pending / applied / failed."""
    since = timezone.now() - RECENT_JOB
    jobs: dict[int, ApplyJob] = {}
    for job in ApplyJob.objects.filter(server__in=servers, created__gte=since).order_by("-created", "-id"):
        jobs.setdefault(job.server_id, job)
    return jobs


_UNREAD = object()


def real_rows(
    service: VirtualService, servers=None, snap=_UNREAD, points: int = keys.HISTORY_POINTS
) -> list[RealRow]:
    """One RealRow per server; pass `snap` when the caller already read the snapshot (one GET per page)."""
    servers = list(service.reals.all() if servers is None else servers)
    name = service.director.name
    if snap is _UNREAD:
        snap = agents.service_snapshot(name, [keys.service_key_for(service)])
    dests = (((snap or {}).get("services") or {}).get(keys.service_key_for(service)) or {}).get("dests") or {}
    ids = [keys.dest_key_for(s) for s in servers]
    histories = agents.histories(name, ids, points)
    jobs = latest_jobs(servers)
    return [
        RealRow(s, dests.get(did), histories.get(did, []), jobs.get(s.pk))
        for s, did in zip(servers, ids, strict=True)
    ]


def service_live(service: VirtualService, servers=None) -> tuple[ServiceSummary, list[RealRow]]:
    """A service's summary and the rows of `servers` (default: all its reals), from one read of that service's
    record (the service page and its poll: O(service), whatever the size of the director)."""
    snap = agents.service_snapshot(service.director.name, [keys.service_key_for(service)])
    return summarize_service(service, snap), real_rows(service, servers, snap=snap)


# -- sparklines --------------------------------------------------------------------------------------------
def sparkline_points(values: list[float], width: int = 120, height: int = 24, max_points: int = 120) -> str:
    """SVG polyline points for `values`, downsampled by bucket maximum (a spike must not vanish).

    y grows downwards in SVG, so the largest value sits at the top and zero at the bottom.
    """
    if not values:
        return ""
    if len(values) > max_points:
        size = len(values) / max_points
        values = [
            max(values[int(i * size) : max(int((i + 1) * size), int(i * size) + 1)])
            for i in range(max_points)
        ]
    top = max(values) or 1
    step = width / (len(values) - 1) if len(values) > 1 else 0
    pad = 1
    return " ".join(
        f"{i * step:.1f},{(height - pad) - (v / top) * (height - 2 * pad):.1f}" for i, v in enumerate(values)
    )


# -- connection table --------------------------------------------------------------------------------------
@dataclass
class Count:
    """One number at the top of the connection table, with the filter that shows those connections."""

    label: str
    n: int
    query: dict  # filter fields to add to the current ones


@dataclass
class Talkers:
    """The busiest client addresses of one service or real server."""

    label: str
    clients: list[tuple[str, int]]
    query: dict


@dataclass
class ConnTable:
    """The agent's answer (director/conntable.py summarize()) shaped for the connections page."""

    rows: list[dict] = field(default_factory=list)
    total: int = 0  # connections matching the filters
    in_table: int | None = None  # connections the agent read
    truncated: bool = False  # the kernel table was larger than the agent's read bound
    bound: int | None = None
    limit: int = conntable_mod.DEFAULT_LIMIT
    states: list[Count] = field(default_factory=list)
    reals: list[Count] = field(default_factory=list)
    service_talkers: list[Talkers] = field(default_factory=list)
    real_talkers: list[Talkers] = field(default_factory=list)
    error: str = ""

    @property
    def shown(self) -> int:
        return len(self.rows)

    @property
    def more(self) -> int:
        """How many more rows "show more" asks for (0: everything matching is shown, or the cap is reached)."""
        if self.total <= self.shown or self.limit >= conntable_mod.SHOW_MAX:
            return 0
        return min(CONNTABLE_PAGE, self.total - self.shown, conntable_mod.SHOW_MAX - self.limit)


def format_expire(value) -> str:
    """Seconds as ipvsadm -Lnc prints them (MM:SS)."""
    try:
        seconds = int(float(value))
    except (TypeError, ValueError):
        return ""
    return f"{seconds // 60:02d}:{seconds % 60:02d}"


def _split_dest(dest_id: str) -> tuple[str, str, int]:
    """'tcp|172.16.10.52|80|192.168.1.4|80' -> (service id, real address, real port)."""
    parts = dest_id.split("|")
    return "|".join(parts[:-2]), parts[-2], int(parts[-1])


def _hostport(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def parse_conntable(answer, director: Director, limit: int = conntable_mod.DEFAULT_LIMIT) -> ConnTable:
    """The agent's answer with service ids turned into this director's services (labels, filter links).

    Anything but the agent's shape is an error on the page: the shape is one contract (director/conntable.py
    makes it, tests/django builds their answers with that same code).
    """
    if not isinstance(answer, dict) or ("rows" not in answer and "error" not in answer):
        return ConnTable(error="unexpected answer from the director")
    if answer.get("error"):
        return ConnTable(error=str(answer["error"]))
    services = {keys.service_key_for(vs): vs for vs in director.services.all()}

    def service_label(sid: str) -> str:
        vs = services.get(sid)
        return vs.label if vs else sid.replace("|", " ")

    def service_query(sid: str) -> dict:
        vs = services.get(sid)
        return {"service": vs.pk} if vs else {}

    def real_query(dest_id: str) -> dict:
        sid, address, port = _split_dest(dest_id)
        return {**service_query(sid), "real": _hostport(address, port)}

    rows = [
        {
            "protocol": str(r.get("proto", "")).upper(),
            "state": r.get("state", ""),
            "expire": format_expire(r.get("expire")),
            "client": r.get("client", ""),
            "virtual": r.get("virtual", ""),
            "destination": r.get("real", ""),
        }
        for r in answer.get("rows") or []
    ]
    reals = sorted((answer.get("reals") or {}).items(), key=lambda kv: (-kv[1], kv[0]))
    talkers = answer.get("talkers") or {}
    return ConnTable(
        rows=rows,
        total=int(answer.get("matched", len(rows))),
        in_table=answer.get("total"),
        truncated=bool(answer.get("truncated")),
        bound=answer.get("bound"),
        limit=limit,
        states=[Count(state, n, {"state": state}) for state, n in (answer.get("states") or {}).items()],
        reals=[
            Count(
                f"{_hostport(*_split_dest(did)[1:])} in {service_label(_split_dest(did)[0])}",
                n,
                real_query(did),
            )
            for did, n in reals
        ],
        service_talkers=[
            Talkers(service_label(sid), [tuple(c) for c in clients], service_query(sid))
            for sid, clients in sorted((talkers.get("services") or {}).items())
        ],
        real_talkers=[
            Talkers(
                f"{_hostport(*_split_dest(did)[1:])} in {service_label(_split_dest(did)[0])}",
                [tuple(c) for c in clients],
                real_query(did),
            )
            for did, clients in sorted((talkers.get("reals") or {}).items())
        ],
    )


def conntable(director: Director, filters: dict, limit: int = conntable_mod.DEFAULT_LIMIT) -> ConnTable:
    """Ask the director's agent for its connection table (queue director.<name>), waiting a few seconds.

    `filters` are ConnFilterForm's cleaned data. Any failure (no agent listening, broker down, a bad answer)
    becomes a message on the page, never a 500: the connection table is a diagnostic, and diagnostics are
    needed most when something is broken.
    """
    timeout = float(getattr(settings, "UMW_CONNTABLE_TIMEOUT", 3))
    service = filters.get("service")
    try:
        answer = agents.ask_conntable(
            director.name,
            director.queue,
            timeout,
            service=keys.service_key_for(service) if service else None,
            client=filters.get("client") or "",
            real=filters.get("real") or "",
            state=filters.get("state") or "",
            port=filters.get("port"),
            limit=limit,
        )
    except Exception as exc:  # timeout, broker down, agent raised: all mean "no table now"
        log.info("conntable for %s failed: %r", director, exc)
        if exc.__class__.__name__ == "TimeoutError":
            return ConnTable(error=f"director {director.name} not answering (no reply in {timeout:g} s)")
        return ConnTable(error=f"director {director.name} not answering: {exc}")
    return parse_conntable(answer, director, limit)


# -- hosts (one address across every virtual service) ------------------------------------------------------
@dataclass
class Host:
    address: str
    servers: list[RealServer]

    @property
    def states(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.servers:
            out[s.admin_state] = out.get(s.admin_state, 0) + 1
        return out


def _address_order(address: str) -> tuple:
    """Numeric order, IPv4 before IPv6, anything else last."""
    for version, family in ((4, socket.AF_INET), (6, socket.AF_INET6)):
        try:
            return (version, socket.inet_pton(family, address))
        except OSError:
            pass
    return (99, b"")


ADDRESS_CHARS = frozenset("0123456789abcdefABCDEF.:")


def ip_sorted(addresses) -> list[str]:
    """`addresses` in numeric order, IPv4 before IPv6: the C converters as sort keys, which sorts 37,000
    addresses in a few milliseconds (ipaddress objects took ten times longer); _address_order if one of
    them is not a plain address."""
    v4, v6 = [], []
    for address in addresses:
        (v6 if ":" in address else v4).append(address)
    try:
        return sorted(v4, key=socket.inet_aton) + sorted(v6, key=partial(socket.inet_pton, socket.AF_INET6))
    except OSError:
        return sorted(v4 + v6, key=_address_order)


def hosts(director: Director, page=1, prefix: str = "") -> Page:
    """One page of the real-server addresses of a director (optionally those starting with `prefix`), each
    with the servers of every service it is in, for host-wide actions.

    The addresses come from one DISTINCT query and are ordered here (IP order is not text order); only the
    servers of the page's addresses are loaded, so a refresh costs the same at 20 reals and at 37,000."""
    reals = RealServer.objects.filter(service__director=director)
    addresses = reals.order_by().values_list("address", flat=True).distinct()
    if prefix:
        # what no address starts with (a NUL, which PostgreSQL refuses in a query, included) matches nothing
        addresses = addresses.filter(address__startswith=prefix) if ADDRESS_CHARS.issuperset(prefix) else []
    result = page_of(ip_sorted(addresses), page, HOSTS_PAGE)
    by_address: dict[str, list[RealServer]] = {a: [] for a in result.object_list}
    # by address alone (its index), the director in Python: with the director in the query SQLite walks every
    # service of the director instead (20 ms at 2,284 services, 4 ms so)
    servers = RealServer.objects.filter(address__in=result.object_list).select_related("service")
    for server in servers:
        if server.service.director_id == director.pk:
            by_address[server.address].append(server)
    result.object_list = [Host(a, servers) for a, servers in by_address.items()]
    return result
