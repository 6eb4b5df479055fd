"""Reading, filtering, ordering and counting /proc/net/ip_vs_conn (format of net/netfilter/ipvs/ip_vs_conn.c)."""

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from director import conntable
from director.conntable import Filters, parse, parse_line, query, read_conns, summarize

V6C = "2001:0db8:0000:0000:0000:0000:0000:0064"
V6V = "2001:0db8:0000:0000:0000:0000:0000:0052"
V6R = "2001:0db8:0000:0000:0000:0000:0000:0004"

SAMPLE = f"""Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData
TCP AC100A64 B5E2 AC100A34 0050 C0A80104 0050 ESTABLISHED     899
TCP AC100A64 B5E4 AC100A34 0050 C0A80105 0050 TIME_WAIT         7
UDP AC100A64 D431 AC100A35 0035 C0A80105 0035 UDP             299
TCP {V6C} C350 {V6V} 01BB {V6R} 01BB FIN_WAIT         59
TCP {V6C} C352 {V6V} 01BB C0A80104 01BB SYN_RECV         30
UDP AC100A64 13C4 AC100A34 13C4 C0A80104 13C4 UDP             179 sip 3c26700a
SCTP AC100A64 9C40 AC100A36 0B59 C0A80104 0BB9 ESTABLISHED     899
TCP AC100A65 B5E6 AC100A34 0050 C0A80104 0050 ESTABLISHED     120
"""
HTTP = "tcp|172.16.10.52|80"


def run(text=SAMPLE, limit=100, **filters):
    return summarize(parse(text), Filters.parse(**filters), limit)


def test_it_reads_ipv4_rows_with_hex_addresses_and_ports():
    assert parse_line(SAMPLE.splitlines()[1]) == {
        "proto": "tcp",
        "client": "172.16.10.100:46562",
        "virtual": "172.16.10.52:80",
        "real": "192.168.1.4:80",
        "state": "ESTABLISHED",
        "expire": 899,
        "service": HTTP,
        "dest": f"{HTTP}|192.168.1.4|80",
    }


def test_it_reads_ipv6_rows_and_a_v4_real_server_in_an_ipv6_service():
    rows = [parse_line(line) for line in SAMPLE.splitlines()[4:6]]
    assert rows[0]["client"] == "[2001:db8::64]:50000"
    assert rows[0]["virtual"] == "[2001:db8::52]:443"
    assert rows[0]["real"] == "[2001:db8::4]:443"
    assert rows[0]["dest"] == "tcp|2001:db8::52|443|2001:db8::4|443"
    assert rows[0]["state"] == "FIN_WAIT" and rows[0]["expire"] == 59
    assert rows[1]["real"] == "192.168.1.4:443"


def test_it_skips_the_header_and_keeps_persistence_engine_data():
    rows = run()["rows"]
    assert len(rows) == 8
    assert [r.get("pe") for r in rows if r["proto"] == "udp" and r["expire"] == 179] == ["sip 3c26700a"]
    assert parse("garbage line\n\nTCP ZZ 1 2 3 4 5 ESTABLISHED 9\n") == []


def test_it_puts_established_connections_first_then_the_longest_expiry():
    rows = run()["rows"]
    assert [(r["state"], r["expire"]) for r in rows] == [
        ("ESTABLISHED", 899),
        ("ESTABLISHED", 899),
        ("ESTABLISHED", 120),
        ("UDP", 299),
        ("UDP", 179),
        ("FIN_WAIT", 59),
        ("SYN_RECV", 30),
        ("TIME_WAIT", 7),
    ]


def test_it_filters_by_service_id():
    out = run(service=HTTP)
    assert (out["total"], out["matched"], out["shown"]) == (8, 3, 3)
    assert run(service="tcp|2001:db8::52|443")["matched"] == 2
    assert run(service="udp|172.16.10.52|80")["matched"] == 0


