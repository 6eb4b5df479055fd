"""codec.decode_dest_at, the struct-compiled fast path of GET_DEST dumps: for any destination the kernel can
send (the attribute order of ip_vs_genl_fill_dest, with or without PAD attributes before the u64 counters, IPv4
and IPv6, u32 or u64 counters) it decodes exactly what the generic decode_dest decodes."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from director.ipvs import codec

PAD = codec.nla(11, b"")  # IPVS_STATS_ATTR_PAD


def _stats(values: list[int], wide: bool, pads: set[int]) -> bytes:
    out = b""
    for i, v in enumerate(values):
        size = "Q" if wide or i in (3, 4) else "I"
        out += (PAD if i in pads else b"") + codec.nla(i + 1, struct.pack("=" + size, v))
    return out


dests = st.fixed_dictionaries(
    {
        "v6": st.booleans(),
        "host": st.integers(1, 2**32 - 1),
        "port": st.integers(0, 65535),
        "fwd": st.integers(0, 3),
        "weight": st.integers(0, 2**31 - 1),
        "uth": st.integers(0, 2**32 - 1),
        "lth": st.integers(0, 2**32 - 1),
        "conns": st.lists(st.integers(0, 2**32 - 1), min_size=3, max_size=3),
        "counters": st.lists(st.integers(0, 2**32 - 1), min_size=10, max_size=10),
        "pads": st.sets(st.integers(0, 9), max_size=3),
        "tun": st.booleans(),
        "lead": st.integers(0, 3),  # bytes before the message in the receive buffer
    }
)


def _message(d) -> bytes:
    addr = d["host"].to_bytes(16, "big") if d["v6"] else d["host"].to_bytes(4, "big").ljust(16, b"\0")
    attrs = codec.nla(codec.DEST_ADDR, addr) + codec.nla_be16(codec.DEST_PORT, d["port"])
    attrs += codec.nla_u32(codec.DEST_FWD_METHOD, d["fwd"]) + codec.nla_u32(codec.DEST_WEIGHT, d["weight"])
    if d["tun"]:
        attrs += codec.nla_u8(codec.DEST_TUN_TYPE, 1) + codec.nla_be16(codec.DEST_TUN_PORT, d["port"])
        attrs += codec.nla_u16(codec.DEST_TUN_FLAGS, 3)
    attrs += codec.nla_u32(codec.DEST_U_THRESH, d["uth"]) + codec.nla_u32(codec.DEST_L_THRESH, d["lth"])
    for kind, value in zip((7, 8, 9), d["conns"], strict=True):
        attrs += codec.nla_u32(kind, value)
    attrs += codec.nla_u16(codec.DEST_ADDR_FAMILY, 10 if d["v6"] else 2)
    attrs += codec.nla(codec.DEST_STATS, _stats(d["counters"], False, set()))
    attrs += codec.nla(codec.DEST_STATS64, _stats(d["counters"], True, d["pads"]))
    return codec.nla(codec.CMD_ATTR_DEST, attrs)


@settings(max_examples=400, deadline=None)
@given(st.lists(dests, min_size=1, max_size=4))
def test_it_decodes_every_kernel_layout_like_the_generic_decoder(many):
    for d in many:
        payload = _message(d)
        buf = b"\xee" * d["lead"] + payload + b"\xee" * 3
        fast = codec.decode_dest_at(buf, d["lead"], d["lead"] + len(payload), 4)
        slow = codec.decode_dest(codec.parse_attrs(codec.parse_attrs(payload)[codec.CMD_ATTR_DEST]), 4)
        assert fast == slow and fast.stats == slow.stats
        assert (fast.tun_port, fast.tun_flags, fast.tun_type) == (
            slow.tun_port,
            slow.tun_flags,
            slow.tun_type,
        )
        assert hash(fast) == hash(slow)


def test_it_takes_the_generic_path_for_a_shape_it_has_not_compiled():
    d = {"v6": False, "host": 7, "port": 80, "fwd": 0, "weight": 1, "uth": 0, "lth": 0, "conns": [1, 2, 3],
         "counters": list(range(10)), "pads": set(), "tun": False, "lead": 0}  # fmt: skip
    payload = _message(d)
    codec.decode_dest_at(payload, 0, len(payload), 4)  # compiles this layout
    # same length, one attribute type changed: the compiled headers do not match
    other = bytearray(payload)
    other[42] = 30  # WEIGHT (at offset 40) becomes an attribute nobody knows: weight 0 both ways
    slow = codec.decode_dest(codec.parse_attrs(codec.parse_attrs(bytes(other))[codec.CMD_ATTR_DEST]), 4)
    assert slow.weight == 0 and codec.decode_dest_at(bytes(other), 0, len(other), 4) == slow
