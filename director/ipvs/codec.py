"""The IPVS generic netlink codec: pure encode/decode of the messages, no socket (wire.py owns the socket,
the sequence numbers and the batching).

We encode and decode the messages ourselves (a few dozen lines of ``struct``) instead of using pyroute2's
``IPVS`` class, because that class

* sends DEL for its "update" verb, and its ``from_message`` drops the statistics;
* encodes the persistence netmask as an IPv4 address even for IPv6 services (the kernel wants a prefix
  length there) and decodes the 16-byte addresses the kernel dumps through a family-dependent target;
* runs every request through an asyncio loop, which costs more than the kernel work itself at 10k ops.

Wire structs (include/uapi/linux/ip_vs.h, include/uapi/linux/netlink.h, genetlink.h); host byte order
unless marked "be"::

    nlmsghdr   u32 len | u16 type (= IPVS family id) | u16 flags | u32 seq | u32 pid     (16 bytes)
    genlmsghdr u8 cmd | u8 version (= 1) | u16 reserved                               (4 bytes)
    nlattr     u16 len (header included, unpadded) | u16 type | payload | pad to 4

    IPVS_CMD_ATTR_SERVICE (1, nested)             IPVS_CMD_ATTR_DEST (2, nested)
      1 AF          u16                             1 ADDR         16 bytes (union nf_inet_addr)
      2 PROTOCOL    u16 (6 tcp, 17 udp, 132 sctp)   2 PORT         be16
      3 ADDR        16 bytes (union nf_inet_addr)   3 FWD_METHOD   u32 (0 masq, 1 local, 2 ipip, 3 gate)
      4 PORT        be16                            4 WEIGHT       u32 (kernel: int >= 0)
      5 FWMARK      u32 (instead of 2..4)           5 U_THRESH     u32
      6 SCHED_NAME  NUL-terminated string           6 L_THRESH     u32 (must be <= U_THRESH)
      7 FLAGS       struct {u32 flags; u32 mask}    7/8/9 ACTIVE/INACT/PERSIST_CONNS u32 (dump only)
      8 TIMEOUT     u32 seconds                     10 STATS / 12 STATS64 (nested, dump only)
      9 NETMASK     u32: v4 = the mask's 4 bytes    11 ADDR_FAMILY u16
                    as on the wire, v6 = prefix     13 TUN_TYPE u8 (0 ipip, 1 gue, 2 gre)
                    length as a host integer        14 TUN_PORT be16, 15 TUN_FLAGS u16
      10 STATS (nested: 1 CONNS u32, 2 INPKTS u32, 3 OUTPKTS u32, 4 INBYTES u64, 5 OUTBYTES u64,
               6 CPS, 7 INPPS, 8 OUTPPS, 9 INBPS, 10 OUTBPS u32)
      11 PE_NAME    string
      12 STATS64    (nested, same ids, all u64)

Commands: NEW/SET/DEL_SERVICE 1/2/3, GET_SERVICE 4 (dump), NEW/SET/DEL_DEST 5/6/7, GET_DEST 8 (dump, needs
the service key), NEW/DEL_DAEMON 9/10 and GET_DAEMON 11 (dump): the connection sync daemons, nested in
IPVS_CMD_ATTR_DAEMON (3): 1 STATE u32 (1 master, 2 backup), 2 MCAST_IFN string, 3 SYNC_ID u32 (NEW needs
all three, DEL only STATE). A "full" service (NEW/SET) must carry SCHED_NAME, FLAGS, TIMEOUT and NETMASK; a full dest
FWD_METHOD, WEIGHT, U_THRESH and L_THRESH. Like ipvsadm we send 16-byte addresses and a flags mask of ~0.
"""

from __future__ import annotations

import functools
import ipaddress
import operator
import socket
import struct
import sys

