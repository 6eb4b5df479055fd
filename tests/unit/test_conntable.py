"""Parsing and filtering /proc/net/ip_vs_conn (format of net/netfilter/ipvs/ip_vs_conn.c)."""

from director.conntable import filter_rows, parse, parse_line

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
SCTP AC100A64 9C40 AC100A36 0B59 C0A80104 0B59 ESTABLISHED     899
"""


def test_it_reads_ipv4_rows_with_hex_addresses_and_ports():
    assert parse_line(SAMPLE.splitlines()[1]) == {
        "proto": "tcp",
        "client": "172.16.10.100:46562",
        "virtual": "172.16.10.52:80",
        "real": "192.168.1.4:80",
        "state": "ESTABLISHED",
        "expire": 899,
    }


def test_it_reads_ipv6_rows_and_a_v4_real_server_in_an_ipv6_service():
    rows = parse(SAMPLE)
    assert rows[3]["client"] == "[2001:db8::64]:50000"
    assert rows[3]["virtual"] == "[2001:db8::52]:443"
    assert rows[3]["real"] == "[2001:db8::4]:443"
    assert rows[3]["state"] == "FIN_WAIT" and rows[3]["expire"] == 59
    assert rows[4]["real"] == "192.168.1.4:443"


def test_it_skips_the_header_and_keeps_persistence_engine_data():
    rows = parse(SAMPLE)
    assert len(rows) == 7
    assert rows[5]["pe"] == "sip 3c26700a"
    assert rows[6]["proto"] == "sctp"
    assert parse("garbage line\n\n") == []


def test_it_filters_by_service_id():
    rows = parse(SAMPLE)
    out = filter_rows(rows, service="tcp|172.16.10.52|80")
    assert (out["total"], out["matched"], out["shown"]) == (7, 2, 2)
    assert filter_rows(rows, service="tcp|2001:db8::52|443")["matched"] == 2
    assert filter_rows(rows, service="udp|172.16.10.52|80")["matched"] == 0


def test_it_filters_by_client_and_real_text_and_state_case_insensitively():
    rows = parse(SAMPLE)
    assert filter_rows(rows, real="192.168.1.5")["matched"] == 2
    assert filter_rows(rows, client="172.16.10.100:4656")["matched"] == 2  # prefix of the ip:port text
    assert filter_rows(rows, client="2001:db8::64")["matched"] == 2
    assert filter_rows(rows, state="established")["matched"] == 2
    assert filter_rows(rows, state="ESTAB")["matched"] == 0  # exact
    both = filter_rows(rows, service="tcp|172.16.10.52|80", state="time_wait")
    assert [r["real"] for r in both["rows"]] == ["192.168.1.5:80"]


def test_it_caps_the_rows_shown_but_counts_every_match():
    out = filter_rows(parse(SAMPLE), limit=3)
    assert (out["total"], out["matched"], out["shown"], len(out["rows"])) == (7, 7, 3, 3)


def test_a_fwmark_service_cannot_be_told_apart_in_the_table():
    assert filter_rows(parse(SAMPLE), service="fwmark|4|1")["matched"] == 0
