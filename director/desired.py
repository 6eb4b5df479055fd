"""The desired-state document a director receives from the central side.

This is the contract between `clusters/desired.py` (ORM -> JSON) and the director agent. It is plain JSON
so a director needs no database credentials, and it is what the agent keeps on local disk so a restart or a
central outage changes nothing in the data plane.

Shape (all keys always present; see `DesiredState.from_dict` for defaults)::

    {
      "director": "lab1", "revision": 42,
      "wan_interface": "wan", "lan_interface": "lan",
      "ip_forward": true,
      "masquerade": ["192.168.1.0/24"],          # LAN subnets NATed out of the WAN interface
      "vips": ["172.16.10.52/24"],               # addresses the agent puts on the WAN interface
      "services": [ServiceSpec, ...],
      "failover": None                           # or a director pair, see below
    }

`failover` (optional; None = a lone director, which always holds its VIPs) makes this director one of an
active/backup pair on keepalived's VRRP (director/vrrp.py, pair.py): {"local_address", "peer_address",
"priority", "secret", "interval", "preempt", "vrid", optional "sync_daemon" (default true), "sync_id" and
"track_agent" (default true)}. Both directors program the same IPVS table; keepalived holds the VIPs on the
MASTER only; the agent's IPVS sync daemons copy connections to the BACKUP. Keys of the earlier home-made
protocol (`port`) are ignored, so a state saved before the change still loads.

A ServiceSpec carries the IPVS service, its ldirectord/keepalived check settings, an optional fallback
(sorry) server and its real servers with their *admin* state. The agent derives the kernel weight from
admin state + observed health, so a health flip never needs a round trip to the central side.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from .keys import canonical_address, service_label

PROTOCOLS = ("tcp", "udp", "sctp", "fwmark")
FORWARDING = ("masq", "gate", "ipip")
ADMIN_STATES = ("active", "draining", "maintenance")


@dataclass(frozen=True)
class CheckSpec:
    """Health-check settings, named as ldirectord names them, plus keepalived's extras."""

    # connect | negotiate | ping | external | on | off | "<N>" (connect checks, negotiate every Nth)
    checktype: str = "negotiate"
    # http https http_proxy ftp smtp pop imap ldap nntp dns mysql pgsql sip radius simpletcp none
    service: str = "none"
    request: str = ""
    receive: str = ""
    httpmethod: str = "GET"
    virtualhost: str = ""
    checkport: int | None = None
    checkinterval: float = 5.0
    checktimeout: float = 5.0
    negotiatetimeout: float = 5.0
    failurecount: int = 1
    quiescent: bool = True
    # keepalived status_code; empty = ldirectord rules (receive decides)
    expected_status: tuple[int, ...] = ()
    retries: int = 1  # keepalived: attempts per check round
    delay_before_retry: float = 1.0
    rise: int = 1  # hysteresis: consecutive successes to come back up
    quorum: int = 1  # minimum healthy reals for the service to be considered up
    hysteresis: int = 0
    external: str = ""  # program for checktype=external
    login: str = ""
    passwd: str = ""
    database: str = ""
    secret: str = ""
    verify_tls: bool = False
    # HTTP redirects followed before the status and receive rules apply (ldirectord's LWP follows 7;
    # keepalived's HTTP_GET none)
    redirects: int = 7
    # connect checks of a UDP service: False = a ping (ldirectord), True = a TCP handshake (keepalived TCP_CHECK)
    tcp_on_udp: bool = False
    # when the fallback (sorry) server is used, see policy.py: "ldirectord" (while no real server passes its
    # check) or "keepalived" (while the live weight is below quorum, with hysteresis, instead of the live reals)
    fallback_rule: str = "ldirectord"
    # True: every check probes the port traffic goes to, not the port the source daemon probed (RealSpec.check_port)
    check_traffic_port: bool = False
    # keepalived `alpha`: a real server counts as failed until its first check passes (else as up)
    start_down: bool = False

    @classmethod
    def from_dict(cls, d: dict | None) -> CheckSpec:
        d = dict(d or {})
        if "expected_status" in d:
            d["expected_status"] = tuple(int(x) for x in d["expected_status"] or ())
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass(frozen=True, slots=True)  # slots: one per real server, 37,000 in a big state
class RealSpec:
    """One real server of a virtual service, as the operator wants it."""

    address: str
    port: int = 0
    forwarding: str = "masq"
    weight: int = 1
    u_threshold: int = 0
    l_threshold: int = 0
    admin_state: str = "active"
    # keepalived's per-real inhibit_on_failure: None = the service's `quiescent`
    quiescent: bool | None = None
    # the port the source daemon checked when it is not the traffic port (ldirectord checks a gate real's
    # configured port, or the service's port, e.g. 80 for http, for a real without one); 0 = the usual rule
    check_port: int = 0

    @property
    def key(self) -> tuple[str, int]:
        return (canonical_address(self.address), int(self.port))

    @classmethod
    def from_dict(cls, d: dict) -> RealSpec:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """A virtual service with everything the agent needs to run it on its own."""

    protocol: str  # tcp | udp | sctp | fwmark
    address: str = ""  # VIP; empty for fwmark services
    port: int = 0
    fwmark: int = 0
    family: int = 4  # 4 or 6 (fwmark services need it explicitly)
    scheduler: str = "wlc"
    flags: tuple[str, ...] = ()  # sh-fallback sh-port mh-fallback mh-port ops
    persistence: int = 0  # seconds, 0 = not persistent
    netmask: str = ""  # persistence granularity: 255.255.255.255 or an IPv6 prefix length
    check: CheckSpec = field(default_factory=CheckSpec)
    fallback: RealSpec | None = None
    reals: tuple[RealSpec, ...] = ()
    name: str = ""

    @property
    def key(self) -> tuple:
        """Stable identity of the kernel service: what ipvsadm uses to name it."""
        if self.protocol == "fwmark":
            return ("fwmark", self.family, int(self.fwmark))
        return (self.protocol, canonical_address(self.address), int(self.port))

    @property
    def label(self) -> str:
        """What events and the stats snapshot call it (the same name the dashboard shows)."""
        return service_label(self.protocol, self.address, self.port, self.fwmark, self.family)

    @classmethod
    def from_dict(cls, d: dict) -> ServiceSpec:
        d = dict(d)
        d["check"] = CheckSpec.from_dict(d.get("check"))
        d["fallback"] = RealSpec.from_dict(d["fallback"]) if d.get("fallback") else None
        d["reals"] = tuple(RealSpec.from_dict(r) for r in d.get("reals", ()))
        d["flags"] = tuple(d.get("flags", ()))
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class DesiredState:
    """Everything one director should be doing."""

    director: str
    revision: int = 0
    wan_interface: str = ""
    lan_interface: str = ""
    ip_forward: bool = True
    masquerade: tuple[str, ...] = ()
    vips: tuple[str, ...] = ()
    services: tuple[ServiceSpec, ...] = ()
    failover: dict | None = None

    @classmethod
    def from_dict(cls, d: dict) -> DesiredState:
        d = dict(d)
        if d.get("failover"):
            from .vrrp import Config

            Config.from_dict(d["failover"])  # a bad pair config rejects the document, like any bad field
        else:
            d["failover"] = None
        d["services"] = tuple(ServiceSpec.from_dict(s) for s in d.get("services", ()))
        d["masquerade"] = tuple(d.get("masquerade", ()))
        d["vips"] = tuple(d.get("vips", ()))
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def to_dict(self) -> dict:
        return plain(self)


_ATOMIC = frozenset({str, int, float, bool, type(None)})
_FIELDS: dict[type, tuple[str, ...]] = {}


def plain(value):
    """dataclasses.asdict without its deep copy of every leaf: what JSON takes, as fresh dicts, lists and
    tuples around the same immutable leaves (asdict took 0.3 s for a 37,000-real-server state)."""
    kind = type(value)
    if kind in _ATOMIC:
        return value
    names = _FIELDS.get(kind)
    if names is None and hasattr(kind, "__dataclass_fields__"):
        names = _FIELDS[kind] = tuple(f.name for f in fields(kind))
    if names is not None:
        out = {}
        for name in names:
            v = getattr(value, name)
            out[name] = v if type(v) in _ATOMIC else plain(v)
        return out
    if isinstance(value, (list, tuple)):
        return kind(plain(v) for v in value)
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    return value