from .model import (
    F_HASHED,
    F_PERSISTENT,
    FWD_METHODS,
    FWD_NAMES,
    PROTOCOL_NAMES,
    PROTOCOLS,
    STAT_FIELDS,
    TUN_TYPES,
    Dest,
    Service,
    Stats,
    bits_to_flags,
)

# -- netlink / genetlink constants --------------------------------------------------------------------------
NLM_F_REQUEST = 0x01
NLM_F_MULTI = 0x02
NLM_F_ACK = 0x04
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLA_TYPE_MASK = 0x3FFF  # strip NLA_F_NESTED / NLA_F_NET_BYTEORDER
GENL_ID_CTRL = 16
CTRL_CMD_GETFAMILY = 3
CTRL_ATTR_FAMILY_ID = 1
CTRL_ATTR_FAMILY_NAME = 2

IPVS_GENL_NAME = "IPVS"
IPVS_GENL_VERSION = 1

CMD_NEW_SERVICE, CMD_SET_SERVICE, CMD_DEL_SERVICE, CMD_GET_SERVICE = 1, 2, 3, 4
CMD_NEW_DEST, CMD_SET_DEST, CMD_DEL_DEST, CMD_GET_DEST = 5, 6, 7, 8

CMD_NEW_DAEMON, CMD_DEL_DAEMON, CMD_GET_DAEMON = 9, 10, 11

CMD_ATTR_SERVICE, CMD_ATTR_DEST, CMD_ATTR_DAEMON = 1, 2, 3
DAEMON_STATE, DAEMON_MCAST_IFN, DAEMON_SYNC_ID = 1, 2, 3
SYNC_STATES = {"master": 1, "backup": 2}

SVC_AF, SVC_PROTOCOL, SVC_ADDR, SVC_PORT, SVC_FWMARK = 1, 2, 3, 4, 5
SVC_SCHED_NAME, SVC_FLAGS, SVC_TIMEOUT, SVC_NETMASK, SVC_STATS, SVC_PE_NAME, SVC_STATS64 = (
    6,
    7,
    8,
    9,
    10,
    11,
    12,
)

DEST_ADDR, DEST_PORT, DEST_FWD_METHOD, DEST_WEIGHT, DEST_U_THRESH, DEST_L_THRESH = 1, 2, 3, 4, 5, 6
DEST_ACTIVE_CONNS, DEST_INACT_CONNS, DEST_PERSIST_CONNS, DEST_STATS = 7, 8, 9, 10
DEST_ADDR_FAMILY, DEST_STATS64, DEST_TUN_TYPE, DEST_TUN_PORT, DEST_TUN_FLAGS = 11, 12, 13, 14, 15

STATS_ATTRS = {
    1: "conns",
    2: "inpkts",
    3: "outpkts",
    4: "inbytes",
    5: "outbytes",
    6: "cps",
    7: "inpps",
    8: "outpps",
    9: "inbps",
    10: "outbps",
}

TUN_NAMES = {v: k for k, v in TUN_TYPES.items()}
STAT_NAMES = STAT_FIELDS  # Stats' fields in order: the 10 kernel counters, then active, inactive, persistent
AF = {4: socket.AF_INET, 6: socket.AF_INET6}
FAMILY_OF_AF = {socket.AF_INET: 4, socket.AF_INET6: 6}

VERBS = {
    "add_service": CMD_NEW_SERVICE,
    "set_service": CMD_SET_SERVICE,
    "del_service": CMD_DEL_SERVICE,
    "add_dest": CMD_NEW_DEST,
    "set_dest": CMD_SET_DEST,
    "del_dest": CMD_DEL_DEST,
}


