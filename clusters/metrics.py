"""Prometheus metrics: the database's desired state and the agents' last snapshots.

`collect` turns directors (services and reals prefetched) plus their snapshots into prometheus-client metric
families; it is pure, so the output is tested without a server. `Collector` is the custom collector a scrape
renders through prometheus-client, which writes text format 0.0.4 or, when the scraper's Accept header asks
for it, OpenMetrics (escaping, number formatting and the counters' `_total` are the library's business).
`gather` is the only part that reads the database and Redis. Live numbers (connections, rates, kernel
counters) exist only for directors whose agent reported within keys.STATS_TTL: a missing series means
"no data", never a made-up 0.

Health is 1 (up), 0 (down) or NaN (unknown: never checked, or checks off). NaN keeps an unknown server out
of both `== 0` and `== 1` alerts instead of counting it as down.

Per-real-server series (`umw_realserver_*`) are a collector one can switch off, like node_exporter's
collector flags: `UMW_METRICS_REALSERVERS=0` leaves the director and service series only. They are ~6 series
per real server without live numbers and ~20 with them, so 37,298 reals make ~750,000 series, more than one
scrape can render in a second (bench/scale_central.py prints the figures); without them the same director
is 18,280 series.
"""

from __future__ import annotations

import math

from django.conf import settings
from django.db.models import OuterRef, Subquery
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric

from director.keys import dest_key_for, service_key_for

from . import agents, live
from . import choices as C
from .models import ApplyJob, Director

# name -> (type, help). Every sample goes through this table, so a family cannot get two HELP texts.
METRICS = {
    "umw_agent_up": ("gauge", "1 when the agent's heartbeat is recent, else 0."),
    "umw_agent_last_seen_timestamp_seconds": ("gauge", "Unix time of the agent's last heartbeat."),
    "umw_director_in_sync": ("gauge", "1 when the agent applied the latest desired revision."),
    "umw_director_revision": ("gauge", "Desired-state revision: asked for (desired) and applied."),
    "umw_director_snapshot_timestamp_seconds": ("gauge", "Unix time of the agent's last stats snapshot."),
    "umw_director_drift_entries": ("gauge", "Differences the agent found between kernel and desired state."),
    "umw_director_apply_failed": ("gauge", "1 when the director's latest finished apply job failed, else 0."),
    "umw_director_ha_state": ("gauge", "1 for the director's current role in its pair (by state), else 0."),
    "umw_service_healthy_reals": ("gauge", "Real servers of the service whose health check passes."),
    "umw_service_reals": ("gauge", "Real servers of the service."),
    "umw_service_quorum": ("gauge", "1 when enough real servers are healthy (quorum)."),
    "umw_realserver_health": ("gauge", "Health check result: 1 up, 0 down, NaN unknown."),
    "umw_realserver_check_latency_seconds": ("gauge", "Duration of the last health check."),
    "umw_realserver_weight": ("gauge", "Weight as configured, and as the kernel has it (0 while drained)."),
    "umw_realserver_admin_state": ("gauge", "1 for the operator's current state of the real server."),
    "umw_realserver_in_kernel": ("gauge", "1 when the real server is in the kernel's IPVS table."),
    "umw_realserver_connections": ("gauge", "Connections in the kernel table, by state."),
    "umw_realserver_cps": ("gauge", "New connections per second (kernel rate estimator)."),
    "umw_realserver_packets_per_second": ("gauge", "Packets per second, by direction."),
    "umw_realserver_bytes_per_second": ("gauge", "Bytes per second, by direction."),
}
# The kernel's cumulative counters (ipvsadm --stats), per service and per real server:
# metric suffix -> {direction label (none for ""): key in the snapshot's stats}.
COUNTERS = {
    "scheduled_connections_total": {"": "conns"},
    "packets_total": {"in": "inpkts", "out": "outpkts"},
    "bytes_total": {"in": "inbytes", "out": "outbytes"},
}
COUNTER_HELP = {
    "scheduled_connections_total": "Connections the kernel scheduled (ipvsadm --stats Conns)",
    "packets_total": "Packets forwarded, by direction",
    "bytes_total": "Bytes forwarded, by direction",
}
for _prefix, _what in (("umw_service", "virtual service"), ("umw_realserver", "real server")):
    for _suffix, _help in COUNTER_HELP.items():
        METRICS[f"{_prefix}_{_suffix}"] = ("counter", f"{_help}, per {_what}; resets when it is recreated.")


