"""IPVS generic netlink encoding, byte for byte (like moby/ipvs), decoding of kernel dumps, batching.

Expected bytes are written out by hand from include/uapi/linux/ip_vs.h (host byte order = little endian on
the machines we run on) and cross-checked with pyroute2's independent IPVS message decoder.
"""

from __future__ import annotations

import struct
import sys

import pytest

from director.ipvs import codec, wire
from director.ipvs.model import Dest, Service

pytestmark = pytest.mark.skipif(sys.byteorder != "little", reason="expected bytes are little endian")

FAMILY = 0x24  # some generic netlink family id


def h(text: str) -> bytes:
    """Hex with spaces/newlines/comments (# to end of line) allowed."""
    lines = [line.split("#", 1)[0] for line in text.splitlines()]
    return bytes.fromhex("".join(lines).replace(" ", ""))


TCP_SVC = Service("tcp", "172.16.10.52", 80, scheduler="rr")

TCP_SVC_KEY = h(
    """
    0600 0100 0200 0000                      # AF = AF_INET (2), u16 + 2 pad
    0600 0200 0600 0000                      # PROTOCOL = 6 (tcp)
    1400 0300 ac100a34 00000000 00000000 00000000   # ADDR: 16 bytes, v4 in the first 4
    0600 0400 0050 0000                      # PORT: be16 80
    """
)


def test_it_encodes_a_new_tcp_service_exactly():
    msg = codec.request(FAMILY, "add_service", TCP_SVC, None, seq=7, ack=True)
    attrs = TCP_SVC_KEY + h(
        """
        0700 0600 727200 00                  # SCHED_NAME "rr\\0" + pad
        0c00 0700 00000000 ffffffff          # FLAGS {flags 0, mask ~0}
        0800 0800 00000000                   # TIMEOUT 0
        0800 0900 ffffffff                   # NETMASK 255.255.255.255 (as on the wire)
        """
    )
    nested = struct.pack("<HH", 4 + len(attrs), 1) + attrs
    body = h("01 01 0000") + nested  # genl: cmd NEW_SERVICE, version 1
    header = struct.pack("<IHHII", 16 + len(body), FAMILY, 0x05, 7, 0)  # REQUEST|ACK
    assert msg == header + body
    assert len(msg) == 16 + 4 + 4 + 44 + 8 + 12 + 8 + 8


def test_it_encodes_a_dest_add_and_a_weight_set_with_the_service_key():
    dest = Dest("192.168.1.4", 80, fwd="masq", weight=5, u_threshold=100, l_threshold=10)
    dest_attrs = h(
        """
        1400 0100 c0a80104 00000000 00000000 00000000   # ADDR
        0600 0200 0050 0000                  # PORT be16 80
        0800 0300 00000000                   # FWD_METHOD masq = 0
        0800 0400 05000000                   # WEIGHT 5
        0800 0500 64000000                   # U_THRESH 100
        0800 0600 0a000000                   # L_THRESH 10
        0600 0b00 0200 0000                  # ADDR_FAMILY AF_INET
        """
    )
    expected_attrs = (
        struct.pack("<HH", 4 + len(TCP_SVC_KEY), 1)
        + TCP_SVC_KEY
        + struct.pack("<HH", 4 + len(dest_attrs), 2)
        + dest_attrs
    )
    add = codec.request(FAMILY, "add_dest", TCP_SVC, dest, seq=1, ack=False)
    assert add == struct.pack("<IHHII", 20 + len(expected_attrs), FAMILY, 0x01, 1, 0) + h("05 01 0000") + (
        expected_attrs
    )
    set_ = codec.request(FAMILY, "set_dest", TCP_SVC, dest, seq=2, ack=True)
    assert set_[16] == codec.CMD_SET_DEST == 6  # SET, never DEL (pyroute2's "update" sends DEL)
    assert set_[20:] == expected_attrs


def test_it_deletes_a_dest_by_its_key_only():
    msg = codec.request(FAMILY, "del_dest", TCP_SVC, Dest("192.168.1.4", 80), seq=3, ack=True)
    dest_key = h(
        """
        1400 0100 c0a80104 00000000 00000000 00000000
        0600 0200 0050 0000
        0600 0b00 0200 0000
        """
    )
    assert msg[16:20] == h("07 01 0000")
    assert msg[20:] == (
        struct.pack("<HH", 48, 1) + TCP_SVC_KEY + struct.pack("<HH", 4 + len(dest_key), 2) + dest_key
    )


