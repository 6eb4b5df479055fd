"""ORM -> director desired state: the only module that knows both the models and the director contract."""

from __future__ import annotations

from itertools import groupby
from operator import itemgetter

from director.desired import DesiredState, RealSpec, ServiceSpec

from . import checkfields
from . import choices as C
from .models import Director, RealServer, VirtualService


def real_spec(rs: RealServer) -> RealSpec:
    return RealSpec(
        address=rs.address,
        port=rs.port,
        forwarding=rs.forwarding,
        weight=rs.weight,
        u_threshold=rs.u_threshold,
        l_threshold=rs.l_threshold,
        admin_state=rs.admin_state,
        quiescent=rs.quiescent,
        check_port=rs.check_port,
    )


# RealSpec's fields under the model's names, in RealSpec's order: desired_state reads them with values_list
# (37,298 RealServer instances cost 0.5 s; these tuples a tenth of it).
REAL_FIELDS = ("address", "port", "forwarding", "weight", "u_threshold", "l_threshold", "admin_state",
               "quiescent", "check_port")  # fmt: skip


def real_dict(*values) -> dict:
    """A real server's part of the document, from its REAL_FIELDS values: what RealSpec(*values) gives in
    to_dict(), without the object (a 37,000-real push built, copied and garbage-collected one each)."""
    return dict(zip(REAL_FIELDS, values, strict=True))


def reals_by_service(services, make=RealSpec) -> dict[int, tuple]:
    """Service pk -> its reals in the model's order (address, port), each `make(*values of REAL_FIELDS)`
    (RealSpecs, or real_dict's dicts), in one query. `services`: a queryset (read as a subquery) or a list.
    The rows are read in chunks, not kept: 37,298 of them held at once cost a third more collector passes."""
    rows = (
        RealServer.objects.filter(service__in=services)
        .order_by("service_id", "address", "port")
        .values_list("service_id", *REAL_FIELDS)
    )
    return {
        service_id: tuple(make(*row[1:]) for row in group)
        for service_id, group in groupby(rows.iterator(chunk_size=5000), itemgetter(0))
    }


def service_spec(vs: VirtualService, reals: tuple[RealSpec, ...] | None = None) -> ServiceSpec:
    fallback = None
    if vs.fallback_address:
        fallback = RealSpec(
            address=vs.fallback_address,
            port=vs.fallback_port or vs.port or 0,
            forwarding=vs.fallback_forwarding,
            weight=1,
        )
    return ServiceSpec(
        protocol=vs.protocol,
        address=vs.address or "",
        port=vs.port or 0,
        fwmark=vs.fwmark or 0,
        family=vs.family,
        scheduler=vs.scheduler,
        flags=tuple(vs.sched_flags or ()),
        persistence=vs.persistence,
        netmask=vs.netmask,
        check=checkfields.check_spec(vs),
        fallback=fallback,
        reals=tuple(real_spec(rs) for rs in vs.reals.all()) if reals is None else reals,
        name=vs.name,
    )


def failover_spec(director: Director) -> dict | None:
    """The `failover` part of the desired state: set when the director is one of a pair with both addresses.

    Both directors must get the same secret, virtual router id, interval and preempt, and each other's address
    (keepalived on each of them runs VRRP with it, director/vrrp.py): those are the lower-id director's
    (services.save() keeps the pair's settings equal anyway), so it does not matter which side named the other
    as its peer. A pure read: services.push() gives a director without a secret its secret before building this.
    """
    peer = director.pair_peer()
    if peer is None or not director.ha_address or not peer.ha_address:
        return None
    first = min((director, peer), key=lambda d: d.pk)
    return {
        "local_address": director.ha_address,
        "peer_address": peer.ha_address,
        "vrid": first.ha_vrid,
        "priority": director.ha_priority,
        "secret": first.ha_secret,
        "interval": float(first.ha_interval),
        "preempt": first.ha_preempt,
    }


def _sent(services: list[VirtualService]) -> list[VirtualService]:
    """The services the document carries: a VIP service needs its address, a fwmark service none."""
    return [vs for vs in services if vs.protocol == C.Protocol.FWMARK or vs.address]


def _state(director: Director, services: list[VirtualService], reals: dict[int, tuple]) -> DesiredState:
    vips = []
    if director.manage_vips:
        for vs in services:
            if vs.address:
                prefix = 32 if vs.family == 4 else 128
                vip = f"{vs.address}/{prefix}"
                if vip not in vips:
                    vips.append(vip)
    return DesiredState(
        director=director.name,
        revision=director.desired_revision,
        wan_interface=director.wan_interface,
        lan_interface=director.lan_interface,
        ip_forward=director.manage_ip_forward,
        masquerade=(director.lan_subnet,) if director.masquerade and director.lan_subnet else (),
        vips=tuple(vips),
        services=tuple(service_spec(vs, reals.get(vs.pk, ())) for vs in _sent(services)),
        failover=failover_spec(director),
    )


def desired_state(director: Director) -> DesiredState:
    """Everything `director` should run, from the database, as the JSON-able contract object."""
    enabled = director.services.filter(enabled=True)
    return _state(director, list(enabled), reals_by_service(enabled.values("pk")))


def desired_document(director: Director) -> dict:
    """`desired_state(director).to_dict()`, the document a push signs and sends, built faster: the services
    as ServiceSpecs, each real server as a plain dict straight from its row (real_dict). For 37,298 reals
    that is 0.2 s less CPU, most of it the RealSpec objects, their copy and the garbage collections they set
    off (tests/django/test_desired_document.py holds it to the same text)."""
    enabled = director.services.filter(enabled=True)
    services = list(enabled)
    document = _state(director, services, {}).to_dict()  # every service with its reals left empty
    reals = reals_by_service(enabled.values("pk"), make=real_dict)
    for spec, vs in zip(document["services"], _sent(services), strict=True):
        spec["reals"] = reals.get(vs.pk, ())
    return document