def test_it_filters_by_client_address_or_prefix():
    assert run(client="172.16.10.100")["matched"] == 5
    assert run(client="172.16.10.101")["matched"] == 1
    assert run(client="172.16.10.0/24")["matched"] == 6
    assert run(client="2001:db8::/32")["matched"] == 2
    assert run(client="10.0.0.0/8")["matched"] == 0


def test_it_filters_by_real_server_state_and_port():
    assert run(real="192.168.1.5")["matched"] == 2
    assert run(real="192.168.1.4:80")["matched"] == 2
    assert run(real="[2001:db8::4]:443")["matched"] == 1
    assert run(state="established")["matched"] == 3
    assert run(state="ESTAB")["matched"] == 0  # exact
    assert run(port="443")["matched"] == 2
    assert run(port=3001)["matched"] == 1  # the real-server port counts too (SCTP 2905 -> 3001)
    both = run(service=HTTP, state="time_wait")
    assert [r["real"] for r in both["rows"]] == ["192.168.1.5:80"]


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("client", "172.16.10", "client: '172.16.10' is not an address or a prefix"),
        ("real", "rs1", "real: 'rs1' is not an IP address"),
        ("real", "192.168.1.4:http", "real: '192.168.1.4:http' has no valid port"),
        ("state", "ESTAB LISHED", "state: 'ESTAB LISHED' is not a connection state"),
        ("port", "70000", "port: '70000' is not a port number"),
        ("port", "x", "port: 'x' is not a port number"),
        ("service", "tcp|vip|80", "service: 'vip' is not an IP address"),
        ("service", "tcp|1.2.3.4", "service: 'tcp|1.2.3.4' is not a service id"),
    ],
)
def test_it_rejects_a_bad_filter_naming_the_field(field, value, message):
    with pytest.raises(ValueError, match="^" + message.replace("|", r"\|").replace(".", r"\.")):
        Filters.parse(**{field: value})
    assert query(path="/nonexistent", **{field: value})["error"].startswith(message)


def test_it_counts_by_state_and_real_server_over_the_matches():
    out = run(service=HTTP)
    assert out["states"] == {"ESTABLISHED": 2, "TIME_WAIT": 1}
    assert out["reals"] == {f"{HTTP}|192.168.1.4|80": 2, f"{HTTP}|192.168.1.5|80": 1}


def test_it_ranks_top_talkers_per_service_and_per_real_server():
    talkers = run()["talkers"]
    assert talkers["services"][HTTP] == [["172.16.10.100", 2], ["172.16.10.101", 1]]
    assert talkers["reals"][f"{HTTP}|192.168.1.4|80"] == [["172.16.10.100", 1], ["172.16.10.101", 1]]
    assert talkers["services"]["tcp|2001:db8::52|443"] == [["2001:db8::64", 2]]


def test_it_keeps_only_the_busiest_talkers():
    lines = ["Pro x"]
    for client in range(1, 10):  # client .1 has 1 connection, .9 has 9
        for n in range(client):
            lines.append(f"TCP AC1000{client:02X} {1000 + n:04X} AC100A34 0050 C0A80104 0050 ESTABLISHED 900")
    top = run("\n".join(lines))["talkers"]["services"][HTTP]
    assert top == [
        ["172.16.0.9", 9],
        ["172.16.0.8", 8],
        ["172.16.0.7", 7],
        ["172.16.0.6", 6],
        ["172.16.0.5", 5],
    ]
    assert len(top) == conntable.TALKERS


def test_it_caps_the_rows_shown_but_counts_every_match():
    out = run(limit=3)
    assert (out["total"], out["matched"], out["shown"], len(out["rows"])) == (8, 8, 3, 3)
    assert run(limit=10**9)["shown"] == 8  # capped at SHOW_MAX, not refused


def test_a_fwmark_service_cannot_be_told_apart_in_the_table():
    assert run(service="fwmark|4|1")["matched"] == 0