def test_it_encodes_an_ipv6_fwmark_service_with_a_prefix_length_netmask():
    svc = Service("fwmark", fwmark=7, family=6, scheduler="sh", flags=("sh-port",), timeout=300, netmask="64")
    msg = codec.request(FAMILY, "set_service", svc, None, seq=9, ack=True)
    attrs = h(
        """
        0600 0100 0a00 0000                  # AF = AF_INET6 (10)
        0800 0500 07000000                   # FWMARK 7 (no protocol/addr/port)
        0700 0600 736800 00                  # "sh"
        0c00 0700 11000000 ffffffff          # PERSISTENT(1) | SCHED2(0x10)
        0800 0800 2c010000                   # TIMEOUT 300
        0800 0900 40000000                   # NETMASK: prefix length 64 as a host u32
        """
    )
    assert msg[16:] == h("02 01 0000") + struct.pack("<HH", 4 + len(attrs), 1) + attrs
    delete = codec.request(FAMILY, "del_service", svc, None, seq=10, ack=True)
    assert delete[16:] == h("03 01 0000 1400 0100") + attrs[:16]


def test_it_encodes_an_ipv6_service_address_and_port():
    svc = Service("udp", "2001:db8::52", 53)
    key = codec.service_key_attrs(svc)
    assert key == h(
        """
        0600 0100 0a00 0000
        0600 0200 1100 0000                  # udp 17
        1400 0300 20010db8 00000000 00000000 00000052
        0600 0400 0035 0000                  # be16 53
        """
    )
    assert codec.netmask_u32(svc) == struct.pack("<I", 128)


def test_it_sends_tunnel_attributes_for_ipip_dests_only():
    ipip = codec.dest_attrs(Dest("192.168.1.5", 80, fwd="ipip", tun_type="gue", tun_port=5555))
    assert ipip.endswith(
        h(
            """
            0500 0d00 01 000000              # TUN_TYPE gue (u8)
            0600 0e00 15b3 0000              # TUN_PORT be16 5555
            0600 0f00 0000 0000              # TUN_FLAGS 0
            """
        )
    )
    assert struct.unpack_from("<I", ipip, 32)[0] == 2  # FWD_METHOD tunnel
    gate = codec.dest_attrs(Dest("192.168.1.5", 80, fwd="gate"))
    assert struct.unpack_from("<I", gate, 32)[0] == 3
    assert len(gate) == 20 + 8 + 4 * 8 + 8


def test_it_asks_for_the_ipvs_family_and_dumps_like_ipvsadm():
    resolve = codec.genl_message(codec.GENL_ID_CTRL, 3, codec.nla_str(2, "IPVS"), codec.NLM_F_REQUEST, 1)
    assert resolve == h("20000000 1000 0100 01000000 00000000  03 01 0000  0900 0200 49505653 00 000000")
    dump = codec.genl_message(FAMILY, codec.CMD_GET_SERVICE, b"", codec.NLM_F_REQUEST | codec.NLM_F_DUMP, 5)
    assert dump == struct.pack("<IHHII", 20, FAMILY, 0x301, 5, 0) + h("04 01 0000")


def test_pyroute2_decodes_our_messages_the_same_way():
    from pyroute2.netlink.generic.ipvs import ipvsmsg

    dest = Dest("192.168.1.4", 8080, fwd="gate", weight=65535, u_threshold=9, l_threshold=3)
    msg = ipvsmsg(codec.request(FAMILY, "add_dest", TCP_SVC, dest, seq=1, ack=True))
    msg.decode()
    svc = msg.get_attr("IPVS_CMD_ATTR_SERVICE")
    d = msg.get_attr("IPVS_CMD_ATTR_DEST")
    assert msg["cmd"] == 5
    assert svc.get_attr("IPVS_SVC_ATTR_PROTOCOL") == 6
    assert svc.get_attr("IPVS_SVC_ATTR_PORT") == 80
    assert d.get_attr("IPVS_DEST_ATTR_PORT") == 8080
    assert d.get_attr("IPVS_DEST_ATTR_WEIGHT") == 65535
    assert d.get_attr("IPVS_DEST_ATTR_FWD_METHOD") == 3
    assert d.get_attr("IPVS_DEST_ATTR_U_THRESH") == 9
    assert d.get_attr("IPVS_DEST_ATTR_L_THRESH") == 3
    assert d.get_attr("IPVS_DEST_ATTR_ADDR_FAMILY") == 2