class Families(dict):
    """Metric families by name, created on first use (type and help from METRICS), in order of first use.

    A family that never gets a sample is never created, so a missing series means "no data"."""

    def add(self, name: str, value, **labels) -> None:
        if name not in self:
            type_, help_ = METRICS[name]
            # prometheus-client names a counter family without its `_total`, which the samples keep.
            self[name] = Metric(name.removesuffix("_total") if type_ == "counter" else name, help_, type_)
        value = math.nan if value is None else float(value)
        self[name].add_sample(name, {k: str(v) for k, v in labels.items()}, value)


# -- what we export ----------------------------------------------------------------------------------------
def _health(row: live.RealRow) -> float:
    return {C.Health.UP: 1.0, C.Health.DOWN: 0.0}.get(row.health, math.nan)


def _counters(out: Families, prefix: str, stats_: dict, **labels) -> None:
    for suffix, keys_by_direction in COUNTERS.items():
        for direction, key in keys_by_direction.items():
            if key in stats_:
                extra = {"direction": direction} if direction else {}
                out.add(f"{prefix}_{suffix}", int(stats_[key]), **labels, **extra)


# roles a paired director reports (director/vrrp.py, keepalived's states): one series each, 0 or 1
HA_STATES = ("INIT", "BACKUP", "MASTER", "FAULT")


def _pairs(directors) -> dict[str, str]:
    """Director name -> its pair's name ("a+b", sorted) for both sides, from the list in memory (no query)."""
    names = {d.pk: d.name for d in directors}
    out = {}
    for d in directors:
        if d.peer_id in names:
            out[d.name] = out[names[d.peer_id]] = "+".join(sorted((d.name, names[d.peer_id])))
    return out


def _director(out: Families, director: Director, snap: dict | None, now, pair: str | None = None) -> None:
    d = {"director": director.name}
    out.add("umw_agent_up", director.agent_status(now) == C.AgentState.UP, **d)
    if director.last_seen is not None:
        out.add("umw_agent_last_seen_timestamp_seconds", director.last_seen.timestamp(), **d)
    out.add("umw_director_in_sync", director.in_sync, **d)
    out.add("umw_director_revision", director.desired_revision, **d, kind="desired")
    out.add("umw_director_revision", director.applied_revision, **d, kind="applied")
    # gather() annotates the latest finished job's status; without it (a bare Director) nothing failed
    failed = getattr(director, "last_apply_status", None) == C.JobStatus.FAILED
    out.add("umw_director_apply_failed", failed, **d)
    if snap is None:
        return
    if snap.get("time"):
        out.add("umw_director_snapshot_timestamp_seconds", float(snap["time"]), **d)
    out.add("umw_director_drift_entries", len(snap.get("drift") or ()), **d)
    role = (snap.get("ha") or {}).get("state")
    if role:  # a paired director: `sum by (pair) (umw_director_ha_state{state="MASTER"})` must be 1
        for state in dict.fromkeys((*HA_STATES, role)):
            out.add("umw_director_ha_state", role == state, **d, pair=pair or director.name, state=state)


def _service(out: Families, svc_snap: dict, **s) -> None:
    out.add("umw_service_healthy_reals", int(svc_snap.get("healthy", 0)), **s)
    out.add("umw_service_reals", int(svc_snap.get("total", 0)), **s)
    if "quorum" in svc_snap:
        out.add("umw_service_quorum", bool(svc_snap["quorum"]), **s)
    _counters(out, "umw_service", svc_snap.get("stats") or {}, **s)


