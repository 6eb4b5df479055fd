"""Every live feature, proven with real traffic in a real browser against the lab director's real kernel.

The demo director (lab1: HTTP :80 quiescent, TCP :5500 with quiescent=no) runs in a UML guest; the lab
traffic generator makes real connections from the guest's client namespace; the pages are open in chromium
and never reloaded (each test marks the window and checks the mark is still there):

(a) the per-backend active / inactive / conn-per-second numbers and the sparkline change on their own within
    5 s and match ipvsadm read in the guest;
(d) the open connections page shows a newly opened client connection without a click;
(b) stopping rs1 puts a new line on the open logs page and flips rs1 to down on the open service page;
(c) a drain click appears on the open logs page with the user's name;
(e) a service with quiescent=no loses the failed real server from the kernel table and gets it back.
"""

from __future__ import annotations

import re
import time

import pytest

from .conftest import wait_until

pytestmark = pytest.mark.e2e

DEMO = True
VIP = "172.16.10.52"
RS1, RS2 = "192.168.1.4", "192.168.1.5"
CLIENT = "172.16.10.100"


def number(text: str) -> float:
    """The page's compact numbers back to a number: '12' -> 12, '1.2k' -> 1200."""
    m = re.fullmatch(r"\s*([\d.]+)\s*([kMG]?)\s*", text)
    assert m, f"not a number on the page: {text!r}"
    return float(m.group(1)) * {"": 1, "k": 1e3, "M": 1e6, "G": 1e9}[m.group(2)]


def ipvsadm_columns(stack, *args: str) -> dict[str, list[int]]:
    """{'TCP 172.16.10.52:80 192.168.1.4:80': [numbers after the forward method or address], ...} from
    ipvsadm -Ln [--rate|--stats] in the guest (ipvsadm, not our code)."""
    rc, out = stack.call("lab.ipvsadm", ["-Ln", *args])
    assert rc == 0, out
    table, service = {}, None
    for line in out.splitlines():
        m = re.match(r"^(TCP|UDP|SCTP)\s+(\S+)", line)
        if m:
            service = f"{m.group(1)} {m.group(2)}"
            continue
        m = re.match(r"^\s+->\s+(\d\S+)\s+(.*)$", line)
        if m and service:
            table[f"{service} {m.group(1)}"] = [int(x) for x in m.group(2).split() if x.isdigit()]
    return table


def pks(stack) -> dict:
    out = stack.manage(
        "shell",
        "-c",
        "from clusters.models import Director, VirtualService as V; d = Director.objects.get(name='lab1'); "
        "print(d.pk, V.objects.get(director=d, port=80).pk, V.objects.get(director=d, port=5500).pk)",
    )
    director, http, tcp = (int(x) for x in out.split()[-3:])
    return {"director": director, "http": http, "tcp": tcp}


@pytest.fixture(scope="module")
def ids(stack):
    return pks(stack)


@pytest.fixture(scope="module")
def traffic(stack):
    assert stack.call("lab.traffic", "start", rate=10, sessions=6, duration=1800) == "started"
    yield
    stack.call("lab.traffic", "stop")


def row(page, real: str):
    return page.locator("#reals tr", has_text=real).first


def live_numbers(page, real: str) -> dict:
    r = row(page, real)
    out = {k: number(r.locator(f"[data-col={k}]").inner_text()) for k in ("active", "inactive", "cps")}
    out["spark"] = r.locator("td.sparks polyline").first.get_attribute("points")
    return out


def mark(page) -> None:
    page.evaluate("window.notReloaded = true")


def not_reloaded(page) -> bool:
    return page.evaluate("window.notReloaded") is True


def test_a_live_numbers_and_sparkline_move_on_their_own_and_match_ipvsadm(stack, page, ids, traffic):
    key = f"TCP {VIP}:80 {RS1}:80"
    wait_until(
        lambda: ipvsadm_columns(stack).get(key, [0, 0, 0])[2] > 0, 30, 0.5, what="traffic in the kernel"
    )
    page.goto(f"{stack.base_url}/services/{ids['http']}/")
    wait_until(lambda: live_numbers(page, f"{RS1}:80")["spark"], 20, what="a sparkline for rs1")
    mark(page)
    before = live_numbers(page, f"{RS1}:80")
    t0 = time.monotonic()

    def moved():
        now = live_numbers(page, f"{RS1}:80")
        numbers = any(now[k] != before[k] for k in ("active", "inactive", "cps"))
        return numbers and now["spark"] != before["spark"] and now

    wait_until(moved, 5, 0.1, what="rs1's numbers and sparkline to change without a reload")
    print(f"\nlive numbers and sparkline moved after {time.monotonic() - t0:.1f} s")
    assert not_reloaded(page)

    # the page against ipvsadm in the guest: -Ln (ActiveConn, InActConn) and --rate (CPS); the page is at
    # most one report + one poll (2 s + 2 s) behind the kernel, so compare within a tolerance, a few times
    def agree():
        shown = {real: live_numbers(page, f"{real}:80") for real in (RS1, RS2)}
        conns, rates = ipvsadm_columns(stack), ipvsadm_columns(stack, "--rate")
        out = []
        for real, values in shown.items():
            k = f"TCP {VIP}:80 {real}:80"
            _weight, active, inactive = conns[k][:3]
            cps = rates[k][0]
            out.append((real, values["active"], active, values["inactive"], inactive, values["cps"], cps))
        ok = all(
            abs(pa - ka) <= 3 + 0.25 * ka and abs(pi - ki) <= 3 + 0.25 * ki and abs(pc - kc) <= 3
            for _, pa, ka, pi, ki, pc, kc in out
        )
        return ok and out

    matched = wait_until(agree, 30, 1.0, what="the page's numbers to match ipvsadm within tolerance")
    for real, pa, ka, pi, ki, pc, kc in matched:
        print(f"{real}: active page {pa:g} / ipvsadm {ka}, inactive {pi:g} / {ki}, conn/s {pc:g} / {kc}")
    stats = ipvsadm_columns(stack, "--stats")
    assert stats[f"TCP {VIP}:80 {RS1}:80"][0] > 0  # Conns: the traffic really went through the kernel
    assert not_reloaded(page)