# ---- decoding what the kernel dumps ---------------------------------------------------------------------


def _stats64(values: dict) -> bytes:
    ids = {v: k for k, v in codec.STATS_ATTRS.items()}
    return b"".join(codec.nla(ids[name], struct.pack("<Q", value)) for name, value in values.items())


def test_it_decodes_a_service_dump_entry_with_64_bit_stats_and_the_hashed_flag_masked():
    attrs = (
        codec.service_key_attrs(TCP_SVC)
        + codec.nla_str(codec.SVC_SCHED_NAME, "mh")
        + codec.nla(codec.SVC_FLAGS, struct.pack("<II", 0x2 | 0x1 | 0x8, 0xFFFFFFFF))
        + codec.nla_u32(codec.SVC_TIMEOUT, 600)
        + codec.nla(codec.SVC_NETMASK, bytes([255, 255, 255, 0]))
        + codec.nla(codec.SVC_STATS, codec.nla_u32(1, 7))  # 32-bit stats are ignored when 64-bit exist
        + codec.nla(codec.SVC_STATS64, _stats64({"conns": 2**40, "inbytes": 5, "cps": 3, "outbps": 9}))
    )
    svc = codec.decode_service(codec.parse_attrs(attrs))
    assert svc == Service(
        "tcp",
        "172.16.10.52",
        80,
        scheduler="mh",
        flags=("mh-fallback",),
        timeout=600,
        netmask="255.255.255.0",
    )
    assert svc.stats.conns == 2**40
    assert (svc.stats.inbytes, svc.stats.cps, svc.stats.outbps) == (5, 3, 9)


def test_it_decodes_a_dest_with_connection_counts_and_falls_back_to_32_bit_stats():
    attrs = (
        codec.dest_attrs(Dest("2001:db8::4", 443, fwd="gate", weight=3))
        + codec.nla_u32(codec.DEST_ACTIVE_CONNS, 4)
        + codec.nla_u32(codec.DEST_INACT_CONNS, 5)
        + codec.nla_u32(codec.DEST_PERSIST_CONNS, 6)
        + codec.nla(
            codec.DEST_STATS,
            codec.nla_u32(1, 11) + codec.nla(4, struct.pack("<Q", 2**33)) + codec.nla_u32(9, 1000),
        )
    )
    dest = codec.decode_dest(codec.parse_attrs(attrs), 6)
    assert dest == Dest("2001:db8::4", 443, fwd="gate", weight=3)
    s = dest.stats
    assert (s.active, s.inactive, s.persistent, s.conns, s.inbytes, s.inbps) == (4, 5, 6, 11, 2**33, 1000)


def test_it_round_trips_fwmark_and_ipv6_services_through_encode_and_decode():
    for svc in (
        Service("fwmark", fwmark=1, family=4, scheduler="wlc"),
        Service("fwmark", fwmark=2**32 - 1, family=6, scheduler="sh", flags=("sh-fallback", "sh-port")),
        Service("sctp", "2001:db8::1", 9, scheduler="mh", timeout=30, netmask="48"),
        Service("udp", "10.0.0.1", 53, scheduler="rr", flags=("ops",)),
    ):
        assert codec.decode_service(codec.parse_attrs(codec.service_attrs(svc))) == svc


# ---- batching -----------------------------------------------------------------------------------------------


