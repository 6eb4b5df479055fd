"""IPVS over generic netlink: the only module that talks to the kernel's IPVS table (and imports pyroute2).

We encode and decode the messages ourselves (a few dozen lines of ``struct``) instead of using pyroute2's
``IPVS`` class, because that class

* sends DEL for its "update" verb, and its ``from_message`` drops the statistics;
* encodes the persistence netmask as an IPv4 address even for IPv6 services (the kernel wants a prefix
  length there) and decodes the 16-byte addresses the kernel dumps through a family-dependent target;
* runs every request through an asyncio loop, which costs more than the kernel work itself at 10k ops.

pyroute2 is used for what it is good at here: opening the socket inside a named network namespace.

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

Batching: `apply()` packs many requests into one sendmsg. The kernel handles the messages of one send in
order, synchronously, inside that sendmsg; only the *last* request of a batch asks for an ACK, the others
are answered only when they fail (netlink always reports errors). Reading up to the last ACK therefore
yields exactly the failed requests, each with its sequence number - per-op errors at a fraction of the
syscalls one request per round trip costs.
"""

from __future__ import annotations

import errno
import functools
import ipaddress
import operator
import os
import socket
import struct
import sys
import threading
from collections.abc import Iterable

from .model import (
    F_HASHED,
    F_PERSISTENT,
    FWD_METHODS,
    FWD_NAMES,
    PROTOCOL_NAMES,
    PROTOCOLS,
    TUN_TYPES,
    Dest,
    Service,
    Stats,
    bits_to_flags,
    dest_label,
)

# -- netlink / genetlink constants --------------------------------------------------------------------------
NETLINK_GENERIC = 16
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
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
AF = {4: socket.AF_INET, 6: socket.AF_INET6}
FAMILY_OF_AF = {socket.AF_INET: 4, socket.AF_INET6: 6}

BATCH_MAX_MSGS = 128
BATCH_MAX_BYTES = 48 * 1024
SOCKET_BUFFER = 4 * 1024 * 1024
TIMEOUT = 10.0
MAX_RECV_PER_DUMP = 1_000_000

VERBS = {
    "add_service": CMD_NEW_SERVICE,
    "set_service": CMD_SET_SERVICE,
    "del_service": CMD_DEL_SERVICE,
    "add_dest": CMD_NEW_DEST,
    "set_dest": CMD_SET_DEST,
    "del_dest": CMD_DEL_DEST,
}


class WireError(OSError):
    """A request the kernel refused: errno + what was asked, in ipvsadm terms."""

    def __init__(self, err: int, what: str):
        super().__init__(err, os.strerror(err))
        self.what = what

    @property
    def reason(self) -> str:
        """'No such process (ESRCH)'."""
        return f"{self.strerror} ({errno.errorcode.get(self.errno, self.errno)})"

    def __str__(self) -> str:
        return f"{self.what}: {self.reason}"


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


def describe(verb: str, service: Service, dest: Dest | None = None) -> str:
    """ipvsadm-ish text for an operation: 'set_dest TCP 172.16.10.52:80 -> 192.168.1.4:80 weight 0'."""
    if dest is None:
        extra = ""
        if verb != "del_service":
            extra = f" scheduler {service.scheduler}"
            if service.flags:
                extra += f" flags {','.join(service.flags)}"
            if service.timeout:
                extra += f" persistent {service.timeout}"
        return f"{verb} {service.label()}{extra}"
    extra = "" if verb == "del_dest" else f" {dest.fwd} weight {dest.weight}"
    if verb != "del_dest" and (dest.u_threshold or dest.l_threshold):
        extra += f" thresholds {dest.l_threshold}..{dest.u_threshold}"
    return f"{verb} {service.label()} -> {dest_label(dest)}{extra}"


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


def _error_code(payload: bytes) -> int:
    return -struct.unpack_from("=i", payload)[0]