# -- encoding ----------------------------------------------------------------------------------------------
def nla(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


def nla_u8(kind: int, value: int) -> bytes:
    return nla(kind, struct.pack("=B", value))


def nla_u16(kind: int, value: int) -> bytes:
    return nla(kind, struct.pack("=H", value))


def nla_be16(kind: int, value: int) -> bytes:
    return nla(kind, struct.pack("!H", value))


def nla_u32(kind: int, value: int) -> bytes:
    return nla(kind, struct.pack("=I", value))


def nla_str(kind: int, value: str) -> bytes:
    return nla(kind, value.encode() + b"\0")


def inet_addr(address: str) -> bytes:
    """union nf_inet_addr: 16 bytes, an IPv4 address in the first four."""
    return ipaddress.ip_address(address).packed.ljust(16, b"\0")


def netmask_u32(svc: Service) -> bytes:
    if svc.family == 4:
        return ipaddress.IPv4Address(svc.netmask).packed  # be32 stored as is
    return struct.pack("=I", int(svc.netmask))


def service_key_attrs(svc: Service) -> bytes:
    out = nla_u16(SVC_AF, AF[svc.family])
    if svc.protocol == "fwmark":
        return out + nla_u32(SVC_FWMARK, svc.fwmark)
    return (
        out
        + nla_u16(SVC_PROTOCOL, PROTOCOLS[svc.protocol])
        + nla(SVC_ADDR, inet_addr(svc.address))
        + nla_be16(SVC_PORT, svc.port)
    )


def service_attrs(svc: Service) -> bytes:
    """A full service entry (NEW_SERVICE / SET_SERVICE)."""
    out = (
        service_key_attrs(svc)
        + nla_str(SVC_SCHED_NAME, svc.scheduler)
        + nla(SVC_FLAGS, struct.pack("=II", svc.flag_bits, 0xFFFFFFFF))
        + nla_u32(SVC_TIMEOUT, svc.timeout)
        + nla(SVC_NETMASK, netmask_u32(svc))
    )
    if svc.pe_name:
        out += nla_str(SVC_PE_NAME, svc.pe_name)
    return out


def dest_attrs(dest: Dest, full: bool = True) -> bytes:
    out = nla(DEST_ADDR, inet_addr(dest.address)) + nla_be16(DEST_PORT, dest.port)
    if full:
        out += (
            nla_u32(DEST_FWD_METHOD, FWD_METHODS[dest.fwd])
            + nla_u32(DEST_WEIGHT, dest.weight)
            + nla_u32(DEST_U_THRESH, dest.u_threshold)
            + nla_u32(DEST_L_THRESH, dest.l_threshold)
        )
    out += nla_u16(DEST_ADDR_FAMILY, AF[dest.family])
    if full and dest.fwd == "ipip":
        out += (
            nla_u8(DEST_TUN_TYPE, TUN_TYPES[dest.tun_type])
            + nla_be16(DEST_TUN_PORT, dest.tun_port)
            + nla_u16(DEST_TUN_FLAGS, dest.tun_flags)
        )
    return out


def daemon_attrs(state: str, ifname: str | None = None, sync_id: int = 0) -> bytes:
    """IPVS_CMD_ATTR_DAEMON for NEW_DAEMON (state, interface, sync id) or, without ifname, DEL_DAEMON."""
    attrs = nla_u32(DAEMON_STATE, SYNC_STATES[state])
    if ifname is not None:
        attrs += nla_str(DAEMON_MCAST_IFN, ifname) + nla_u32(DAEMON_SYNC_ID, sync_id)
    return nla(CMD_ATTR_DAEMON, attrs)


def genl_message(family_id: int, cmd: int, attrs: bytes, flags: int, seq: int, version: int = 1) -> bytes:
    body = struct.pack("=BBH", cmd, version, 0) + attrs
    return struct.pack("=IHHII", 16 + len(body), family_id, flags, seq, 0) + body


def request(family_id: int, verb: str, service: Service, dest: Dest | None, seq: int, ack: bool) -> bytes:
    """One IPVS request; verb is one of VERBS (add_service ... del_dest)."""
    cmd = VERBS[verb]
    if verb in ("add_service", "set_service"):
        attrs = nla(CMD_ATTR_SERVICE, service_attrs(service))
    elif verb == "del_service":
        attrs = nla(CMD_ATTR_SERVICE, service_key_attrs(service))
    else:
        if dest is None:
            raise ValueError(f"{verb} needs a dest")
        attrs = nla(CMD_ATTR_SERVICE, service_key_attrs(service)) + nla(
            CMD_ATTR_DEST, dest_attrs(dest, full=verb != "del_dest")
        )
    flags = NLM_F_REQUEST | (NLM_F_ACK if ack else 0)
    return genl_message(family_id, cmd, attrs, flags, seq, IPVS_GENL_VERSION)


# -- decoding ----------------------------------------------------------------------------------------------
_HH = struct.Struct("=HH")
NATIVE = sys.byteorder


def parse_attrs(data: bytes | memoryview) -> dict[int, bytes]:
    """Top-level attributes of a buffer: type -> payload (the last one wins)."""
    data = bytes(data)
    out: dict[int, bytes] = {}
    unpack = _HH.unpack_from
    pos = 0
    end = len(data)
    while pos + 4 <= end:
        length, kind = unpack(data, pos)
        if length < 4:
            break
        out[kind & NLA_TYPE_MASK] = data[pos + 4 : pos + length]
        pos += (length + 3) & ~3
    return out


def _uint(payload: bytes) -> int:
    """u8/u16/u32/u64 in host byte order."""
    return int.from_bytes(payload, NATIVE)


def _be16(payload: bytes) -> int:
    return struct.unpack_from("!H", payload)[0]


def _str(payload: bytes) -> str:
    return bytes(payload).split(b"\0", 1)[0].decode()


@functools.lru_cache(maxsize=65536)
def _addr(raw: bytes, family: int) -> str:
    return str(ipaddress.IPv4Address(raw[:4]) if family == 4 else ipaddress.IPv6Address(raw[:16]))


_stats_layouts: dict[tuple, tuple | None] = {}


def _stats_layout(raw: bytes) -> tuple | None:
    """A struct for this exact stats nest layout (the kernel puts IPVS_STATS_ATTR_PAD attributes where a u64
    would be unaligned, so there are a few layouts): (Struct, header getter, headers, value getter)."""
    fmt, headers, hdr_idx, val_idx = "=", [], [], {}
    pos, end, n = 0, len(raw), 0
    while pos + 4 <= end:
        length, kind = _HH.unpack_from(raw, pos)
        plen = length - 4
        if length < 4 or length % 4 or plen not in (0, 4, 8):
            return None
        fmt += "HH" + {0: "", 4: "I", 8: "Q"}[plen]
        hdr_idx += [n, n + 1]
        headers += [length, kind]
        n += 2
        if plen:
            if 1 <= (kind & NLA_TYPE_MASK) <= 10:
                val_idx[kind & NLA_TYPE_MASK] = n
            n += 1
        pos += length
    if pos != end or sorted(val_idx) != list(range(1, 11)):
        return None
    return (
        struct.Struct(fmt),
        operator.itemgetter(*hdr_idx),
        tuple(headers),
        operator.itemgetter(*(val_idx[k] for k in range(1, 11))),
    )


def decode_stats(attrs: dict[int, bytes], stats32: int, stats64: int, **conns: int) -> Stats:
    """Prefer the 64-bit counters (kernel >= 4.1); fall back to the 32-bit ones (mixed u32/u64)."""
    raw = attrs.get(stats64)
    if raw is None:
        raw = attrs.get(stats32)
    if not raw:
        return Stats(**conns)
    key = (len(raw), raw[:4])
    layout = _stats_layouts.get(key, False)
    if layout is False:
        layout = _stats_layouts[key] = _stats_layout(raw) if len(_stats_layouts) < 64 else None
    if layout is not None:
        st, get_headers, headers, get_values = layout
        fields = st.unpack(raw)
        if get_headers(fields) == headers:  # same layout as the one we compiled: take the values
            return Stats(*get_values(fields), **conns)
    values = [0] * 10  # any other layout: walk the attributes
    pos, end = 0, len(raw)
    while pos + 4 <= end:
        length, kind = _HH.unpack_from(raw, pos)
        if length < 4:
            break
        kind &= NLA_TYPE_MASK
        if 1 <= kind <= 10:
            values[kind - 1] = int.from_bytes(raw[pos + 4 : pos + length], NATIVE)
        pos += (length + 3) & ~3
    return Stats(*values, **conns)


def decode_service(attrs: dict[int, bytes], dests: tuple[Dest, ...] = ()) -> Service:
    family = FAMILY_OF_AF[_uint(attrs[SVC_AF])]
    scheduler = _str(attrs[SVC_SCHED_NAME]) if SVC_SCHED_NAME in attrs else ""
    flags = struct.unpack_from("=I", attrs[SVC_FLAGS])[0] if SVC_FLAGS in attrs else 0
    flags &= ~F_HASHED
    timeout = _uint(attrs[SVC_TIMEOUT]) if SVC_TIMEOUT in attrs else 0
    netmask = ""
    if SVC_NETMASK in attrs:
        raw = attrs[SVC_NETMASK]
        netmask = str(ipaddress.IPv4Address(bytes(raw[:4]))) if family == 4 else str(_uint(raw))
    fwmark = _uint(attrs[SVC_FWMARK]) if SVC_FWMARK in attrs else 0
    common = dict(
        family=family,
        scheduler=scheduler,
        flags=bits_to_flags(flags, scheduler),
        timeout=timeout if flags & F_PERSISTENT else 0,
        netmask=netmask,
        pe_name=_str(attrs[SVC_PE_NAME]) if SVC_PE_NAME in attrs else "",
        dests=dests,
        stats=decode_stats(attrs, SVC_STATS, SVC_STATS64),
    )
    if fwmark:
        return Service(protocol="fwmark", fwmark=fwmark, **common)
    return Service(
        protocol=PROTOCOL_NAMES.get(_uint(attrs[SVC_PROTOCOL]), str(_uint(attrs[SVC_PROTOCOL]))),
        address=_addr(attrs[SVC_ADDR], family),
        port=_be16(attrs[SVC_PORT]),
        **common,
    )


def decode_dest(attrs: dict[int, bytes], service_family: int) -> Dest:
    family = service_family
    if DEST_ADDR_FAMILY in attrs:
        family = FAMILY_OF_AF[_uint(attrs[DEST_ADDR_FAMILY])]
    fwd = _uint(attrs[DEST_FWD_METHOD]) & 0x7 if DEST_FWD_METHOD in attrs else 0
    tun_type = _uint(attrs[DEST_TUN_TYPE]) if DEST_TUN_TYPE in attrs else 0
    return Dest(
        address=_addr(attrs[DEST_ADDR], family),
        port=_be16(attrs[DEST_PORT]),
        fwd=FWD_NAMES.get(fwd, "masq"),
        weight=_uint(attrs[DEST_WEIGHT]) if DEST_WEIGHT in attrs else 0,
        u_threshold=_uint(attrs[DEST_U_THRESH]) if DEST_U_THRESH in attrs else 0,
        l_threshold=_uint(attrs[DEST_L_THRESH]) if DEST_L_THRESH in attrs else 0,
        tun_type=TUN_NAMES.get(tun_type, "ipip"),
        tun_port=_be16(attrs[DEST_TUN_PORT]) if DEST_TUN_PORT in attrs else 0,
        tun_flags=_uint(attrs[DEST_TUN_FLAGS]) if DEST_TUN_FLAGS in attrs else 0,
        stats=decode_stats(
            attrs,
            DEST_STATS,
            DEST_STATS64,
            active=_uint(attrs[DEST_ACTIVE_CONNS]) if DEST_ACTIVE_CONNS in attrs else 0,
            inactive=_uint(attrs[DEST_INACT_CONNS]) if DEST_INACT_CONNS in attrs else 0,
            persistent=_uint(attrs[DEST_PERSIST_CONNS]) if DEST_PERSIST_CONNS in attrs else 0,
        ),
    )


def split_messages(buf: bytes | memoryview):
    """Yield (type, flags, seq, payload) for every netlink message in a receive buffer."""
    mv = memoryview(buf)
    pos = 0
    while pos + 16 <= len(mv):
        length, kind, flags, seq, _pid = struct.unpack_from("=IHHII", mv, pos)
        if length < 16:
            break
        yield kind, flags, seq, mv[pos + 16 : pos + length]
        pos += (length + 3) & ~3


def decode_family_id(payload: bytes) -> int | None:
    """The family id in a CTRL_CMD_GETFAMILY answer (after the genl header), None if it has none."""
    attrs = parse_attrs(payload)
    return _uint(attrs[CTRL_ATTR_FAMILY_ID]) if CTRL_ATTR_FAMILY_ID in attrs else None


def decode_daemon(attrs: dict[int, bytes]) -> tuple[str, dict] | None:
    """A sync daemon entry: ("master"|"backup", {"ifname", "sync_id"}), None for an unknown state."""
    names = {v: k for k, v in SYNC_STATES.items()}
    state = names.get(_uint(attrs.get(DAEMON_STATE, b"\0\0\0\0")))
    if state is None:
        return None
    return state, {
        "ifname": _str(attrs.get(DAEMON_MCAST_IFN, b"")),
        "sync_id": _uint(attrs.get(DAEMON_SYNC_ID, b"\0\0\0\0")),
    }


def error_code(payload: bytes) -> int:
    """The errno of an NLMSG_ERROR payload (0 = an ACK)."""
    return -struct.unpack_from("=i", payload)[0]


# -- the fast path for dumps of many destinations --------------------------------------------------------------
# A GET_DEST dump answers with one message per destination, all built by the same kernel function, so all of
# them have one of very few attribute layouts (the kernel inserts PAD attributes where a u64 would be
# unaligned). We compile a struct for each layout seen and read a destination with one unpack_from at its
# offset in the receive buffer: no slicing, no attribute dicts. The headers unpacked with it are compared
# with the compiled ones, so a message of another shape never matches; those take the generic path.
_NESTED = 0x8000
_FMT = {0: "", 1: "B3x", 2: "H2x", 4: "I", 8: "Q", 16: "16s"}
_DEST_LAYOUTS: dict[tuple, tuple | None] = {}
_LITTLE = NATIVE == "little"


def _walk(buf, pos: int, end: int, path: tuple, fmt: list, headers: list, where: dict, n: list) -> bool:
    """Append the struct format of the attributes in buf[pos:end] (recursing into nests); False if unusual."""
    while pos + 4 <= end:
        length, kind = _HH.unpack_from(buf, pos)
        if length < 4 or pos + length > end:
            return False
        plen = length - 4
        fmt.append("HH")
        headers.append((n[0], length))
        headers.append((n[0] + 1, kind))
        n[0] += 2
        bare = kind & NLA_TYPE_MASK
        nests = (path == () and bare == CMD_ATTR_DEST) or (
            path == (CMD_ATTR_DEST,) and bare in (DEST_STATS, DEST_STATS64)
        )
        if kind & _NESTED or nests:
            if not _walk(buf, pos + 4, pos + length, (*path, bare), fmt, headers, where, n):
                return False
        else:
            code = _FMT.get(plen)
            if code is None:
                return False
            if plen:
                fmt.append(code)
                where[(*path, bare)] = n[0]
                n[0] += 1
        pad = -length % 4
        if pad:
            if plen not in (1, 2):  # "B3x"/"H2x" already cover their padding
                fmt.append(f"{pad}x")
        pos += length + pad
    return pos == end


def _dest_layout(buf, start: int, end: int) -> tuple | None:
    fmt: list[str] = ["="]
    headers: list[tuple[int, int]] = []
    where: dict[tuple, int] = {}
    if not _walk(buf, start, end, (), fmt, headers, where, [0]):
        return None
    d = (CMD_ATTR_DEST,)
    if (*d, DEST_ADDR) not in where or (*d, DEST_PORT) not in where:
        return None
    stats = (*d, DEST_STATS64) if any(k[:2] == (*d, DEST_STATS64) for k in where) else (*d, DEST_STATS)
    fields = [
        where.get((*d, k))
        for k in (
            DEST_ADDR, DEST_PORT, DEST_FWD_METHOD, DEST_WEIGHT, DEST_U_THRESH, DEST_L_THRESH, DEST_ACTIVE_CONNS,
            DEST_INACT_CONNS, DEST_PERSIST_CONNS, DEST_ADDR_FAMILY, DEST_TUN_TYPE, DEST_TUN_PORT, DEST_TUN_FLAGS,
        )
    ] + [where.get((*stats, k)) for k in range(1, 11)]  # fmt: skip
    return (
        struct.Struct("".join(fmt)),
        operator.itemgetter(*(i for i, _ in headers)),
        tuple(v for _, v in headers),
        tuple(fields),
    )


_new_dest = object.__new__
_new_stats = object.__new__


def decode_dest_at(buf, start: int, end: int, service_family: int) -> Dest:
    """decode_dest() of the GET_DEST answer payload in buf[start:end] (after the genl header), fast for the
    layouts the kernel sends. The values are the kernel's: addresses come out canonical, forwarding and
    tunnel types through the same name maps, so the objects equal what decode_dest builds."""
    key = end - start
    layout = _DEST_LAYOUTS.get(key, False)
    if layout is False:
        layout = _DEST_LAYOUTS[key] = _dest_layout(buf, start, end) if len(_DEST_LAYOUTS) < 64 else None
    if layout is not None:
        st, get_headers, headers, fields = layout
        if st.size == key:
            vals = st.unpack_from(buf, start)
            if get_headers(vals) == headers:
                return _dest_from(vals, fields, service_family)
    nest = parse_attrs(memoryview(buf)[start:end]).get(CMD_ATTR_DEST)
    if nest is None:
        raise ValueError("a dest answer without a dest")
    return decode_dest(parse_attrs(nest), service_family)


def _dest_from(vals: tuple, fields: tuple, service_family: int) -> Dest:
    (addr, port, fwd, weight, uth, lth, active, inactive, persistent, af, tun_type, tun_port, tun_flags,
     *counters) = (None if i is None else vals[i] for i in fields)  # fmt: skip
    family = FAMILY_OF_AF[af] if af is not None else service_family
    if _LITTLE:
        port = ((port & 0xFF) << 8) | (port >> 8)
        if tun_port is not None:
            tun_port = ((tun_port & 0xFF) << 8) | (tun_port >> 8)
    stats = _new_stats(Stats)
    stats.__dict__.update(
        zip(
            STAT_NAMES,
            (*(c or 0 for c in counters), active or 0, inactive or 0, persistent or 0),
            strict=True,
        )
    )
    dest = _new_dest(Dest)
    dest.__dict__.update(
        address=_addr(addr, family),
        port=port,
        fwd=FWD_NAMES.get((fwd or 0) & 0x7, "masq"),
        weight=weight or 0,
        u_threshold=uth or 0,
        l_threshold=lth or 0,
        tun_type=TUN_NAMES.get(tun_type or 0, "ipip"),
        tun_port=tun_port or 0,
        tun_flags=tun_flags or 0,
        stats=stats,
    )
    return dest