class FakeKernel:
    """A netlink socket that answers like the kernel: errors always, ACKs when asked."""

    def __init__(self, fail_cmds=()):
        self.fail_cmds = set(fail_cmds)
        self.sends = []
        self.queue = []

    def send(self, data):
        self.sends.append(bytes(data))
        for _kind, flags, seq, payload in codec.split_messages(data):
            cmd = payload[0]
            err = 22 if cmd in self.fail_cmds else 0
            if err or flags & codec.NLM_F_ACK:
                self.queue.append(
                    struct.pack("<IHHII", 36, codec.NLMSG_ERROR, 0, seq, 0) + struct.pack("<i", -err)
                )
                self.queue[-1] += struct.pack("<IHHII", 16, 0, 0, seq, 0)
        return len(data)

    def recv(self, size):
        return self.queue.pop(0)


def _wire(fake):
    w = wire.Wire()
    w._sock, w._family = fake, FAMILY
    return w


def test_it_batches_requests_and_only_the_last_of_a_batch_asks_for_an_ack():
    fake = FakeKernel()
    w = _wire(fake)
    from director.ipvs.ops import Op

    dests = [Dest(f"192.168.{i // 250}.{i % 250 + 1}", 80) for i in range(300)]
    ops = [Op("add_service", TCP_SVC)] + [Op("add_dest", TCP_SVC, d) for d in dests]
    assert w.apply(ops) == [None] * 301
    assert len(fake.sends) == 3  # 128 + 128 + 45 messages
    flags = [f for data in fake.sends for _k, f, _s, _p in codec.split_messages(data)]
    assert flags.count(codec.NLM_F_REQUEST | codec.NLM_F_ACK) == 3
    assert len(flags) == 301


def test_it_reports_each_refused_request_and_keeps_the_others():
    fake = FakeKernel(fail_cmds={codec.CMD_SET_DEST})
    w = _wire(fake)
    from director.ipvs.ops import Op

    d = Dest("192.168.1.4", 80, weight=2)
    results = w.apply([Op("add_dest", TCP_SVC, d), Op("set_dest", TCP_SVC, d), Op("del_dest", TCP_SVC, d)])
    assert results[0] is None and results[2] is None
    assert results[1].errno == 22
    assert (
        str(results[1])
        == "set real 192.168.1.4:80 in TCP 172.16.10.52:80 (masq, weight 2): Invalid argument (EINVAL)"
    )
    with pytest.raises(wire.WireError):
        w.set_dest(TCP_SVC, d)


def test_it_decodes_64_bit_stats_with_the_kernels_padding_attributes():
    pad = codec.nla(11, b"")  # IPVS_STATS_ATTR_PAD: where a u64 would be unaligned
    names = list(codec.STATS_ATTRS.values())

    def nest(pads_before):
        return b"".join(
            (pad if i in pads_before else b"") + codec.nla(i + 1, struct.pack("<Q", 2**40 + i))
            for i in range(10)
        )

    expected = {name: 2**40 + i for i, name in enumerate(names)}
    for layout in ({0, 2, 4, 6, 8}, {1, 3, 5, 7, 9}, set()):
        for _ in range(2):  # the second time through the compiled layout
            stats = codec.decode_stats({12: nest(layout)}, 10, 12, active=1)
            assert {n: getattr(stats, n) for n in names} == expected
            assert stats.active == 1
    # same length and first header as a compiled layout, different order inside: still right
    odd = (
        pad
        + codec.nla(1, struct.pack("<Q", 1))
        + b"".join(codec.nla(i, struct.pack("<Q", i)) for i in (3, 2, 4, 5, 6, 7, 8, 9, 10))
    )
    odd += pad * 4
    stats = codec.decode_stats({12: odd}, 10, 12)
    assert (stats.conns, stats.inpkts, stats.outpkts, stats.outbps) == (1, 2, 3, 10)


def test_lost_acknowledgements_fail_their_batch_and_the_socket_is_replaced():
    from director.ipvs.ops import Op

    class Overrun(FakeKernel):
        def recv(self, size):
            raise OSError(105, "No buffer space available")  # ENOBUFS

        def close(self):
            self.closed = True

    fake = Overrun()
    w = _wire(fake)
    reopened = []
    w._open = lambda: reopened.append(True)
    results = w.apply([Op("add_service", TCP_SVC), Op("add_dest", TCP_SVC, Dest("192.168.1.4", 80))])
    assert [r.errno for r in results] == [105, 105]
    assert fake.closed and w._sock is None and reopened