# -- the socket ----------------------------------------------------------------------------------------------
class Wire:
    """A generic netlink socket bound to the IPVS family, optionally inside a named network namespace.

    Thread-safe (one lock around the socket). Verbs raise WireError; `apply()` reports per operation.
    """

    def __init__(self, netns: str | None = None):
        self.netns = netns
        self._lock = threading.RLock()
        self._sock: socket.socket | None = None
        self._family: int | None = None
        self._seq = 0

    # connection --------------------------------------------------------------------------------------
    def _open(self) -> socket.socket:
        if self._sock is not None:
            return self._sock
        if self.netns:
            from pyroute2 import netns as pr_netns

            sock = pr_netns.create_socket(
                self.netns, socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC, flags=0
            )
        else:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
        try:
            for opt, force in ((socket.SO_SNDBUF, 32), (socket.SO_RCVBUF, 33)):  # *BUFFORCE needs root
                try:
                    sock.setsockopt(socket.SOL_SOCKET, force, SOCKET_BUFFER)
                except OSError:
                    sock.setsockopt(socket.SOL_SOCKET, opt, SOCKET_BUFFER)
            try:
                sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)  # errors without the request echoed
            except OSError:
                pass
            sock.settimeout(TIMEOUT)
            sock.bind((0, 0))
            self._sock = sock
            self._family = self._resolve_family()
        except Exception:
            self._sock = None
            sock.close()
            raise
        return sock

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None
                self._family = None

    def __enter__(self) -> Wire:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0x7FFFFFFF or 1
        return self._seq

    def _send(self, data: bytes) -> None:
        try:
            self._sock.send(data)
        except OSError:
            self.close()  # a fresh socket next time (and a fresh family id, if ip_vs was reloaded)
            raise

    def _recv(self) -> bytes:
        try:
            return self._sock.recv(1 << 20)
        except OSError:
            self.close()  # a timeout or overrun leaves answers in flight: never read them as ours
            raise

    def _transact(self, family: int, cmd: int, attrs: bytes, flags: int, what: str) -> list[bytes]:
        """Send one request and collect the payloads (after the genl header) of its answers until DONE or
        the ACK; a kernel error raises WireError. Bounded by MAX_RECV_PER_DUMP reads of TIMEOUT each."""
        seq = self._next_seq()
        self._send(genl_message(family, cmd, attrs, flags, seq))
        out = []
        for _ in range(MAX_RECV_PER_DUMP):
            for kind, _flags, mseq, payload in split_messages(self._recv()):
                if mseq != seq:
                    continue
                if kind == NLMSG_DONE:
                    return out
                if kind == NLMSG_ERROR:
                    err = _error_code(payload)
                    if err:
                        raise WireError(err, what)
                    return out
                out.append(payload[4:])
        raise WireError(errno.EMSGSIZE, f"{what}: no end of answer")

    def _resolve_family(self) -> int:
        what = "resolve generic netlink family IPVS (is ip_vs loaded?)"
        answers = self._transact(
            GENL_ID_CTRL,
            CTRL_CMD_GETFAMILY,
            nla_str(CTRL_ATTR_FAMILY_NAME, IPVS_GENL_NAME),
            NLM_F_REQUEST | NLM_F_ACK,
            what,
        )
        for payload in answers:
            attrs = parse_attrs(payload)
            if CTRL_ATTR_FAMILY_ID in attrs:
                return _uint(attrs[CTRL_ATTR_FAMILY_ID])
        raise WireError(errno.EPROTO, what)

    # dumps --------------------------------------------------------------------------------------------
    def _entries(self, cmd: int, attrs: bytes, flags: int, what: str) -> list[dict[int, bytes]]:
        """Attributes of the nested service/dest entry of each answer."""
        self._open()
        nest = {CMD_GET_DEST: CMD_ATTR_DEST, CMD_GET_DAEMON: CMD_ATTR_DAEMON}.get(cmd, CMD_ATTR_SERVICE)
        out = []
        for payload in self._transact(self._family, cmd, attrs, flags, what):
            nested = parse_attrs(payload).get(nest)
            if nested is not None:
                out.append(parse_attrs(nested))
        return out

    def _dump(self, cmd: int, attrs: bytes = b"") -> list[dict[int, bytes]]:
        return self._entries(cmd, attrs, NLM_F_REQUEST | NLM_F_DUMP, f"dump (cmd {cmd})")

    def _dump_dests(self, svc: Service) -> tuple[Dest, ...]:
        rows = self._dump(CMD_GET_DEST, nla(CMD_ATTR_SERVICE, service_key_attrs(svc)))
        return tuple(decode_dest(attrs, svc.family) for attrs in rows)

    def services(self) -> list[Service]:
        """Services without their dests (one dump)."""
        with self._lock:
            return [decode_service(attrs) for attrs in self._dump(CMD_GET_SERVICE)]

    def dump(self) -> list[Service]:
        """Every service with its dests and full statistics."""
        with self._lock:
            out = []
            for attrs in self._dump(CMD_GET_SERVICE):
                svc = decode_service(attrs)
                try:
                    dests = self._dump_dests(svc)
                except WireError as exc:
                    if exc.errno != errno.ESRCH:  # deleted between the two dumps
                        raise
                    continue
                out.append(decode_service(attrs, dests))
            return out

    def _get_service(self, svc: Service) -> dict[int, bytes] | None:
        """One service's attributes (GET_SERVICE without DUMP), None if the kernel has no such service."""
        try:
            found = self._entries(
                CMD_GET_SERVICE,
                nla(CMD_ATTR_SERVICE, service_key_attrs(svc)),
                NLM_F_REQUEST | NLM_F_ACK,
                f"get service {svc.label()}",
            )
        except WireError as exc:
            if exc.errno in (errno.ESRCH, errno.ENOENT):
                return None
            raise
        return found[0] if found else None

    def dump_services(self, service_keys) -> list[Service]:
        """Only the named services (Service.key tuples) with their dests and stats: a scoped dump whose cost
        grows with the number of keys, not with the size of the table. Absent services are left out."""
        out = []
        with self._lock:
            self._open()
            for key in service_keys:
                probe = _service_for_key(key)
                attrs = self._get_service(probe)
                if attrs is None:
                    continue
                try:
                    dests = self._dump_dests(probe)
                except WireError as exc:
                    if exc.errno != errno.ESRCH:
                        raise
                    continue
                out.append(decode_service(attrs, dests))
        return out

    def get_dests(self, service_key: tuple) -> tuple[Dest, ...]:
        svc = _service_for_key(service_key)
        with self._lock:
            self._open()
            return self._dump_dests(svc)

    def dest_weight(self, service_key: tuple, dest_key: tuple) -> int | None:
        """Kernel weight of one dest (one dest dump of one service), None if either is absent."""
        address, port = dest_key
        want = (str(ipaddress.ip_address(address)), int(port))
        try:
            dests = self.get_dests(service_key)
        except WireError as exc:
            if exc.errno == errno.ESRCH:
                return None
            raise
        for dest in dests:
            if dest.key == want:
                return dest.weight
        return None

    # connection sync daemons --------------------------------------------------------------------------
    def daemons(self) -> dict[str, dict]:
        """Running sync daemons: {"master"|"backup": {"ifname", "sync_id"}}."""
        names = {v: k for k, v in SYNC_STATES.items()}
        with self._lock:
            rows = self._dump(CMD_GET_DAEMON)
        out = {}
        for attrs in rows:
            state = names.get(_uint(attrs.get(DAEMON_STATE, b"\0\0\0\0")))
            if state:
                out[state] = {
                    "ifname": _str(attrs.get(DAEMON_MCAST_IFN, b"")),
                    "sync_id": _uint(attrs.get(DAEMON_SYNC_ID, b"\0\0\0\0")),
                }
        return out

    def start_daemon(self, state: str, ifname: str, sync_id: int = 0) -> None:
        """Start the master or backup sync daemon on `ifname` (multicast 224.0.0.81:8848); EEXIST if running."""
        with self._lock:
            self._open()
            self._transact(
                self._family,
                CMD_NEW_DAEMON,
                daemon_attrs(state, ifname, sync_id),
                NLM_F_REQUEST | NLM_F_ACK,
                f"start {state} sync daemon on {ifname}",
            )

    def stop_daemon(self, state: str) -> None:
        with self._lock:
            self._open()
            self._transact(
                self._family,
                CMD_DEL_DAEMON,
                daemon_attrs(state),
                NLM_F_REQUEST | NLM_F_ACK,
                f"stop {state} sync daemon",
            )

    # changes ------------------------------------------------------------------------------------------
    def apply(self, ops: Iterable) -> list[WireError | None]:
        """Send operations (objects with .kind, .service, .dest) in batches; one result per op, in order."""
        ops = list(ops)
        results: list[WireError | None] = [None] * len(ops)
        with self._lock:
            self._open()
            i = 0
            while i < len(ops):
                chunk: list[tuple[int, int, bytes]] = []  # (op index, seq, bytes)
                size = 0
                while i < len(ops) and len(chunk) < BATCH_MAX_MSGS and size < BATCH_MAX_BYTES:
                    op = ops[i]
                    seq = self._next_seq()
                    msg = request(self._family, op.kind, op.service, op.dest, seq, ack=False)
                    chunk.append((i, seq, msg))
                    size += len(msg)
                    i += 1
                self._send_chunk(ops, chunk, results)
                self._open()  # after a lost batch (ENOBUFS) the socket was replaced
        return results

    def _send_chunk(self, ops, chunk, results) -> None:
        last_index, last_seq, last_msg = chunk[-1]
        # only the last request asks for an ACK: set NLM_F_ACK in its header
        flags = struct.unpack_from("=H", last_msg, 6)[0] | NLM_F_ACK
        last_msg = last_msg[:6] + struct.pack("=H", flags) + last_msg[8:]
        data = b"".join(m for _, _, m in chunk[:-1]) + last_msg
        by_seq = {seq: index for index, seq, _ in chunk}
        self._send(data)
        for _ in range(len(chunk) + 10):
            try:
                buf = self._recv()
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:  # acks were lost: we cannot say which ops failed
                    for index, _, _ in chunk:
                        results[index] = results[index] or WireError(
                            errno.ENOBUFS, describe(ops[index].kind, ops[index].service, ops[index].dest)
                        )
                    return
                raise
            for kind, _flags, seq, payload in split_messages(buf):
                if kind != NLMSG_ERROR or seq not in by_seq:
                    continue
                index = by_seq[seq]
                err = _error_code(payload)
                if err:
                    op = ops[index]
                    results[index] = WireError(err, describe(op.kind, op.service, op.dest))
                if seq == last_seq:
                    return
        raise WireError(errno.ETIMEDOUT, "no acknowledgement for a batch of IPVS requests")

    def _one(self, kind: str, service: Service, dest: Dest | None = None) -> None:
        result = self.apply([_Op(kind, service, dest)])[0]
        if result is not None:
            raise result

    def add_service(self, service: Service) -> None:
        self._one("add_service", service)

    def set_service(self, service: Service) -> None:
        self._one("set_service", service)

    def del_service(self, service: Service) -> None:
        self._one("del_service", service)

    def add_dest(self, service: Service, dest: Dest) -> None:
        self._one("add_dest", service, dest)

    def set_dest(self, service: Service, dest: Dest) -> None:
        self._one("set_dest", service, dest)

    def del_dest(self, service: Service, dest: Dest) -> None:
        self._one("del_dest", service, dest)


class _Op:
    __slots__ = ("kind", "service", "dest")

    def __init__(self, kind, service, dest):
        self.kind, self.service, self.dest = kind, service, dest


def _service_for_key(key: tuple) -> Service:
    """A key-only Service for a Service.key tuple: ('tcp', addr, port) or ('fwmark', family, mark)."""
    if key[0] == "fwmark":
        return Service(protocol="fwmark", family=int(key[1]), fwmark=int(key[2]))
    return Service(protocol=key[0], address=key[1], port=int(key[2]))