def _real(out: Families, row: live.RealRow, **s) -> None:
    server = row.server
    r = {**s, "real": str(server)}
    out.add("umw_realserver_health", _health(row), **r)
    if row.latency is not None:
        out.add("umw_realserver_check_latency_seconds", float(row.latency), **r)
    out.add("umw_realserver_weight", server.weight, **r, source="config")
    for state in C.AdminState.values:
        out.add("umw_realserver_admin_state", server.admin_state == state, **r, state=state)
    if row.live is None:
        return
    if row.kernel_weight is not None:
        out.add("umw_realserver_weight", row.kernel_weight, **r, source="kernel")
    out.add("umw_realserver_in_kernel", bool(row.live.get("in_kernel")), **r)
    numbers = row.numbers
    for state in live.COUNTS:
        out.add("umw_realserver_connections", numbers[state], **r, state=state)
    out.add("umw_realserver_cps", numbers["cps"], **r)
    for direction in ("in", "out"):
        out.add("umw_realserver_packets_per_second", numbers[f"{direction}pps"], **r, direction=direction)
        out.add("umw_realserver_bytes_per_second", numbers[f"{direction}bps"], **r, direction=direction)
    _counters(out, "umw_realserver", row.live.get("stats") or {}, **r)


def collect(
    directors, snapshots: dict[str, dict | None], now=None, reals: bool = True, services=None
) -> list[Metric]:
    """Every family for `directors` (with services__reals prefetched) and their snapshots by name. Pure.

    Without the per-real series (`reals` off) `services` may give each director's services instead
    ({director pk: [live.ServiceRef]}): no model instance per service or real is needed then."""
    out = Families()
    pairs = _pairs(directors)
    for director in directors:
        snap = snapshots.get(director.name)
        _director(out, director, snap, now, pairs.get(director.name))
        svc_snaps = (snap or {}).get("services") or {}
        for vs in director.services.all() if services is None else services[director.pk]:
            svc_snap = svc_snaps.get(service_key_for(vs))
            s = {"director": director.name, "service": vs.label}
            if svc_snap is not None:
                _service(out, svc_snap, **s)
            if not reals:
                continue
            dests = (svc_snap or {}).get("dests") or {}
            for server in vs.reals.all():
                _real(out, live.RealRow(server, dests.get(dest_key_for(server)), [], None), **s)
    return list(out.values())


def realserver_series() -> bool:
    """Whether a scrape has the per-real-server series (setting UMW_METRICS_REALSERVERS, on by default)."""
    return bool(getattr(settings, "UMW_METRICS_REALSERVERS", True))


def gather(reals: bool = True) -> tuple[list[Director], dict[str, dict | None]]:
    """The database and Redis reads behind one scrape: directors (with services and reals prefetched when
    `reals`; without the per-real series Collector reads the services as live.ServiceRefs), and snapshots:
    whole with the per-real series, else the service summaries (agents.service_summaries)."""
    finished = ApplyJob.objects.filter(director=OuterRef("pk")).exclude(status=C.JobStatus.PENDING)
    directors = Director.objects.annotate(
        last_apply_status=Subquery(finished.order_by("-created", "-pk").values("status")[:1])
    )
    directors = list(directors.prefetch_related("services__reals") if reals else directors)
    for director in directors:
        live.refresh_last_seen(director)
    # the director and service series need only the service summaries (O(services)); the reals' records
    # (O(table)) are read only for the per-real series
    read = agents.snapshot if reals else agents.service_summaries
    return directors, {d.name: read(d.name) for d in directors}


class Collector:
    """The custom collector of one scrape: `collect()` reads the database and Redis (gather) when it runs."""

    def __init__(self, now=None, reals: bool | None = None):
        self.now = now
        self.reals = realserver_series() if reals is None else reals

    def collect(self):
        directors, snapshots = gather(self.reals)
        services = None if self.reals else live.service_refs(directors)
        return collect(directors, snapshots, self.now, self.reals, services)


class _Families:
    """Already collected families as prometheus-client's encoders take them (anything with collect())."""

    def __init__(self, families):
        self.families = families

    def collect(self):
        return self.families


def encode(collector, accept: str = "") -> tuple[bytes, str]:
    """What `collector` collects, in the format `accept` (an HTTP Accept header) asks for: (body, content
    type). Text format 0.0.4 unless the scraper asks for OpenMetrics."""
    encoder, content_type = choose_encoder(accept)
    return encoder(collector), content_type


def render(families, accept: str = "") -> tuple[bytes, str]:
    """Already collected families (the pure path the tests take)."""
    return encode(_Families(families), accept)


def exposition(accept: str = "", now=None) -> tuple[bytes, str]:
    """One scrape."""
    return encode(Collector(now), accept)