def test_d_the_open_connections_page_shows_a_new_client_connection_without_a_click(stack, page, ids, traffic):
    page.goto(f"{stack.base_url}/directors/{ids['director']}/connections/?port=5500")
    page.locator("[data-stat=shown]").wait_for(timeout=15_000)
    mark(page)
    held = stack.call("lab.hold_open", 5500)
    try:
        t0 = time.monotonic()
        client = f"{CLIENT}:{held['client_port']}"
        page.locator("#connrows tr", has_text=client).filter(has_text="ESTABLISHED").wait_for(timeout=10_000)
        print(f"\nnew connection {client} on the open page after {time.monotonic() - t0:.1f} s")
        real = RS1 if held["server"] == "rs1" else RS2
        assert f"{real}:5500" in page.locator("#connrows tr", has_text=client).inner_text()
        assert not_reloaded(page)
    finally:
        stack.call("lab.hold_close", held["id"])


def test_b_c_stopping_rs1_and_a_drain_click_appear_on_the_open_logs_page(stack, page, ids, traffic):
    logs = page.context.new_page()
    try:
        logs.goto(f"{stack.base_url}/logs/")
        mark(logs)
        page.goto(f"{stack.base_url}/services/{ids['http']}/")
        wait_until(lambda: "up" in row(page, f"{RS1}:80").locator("[data-col=health]").inner_text(), 20)
        mark(page)

        # (b) a real server fails: a new line on the open logs page, rs1 down on the open service page
        t0 = time.monotonic()
        stack.call("lab.rs", "rs1", "stop", "http")
        try:
            logs.locator("#log-rows tr", has_text=f"real server {RS1}:80 of TCP {VIP}:80 is down").wait_for(
                timeout=20_000
            )
            row(page, f"{RS1}:80").locator("[data-col=health]", has_text="down").wait_for(timeout=20_000)
            print(
                f"\nrs1 stopped -> logs line and 'down' on the open pages within {time.monotonic() - t0:.1f} s"
            )
        finally:
            stack.call("lab.rs", "rs1", "start", "http")
        row(page, f"{RS1}:80").locator("[data-col=health]", has_text="up").wait_for(timeout=20_000)

        # (c) the operator's drain click, with the user's name, on the open logs page
        row(page, f"{RS1}:80").get_by_role("button", name="Drain").click()
        drained = logs.locator("#log-rows tr", has_text=f"drain {RS1}:80 on TCP {VIP}:80")
        drained.wait_for(timeout=15_000)
        assert "admin" in drained.first.inner_text()
        row(page, f"{RS1}:80").get_by_role("button", name="Enable").click()
        wait_until(lambda: stack.call("lab.table")[f"TCP {VIP}:80"].get(f"{RS1}:80") == 1, 20)
        assert not_reloaded(logs) and not_reloaded(page)
    finally:
        logs.close()


def test_e_a_non_quiescent_service_removes_the_failed_real_server_and_takes_it_back(
    stack, page, ids, traffic
):
    service = f"TCP {VIP}:5500"
    wait_until(lambda: stack.call("lab.table")[service] == {f"{RS1}:5500": 1, f"{RS2}:5500": 1}, 20)
    page.goto(f"{stack.base_url}/services/{ids['tcp']}/")
    mark(page)
    stack.call("lab.rs", "rs1", "stop", "tcp")
    try:
        # out of the table, not weight 0
        wait_until(
            lambda: stack.call("lab.table")[service] == {f"{RS2}:5500": 1}, 20, 0.3, what="rs1 removed"
        )
        row(page, f"{RS1}:5500").locator("[data-col=health]", has_text="down").wait_for(timeout=20_000)
    finally:
        stack.call("lab.rs", "rs1", "start", "tcp")
    wait_until(
        lambda: stack.call("lab.table")[service] == {f"{RS1}:5500": 1, f"{RS2}:5500": 1},
        20,
        0.3,
        what="rs1 back in the table",
    )
    row(page, f"{RS1}:5500").locator("[data-col=health]", has_text="up").wait_for(timeout=20_000)
    assert not_reloaded(page)
