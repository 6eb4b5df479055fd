"""IPVS over generic netlink: the socket, the one module that talks to the kernel's IPVS table (and imports
pyroute2). The messages themselves are codec.py's; operations are told by ops.py's describer.

pyroute2 is used for what it is good at here: opening the socket inside a named network namespace.

Batching: `apply()` packs many requests into one sendmsg. The kernel handles the messages of one send in
order, synchronously, inside that sendmsg; only the *last* request of a batch asks for an ACK, the others
are answered only when they fail (netlink always reports errors). Reading up to the last ACK therefore
yields exactly the failed requests, each with its sequence number - per-op errors at a fraction of the
syscalls one request per round trip costs.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct
import threading
from collections.abc import Iterable

from .codec import (
    CMD_ATTR_DAEMON,
    CMD_ATTR_DEST,
    CMD_ATTR_SERVICE,
    CMD_DEL_DAEMON,
    CMD_GET_DAEMON,
    CMD_GET_DEST,
    CMD_GET_SERVICE,
    CMD_NEW_DAEMON,
    CTRL_ATTR_FAMILY_NAME,
    CTRL_CMD_GETFAMILY,
    GENL_ID_CTRL,
    IPVS_GENL_NAME,
    NLM_F_ACK,
    NLM_F_DUMP,
    NLM_F_REQUEST,
    NLMSG_DONE,
    NLMSG_ERROR,
    daemon_attrs,
    decode_daemon,
    decode_dest_at,
    decode_family_id,
    decode_service,
    error_code,
    genl_message,
    nla,
    nla_str,
    parse_attrs,
    request,
    service_key_attrs,
    split_messages,
)
from .model import Dest, Service
from .ops import Op

NETLINK_GENERIC = 16
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10

BATCH_MAX_MSGS = 128
BATCH_MAX_BYTES = 48 * 1024
SOCKET_BUFFER = 4 * 1024 * 1024
TIMEOUT = 10.0
MAX_RECV_PER_DUMP = 1_000_000
DUMP_BATCH = (
    32  # GET_DEST dump requests per sendmsg (each first answer buffer may take ~64 KB of SOCKET_BUFFER)
)
_NLMSGHDR = struct.Struct("=IHHII")
_NLA = struct.Struct("=HH")
RECV_BUFFER = 256 * 1024


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
        self._rbuf = bytearray(
            RECV_BUFFER
        )  # dest dumps read into it (the kernel's answers are <= 32 KB each)

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
            # A blocking socket whose reads and writes the kernel times out (SO_RCVTIMEO/SO_SNDTIMEO): with
            # Python's own timeout every send and recv is preceded by a poll(), which doubles the syscalls
            # of a dump (three per service) - and in a UML guest syscalls are most of a dump's cost.
            # A timed-out read raises OSError(EAGAIN) and closes the socket, as a Python timeout did.
            sock.settimeout(None)
            tv = struct.pack("ll", int(TIMEOUT), int((TIMEOUT % 1) * 1e6))  # native struct timeval
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)
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

    def _recv_into(self, buf: bytearray) -> int:
        """Like _recv into our own buffer: no megabyte allocated and shrunk per read (two reads per service)."""
        try:
            return self._sock.recv_into(buf)
        except OSError:
            self.close()
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
                    err = error_code(payload)
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
            family = decode_family_id(payload)
            if family is not None:
                return family
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
        got = self._dump_dests_many([svc])[0]
        if got is None:
            raise WireError(errno.ESRCH, f"dump dests of {svc.label()}")
        return got

    def _dump_dests_many(self, svcs: list[Service]) -> list[tuple[Dest, ...] | None]:
        """The dests of many services (None: the service is gone), one GET_DEST dump each.

        One after the other: the kernel runs one dump per socket at a time and finishes it (NLMSG_DONE) only
        when we read again, so a second dump request sent before that is refused with EBUSY - batching dump
        requests in one sendmsg buys nothing. What we save is in the decoding: answers are decoded where they
        lie in the receive buffer (codec.decode_dest_at), without slicing or attribute dicts."""
        out: list[tuple[Dest, ...] | None] = []
        unpack = _NLMSGHDR.unpack_from
        buf = self._rbuf
        for svc in svcs:
            seq = self._next_seq()
            key = nla(CMD_ATTR_SERVICE, service_key_attrs(svc))
            self._send(genl_message(self._family, CMD_GET_DEST, key, NLM_F_REQUEST | NLM_F_DUMP, seq))
            rows: list[Dest] = []
            family = svc.family
            done = False
            for _ in range(MAX_RECV_PER_DUMP):
                pos, end = 0, self._recv_into(buf)
                while pos + 16 <= end:
                    length, kind, _flags, mseq, _pid = unpack(buf, pos)
                    if length < 16:
                        break
                    if mseq == seq:
                        if kind == NLMSG_DONE:
                            done = True
                            break
                        if kind == NLMSG_ERROR:
                            err = error_code(buf[pos + 16 : pos + 20])
                            if err and err != errno.ESRCH:
                                raise WireError(err, f"dump dests of {svc.label()}")
                            rows = None  # gone between the service dump and this one
                            done = True
                            break
                        rows.append(decode_dest_at(buf, pos + 20, pos + length, family))
                    pos += (length + 3) & ~3
                if done:
                    break
            else:
                raise WireError(errno.EMSGSIZE, f"dump dests of {svc.label()}: no end of answer")
            out.append(None if rows is None else tuple(rows))
        return out

    def service_entries(self) -> list[bytes]:
        """Every service's raw entry (the attributes inside IPVS_CMD_ATTR_SERVICE, counters included, as the
        kernel sent them): one dump, nothing decoded. Equal bytes = nothing changed, not even a counter
        (scan.py decodes only the entries that moved; codec.parse_attrs + decode_service read one)."""
        with self._lock:
            self._open()
            out = []
            for payload in self._transact(
                self._family, CMD_GET_SERVICE, b"", NLM_F_REQUEST | NLM_F_DUMP, "dump services"
            ):
                length, kind = _NLA.unpack_from(payload, 0) if len(payload) >= 4 else (0, 0)
                if kind & 0x3FFF == CMD_ATTR_SERVICE and 4 <= length <= len(payload):
                    out.append(bytes(payload[4:length]))  # the usual answer: the service nest first
                else:
                    nested = parse_attrs(payload).get(CMD_ATTR_SERVICE)
                    if nested is not None:
                        out.append(bytes(nested))
            return out

    def dests_of(self, svcs: list[Service]) -> list[tuple[Dest, ...] | None]:
        """Many services' dests with their counters (one GET_DEST dump each); None for one that is gone."""
        with self._lock:
            self._open()
            return self._dump_dests_many(list(svcs))

    def services(self) -> list[Service]:
        """Services without their dests (one dump)."""
        with self._lock:
            return [decode_service(attrs) for attrs in self._dump(CMD_GET_SERVICE)]

    def dump(self) -> list[Service]:
        """Every service with its dests and full statistics."""
        with self._lock:
            entries = self._dump(CMD_GET_SERVICE)
            bare = [decode_service(attrs) for attrs in entries]
            dests = self._dump_dests_many(bare)
            # a service deleted between the two dumps (ESRCH) is left out
            return [
                decode_service(attrs, d) for attrs, d in zip(entries, dests, strict=True) if d is not None
            ]

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
        with self._lock:
            rows = self._dump(CMD_GET_DAEMON)
        return dict(daemon for daemon in map(decode_daemon, rows) if daemon is not None)

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
                        results[index] = results[index] or WireError(errno.ENOBUFS, str(ops[index]))
                    return
                raise
            for kind, _flags, seq, payload in split_messages(buf):
                if kind != NLMSG_ERROR or seq not in by_seq:
                    continue
                index = by_seq[seq]
                err = error_code(payload)
                if err:
                    op = ops[index]
                    results[index] = WireError(err, str(op))
                if seq == last_seq:
                    return
        raise WireError(errno.ETIMEDOUT, "no acknowledgement for a batch of IPVS requests")

    def _one(self, kind: str, service: Service, dest: Dest | None = None) -> None:
        result = self.apply([Op(kind, service, dest)])[0]
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


def _service_for_key(key: tuple) -> Service:
    """A key-only Service for a Service.key tuple: ('tcp', addr, port) or ('fwmark', family, mark)."""
    if key[0] == "fwmark":
        return Service(protocol="fwmark", family=int(key[1]), fwmark=int(key[2]))
    return Service(protocol=key[0], address=key[1], port=int(key[2]))