def test_it_reads_at_most_the_bound_and_says_the_table_was_truncated(tmp_path):
    path = tmp_path / "ip_vs_conn"
    path.write_text(SAMPLE)
    conns, truncated = read_conns(path=str(path), bound=5)
    assert len(conns) == 5 and truncated
    conns, truncated = read_conns(path=str(path), bound=8)
    assert len(conns) == 8 and not truncated
    assert read_conns(path=str(tmp_path / "missing")) == ([], False)
    answer = query(path=str(path), state="ESTABLISHED", limit=2)
    assert (answer["total"], answer["matched"], answer["shown"], answer["bound"]) == (
        8,
        3,
        2,
        conntable.READ_MAX,
    )
    assert answer["truncated"] is False


# -- property: the one-pass answer equals a naive reading of the same table ---------------------------------
STATES = ["ESTABLISHED", "TIME_WAIT", "FIN_WAIT", "SYN_RECV", "UDP"]
conn_lines = st.lists(
    st.tuples(
        st.sampled_from(["TCP", "UDP"]),
        st.integers(0xAC100A00, 0xAC100A07),  # clients 172.16.10.0-7
        st.integers(1, 65535),
        st.sampled_from([0xAC100A34, 0xAC100A35]),
        st.sampled_from([80, 443]),
        st.sampled_from([0xC0A80104, 0xC0A80105]),
        st.sampled_from(STATES),
        st.integers(0, 900),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(
    conn_lines,
    st.sampled_from(["", "172.16.10.0/30", "172.16.10.5"]),
    st.sampled_from(["", "ESTABLISHED", "UDP"]),
    st.sampled_from([None, 80, 443]),
    st.integers(0, 20),
)
def test_it_agrees_with_a_naive_reading(lines, client, state, port, limit):
    text = "Pro\n" + "\n".join(
        f"{p} {c:08X} {cp:04X} {v:08X} {vp:04X} {r:08X} {vp:04X} {s} {e}"
        for p, c, cp, v, vp, r, s, e in lines
    )
    out = summarize(parse(text), Filters.parse(client=client, state=state, port=port), limit)
    naive = [
        parse_line(line)
        for line in text.splitlines()[1:]
        if (not client or ipaddress.ip_address(int(line.split()[1], 16)) in ipaddress.ip_network(client))
        and (not state or line.split()[7] == state)
        and (port is None or int(line.split()[4], 16) == port)
    ]
    assert out["matched"] == len(naive) and out["total"] == len(lines)
    assert out["shown"] == len(out["rows"]) == min(limit, len(naive))
    assert sum(out["states"].values()) == sum(out["reals"].values()) == len(naive)
    keys = [(r["state"] != "ESTABLISHED", -r["expire"]) for r in out["rows"]]
    assert keys == sorted(keys)
    # the shown rows are the best-ranked ones: nothing left out ranks before the last one shown
    if out["rows"] and len(naive) > limit:
        worst = keys[-1]
        assert sum((r["state"] != "ESTABLISHED", -r["expire"]) < worst for r in naive) <= limit
    for sid, top in out["talkers"]["services"].items():
        counts = [n for _, n in top]
        assert counts == sorted(counts, reverse=True) and len(top) <= conntable.TALKERS
        everyone = {}
        for r in naive:
            if r["service"] == sid:
                address = r["client"].rsplit(":", 1)[0]
                everyone[address] = everyone.get(address, 0) + 1
        assert counts[0] == max(everyone.values())


def test_one_read_serves_the_queries_of_the_next_second(tmp_path):
    path = tmp_path / "ip_vs_conn"
    path.write_text(SAMPLE)
    assert query(path=str(path), max_age=60)["total"] == 8
    path.write_text(SAMPLE.splitlines()[0] + "\n")  # the kernel table emptied meanwhile
    assert query(path=str(path), max_age=60, state="ESTABLISHED")["total"] == 8  # the same read, new filter
    assert query(path=str(path), max_age=0)["total"] == 0  # older than max_age: read again
