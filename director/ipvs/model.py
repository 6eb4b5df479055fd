"""The IPVS table as plain, frozen values: what wire.py reads and writes and what plan.py compares.

Nothing here knows about netlink (that is wire.py) or about the operator's wishes (desired.py): this is the
*kernel's* view, normalised so that two values are equal exactly when the kernel would hold the same thing.

Normalisation rules (so a round trip through the kernel compares equal):

* addresses are canonical text (``ipaddress``), protocols lower-case names, fwmark services have no address
  or port, non-fwmark services have ``fwmark == 0``;
* ``flags`` holds scheduler flag *names* only (``sh-fallback``, ``sh-port``, ``mh-fallback``, ``mh-port``,
  ``ops``), sorted, named after the scheduler the way ipvsadm names them (the kernel stores bits: SCHED1 is
  ``sh-fallback`` for sh and ``mh-fallback`` for mh). The kernel's *persistent* flag is derived from
  ``timeout > 0`` and never listed;
* ``netmask`` is a dotted quad for IPv4 services and a prefix length (as text) for IPv6 ones; the defaults are
  ``255.255.255.255`` and ``128``, as ipvsadm sends them;
* dests are kept sorted by (family, address, port), the order the kernel dumps them in does not matter;
* ``stats`` never take part in equality.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass, field, fields

from .. import keys

PROTOCOLS = {"tcp": 6, "udp": 17, "sctp": 132}
PROTOCOL_NAMES = {v: k for k, v in PROTOCOLS.items()}

# Kernel scheduler modules (net/netfilter/ipvs/ip_vs_<name>.c).
SCHEDULERS = ("rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos")

# Forwarding methods: IP_VS_CONN_F_* & IP_VS_CONN_F_FWD_MASK. "local" is what the kernel reports for a
# destination that is an address of the director itself; it is never asked for.
FWD_METHODS = {"masq": 0, "local": 1, "ipip": 2, "gate": 3}
FWD_NAMES = {v: k for k, v in FWD_METHODS.items()}
TUN_TYPES = {"ipip": 0, "gue": 1, "gre": 2}

# Service flags (include/uapi/linux/ip_vs.h).
F_PERSISTENT = 0x0001
F_HASHED = 0x0002  # kernel-internal, masked out when reading
F_ONEPACKET = 0x0004
F_SCHED1 = 0x0008
F_SCHED2 = 0x0010
F_SCHED3 = 0x0020
FLAG_BITS = {
    "sh-fallback": F_SCHED1,
    "sh-port": F_SCHED2,
    "mh-fallback": F_SCHED1,
    "mh-port": F_SCHED2,
    "ops": F_ONEPACKET,
    "flag-3": F_SCHED3,
}


def flags_to_bits(names) -> int:
    bits = 0
    for name in names:
        try:
            bits |= FLAG_BITS[name]
        except KeyError:
            raise ValueError(f"unknown service flag {name!r}") from None
    return bits


def bits_to_flags(bits: int, scheduler: str) -> tuple[str, ...]:
    """Flag names for kernel bits, named the way ipvsadm names them for this scheduler."""
    prefix = "mh" if scheduler == "mh" else "sh"
    names = []
    if bits & F_SCHED1:
        names.append(f"{prefix}-fallback")
    if bits & F_SCHED2:
        names.append(f"{prefix}-port")
    if bits & F_SCHED3:
        names.append("flag-3")
    if bits & F_ONEPACKET:
        names.append("ops")
    return tuple(sorted(names))


def default_netmask(family: int) -> str:
    return "255.255.255.255" if family == 4 else "128"


def normalize_netmask(netmask: str | int | None, family: int) -> str:
    """'' -> default; IPv4: dotted quad (a prefix length is converted); IPv6: prefix length 1..128."""
    text = str(netmask).strip().lstrip("/") if netmask not in (None, "") else ""
    if not text:
        return default_netmask(family)
    if family == 4:
        if text.isdigit():
            return str(ipaddress.IPv4Network(f"0.0.0.0/{int(text)}").netmask)
        return str(ipaddress.IPv4Address(text))
    plen = int(text)
    if not 1 <= plen <= 128:
        raise ValueError(f"IPv6 persistence netmask must be a prefix length 1..128, not {netmask!r}")
    return str(plen)


@functools.lru_cache(maxsize=65536)
def _canon(address: str) -> str:
    return str(ipaddress.ip_address(address))


@functools.lru_cache(maxsize=65536)
def _packed(address: str) -> bytes:
    return ipaddress.ip_address(address).packed


@dataclass(frozen=True)
class Stats:
    """Counters and rates of a service or destination (64-bit), plus connection counts (dests only)."""

    conns: int = 0
    inpkts: int = 0
    outpkts: int = 0
    inbytes: int = 0
    outbytes: int = 0
    cps: int = 0
    inpps: int = 0
    outpps: int = 0
    inbps: int = 0
    outbps: int = 0
    active: int = 0
    inactive: int = 0
    persistent: int = 0


STAT_FIELDS = tuple(f.name for f in fields(Stats))


def stats_dict(stats: Stats | None) -> dict:
    """Every stat field as a plain int (JSON-ready)."""
    stats = stats or Stats()
    return {name: int(getattr(stats, name)) for name in STAT_FIELDS}


@dataclass(frozen=True)
class Dest:
    """A real server of a service, as the kernel holds it."""

    address: str
    port: int = 0
    fwd: str = "masq"  # masq | gate | ipip (| local, reported only)
    weight: int = 1
    u_threshold: int = 0
    l_threshold: int = 0
    tun_type: str = "ipip"  # ipip | gue | gre, for fwd == "ipip"
    tun_port: int = 0  # GUE port
    tun_flags: int = 0
    stats: Stats = field(default_factory=Stats, compare=False, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "address", _canon(self.address))
        if self.fwd not in FWD_METHODS:
            raise ValueError(f"unknown forwarding method {self.fwd!r}")
        if self.tun_type not in TUN_TYPES:
            raise ValueError(f"unknown tunnel type {self.tun_type!r}")

    @property
    def family(self) -> int:
        return 6 if ":" in self.address else 4

    @property
    def key(self) -> tuple[str, int]:
        return (self.address, int(self.port))

    def settings(self) -> tuple:
        """What a SET_DEST can change in place."""
        tun = (self.tun_type, self.tun_port, self.tun_flags) if self.fwd == "ipip" else ()
        return (self.fwd, self.weight, self.u_threshold, self.l_threshold, tun)


@dataclass(frozen=True)
class Service:
    """A virtual service with its destinations, as the kernel holds it."""

    protocol: str  # tcp | udp | sctp | fwmark
    address: str = ""
    port: int = 0
    fwmark: int = 0
    family: int = 4
    scheduler: str = "wlc"
    flags: tuple[str, ...] = ()
    timeout: int = 0  # persistence in seconds; > 0 sets the kernel's persistent flag
    netmask: str = ""
    pe_name: str = ""  # persistence engine ("sip"); kept so a hand-made one round-trips
    dests: tuple[Dest, ...] = ()
    stats: Stats = field(default_factory=Stats, compare=False, repr=False)

    def __post_init__(self):
        if self.protocol != "fwmark" and self.protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {self.protocol!r}")
        if self.family not in (4, 6):
            raise ValueError(f"family must be 4 or 6, not {self.family!r}")
        if self.protocol == "fwmark":
            if not 1 <= int(self.fwmark) <= 0xFFFFFFFF:
                raise ValueError(f"a fwmark service needs a mark 1..2^32-1, not {self.fwmark!r}")
            object.__setattr__(self, "address", "")
            object.__setattr__(self, "port", 0)
        else:
            addr = _canon(self.address)
            object.__setattr__(self, "address", addr)
            object.__setattr__(self, "family", 6 if ":" in addr else 4)
            object.__setattr__(self, "fwmark", 0)
        object.__setattr__(
            self, "flags", bits_to_flags(flags_to_bits(self.flags), self.scheduler)
        )  # canonical names, sorted
        object.__setattr__(self, "netmask", normalize_netmask(self.netmask, self.family))
        object.__setattr__(self, "dests", tuple(sorted(self.dests, key=_dest_order)))

    @property
    def persistent(self) -> bool:
        return self.timeout > 0

    @property
    def flag_bits(self) -> int:
        """Kernel flags word (persistence included)."""
        return flags_to_bits(self.flags) | (F_PERSISTENT if self.persistent else 0)

    @property
    def key(self) -> tuple:
        if self.protocol == "fwmark":
            return ("fwmark", self.family, int(self.fwmark))
        return (self.protocol, self.address, int(self.port))

    def settings(self) -> tuple:
        """What a SET_SERVICE can change in place."""
        return (self.scheduler, self.flag_bits, self.timeout, self.netmask, self.pe_name)

    def label(self) -> str:
        """ipvsadm-style name: TCP 172.16.10.52:80, TCP [2001:db8::1]:80, FWM 1 IPv6."""
        return keys.service_label(self.protocol, self.address, self.port, self.fwmark, self.family)


def _dest_order(dest: Dest) -> tuple:
    packed = _packed(dest.address)
    return (len(packed), packed, dest.port)


def dest_label(dest: Dest) -> str:
    host = f"[{dest.address}]" if dest.family == 6 else dest.address
    return f"{host}:{dest.port}"


def service_id_of(svc: Service) -> str:
    return keys.service_key_for(svc)


def dest_id_of(sid: str, dest: Dest) -> str:
    return keys.dest_id(sid, dest.address, dest.port)


def real_port(spec, real) -> int:
    """The kernel port of a desired real server: port 0 means "the service port" (as in ipvsadm), and so does
    any port of a gate or ipip destination (ipvsadm and the daemons give those the virtual port: the packet is
    not rewritten, so no other port can be served); fwmark services keep the real's own port. Use it for dest
    ids built from a spec (keys.dest_id(sid, real.address, real_port(spec, real))) so they match
    dest_id_of() of the kernel dest."""
    if spec.protocol == "fwmark":
        return int(real.port)
    if real.port and real.forwarding == "masq":
        return int(real.port)
    return int(spec.port)


@functools.lru_cache(maxsize=1 << 16)
def _desired_dest(address: str, port: int, fwd: str, weight: int, u_threshold: int, l_threshold: int) -> Dest:
    """A desired Dest, shared between rebuilds (it is frozen and carries no counters): building one was
    most of the cost of recomputing a service's policy after a flip."""
    return Dest(address, port, fwd, weight, u_threshold, l_threshold)


def service_from_spec(spec, reals) -> Service:
    """Kernel service for a desired.ServiceSpec and its (RealSpec, kernel weight) pairs (policy.kernel_reals).

    A real's port 0 means "the service port" (ipvsadm does the same); fwmark services keep the real's port.
    """
    fwmark = spec.protocol == "fwmark"
    dests = []
    seen = set()
    for real, weight in reals:
        dest = _desired_dest(
            real.address,
            real_port(spec, real),
            real.forwarding,
            int(weight),
            int(real.u_threshold),
            int(real.l_threshold),
        )
        if dest.key in seen:  # the kernel has one dest per (address, port)
            continue
        seen.add(dest.key)
        dests.append(dest)
    return Service(
        protocol=spec.protocol,
        address=spec.address if not fwmark else "",
        port=int(spec.port) if not fwmark else 0,
        fwmark=int(spec.fwmark) if fwmark else 0,
        family=int(spec.family),
        scheduler=spec.scheduler,
        flags=tuple(spec.flags),
        timeout=int(spec.persistence or 0),
        netmask=spec.netmask,
        dests=tuple(dests),
    )
