"""The whole chain, as an operator lives it, against a real kernel (lab director in a UML guest):

browser creates the classic setup -> the guest kernel has the IPVS table -> HTTP from the client namespace
alternates rs1/rs2 -> drain rs1 in the browser -> new connections go to rs2 only while an established one to
rs1 keeps working -> rs1's HTTP server stops -> the page shows it down -> it starts -> back up -> the agent
restarts with no connection dropped and the table unchanged -> Redis stops for 30 s: checks keep acting in
the guest, and afterwards the dashboard catches up with no event missing.

The tests of this module run in order and share one Stack (see conftest.py).
"""

from __future__ import annotations

import os
import time

import pytest

from .conftest import wait_until

pytestmark = pytest.mark.e2e

DEMO = False  # the browser creates everything
VIP = "172.16.10.52"
HTTP = f"TCP {VIP}:80"
TCP = f"TCP {VIP}:5500"
RS1, RS2 = "192.168.1.4", "192.168.1.5"


def submit(page, field: str) -> None:
    """Submit the form that holds `field` (the dashboard's forms have one submit button)."""
    page.locator(f"form:has([name={field}]) button:not([type=button])").last.click()


def row(page, real: str):
    return page.locator("tr", has_text=real).first


def test_it_creates_the_classic_setup_in_the_browser(stack, page):
    base = stack.base_url
    page.goto(base + "/directors/new/")
    page.fill("[name=name]", stack.director)
    page.fill("[name=wan_interface]", "wan")
    page.fill("[name=lan_interface]", "lan")
    page.fill("[name=lan_subnet]", "192.168.1.0/24")
    submit(page, "wan_interface")
    page.wait_for_url(lambda url: "/directors/" in url and "/new/" not in url)
    director_url = page.url
    stack.director_url = director_url

    for port, scheduler, checktype in ((80, "rr", "negotiate"), (5500, "wlc", "connect")):
        page.goto(director_url.rstrip("/") + "/services/new/")
        page.fill("[name=address]", VIP)
        page.fill("[name=port]", str(port))
        page.select_option("[name=scheduler]", scheduler)
        page.select_option("[name=checktype]", checktype)
        if checktype == "negotiate":
            page.select_option("[name=check_service]", "http")
            page.fill("[name=request]", "/index.html")
            page.fill("[name=receive]", "rs")
        page.fill("[name=checkinterval]", "1")
        page.fill("[name=checktimeout]", "1")
        submit(page, "address")
        page.wait_for_url(lambda url: "/services/" in url and "/new/" not in url)
        service_url = page.url
        for real in (RS1, RS2):
            page.goto(service_url.rstrip("/") + "/reals/new/")
            page.fill("[name=address]", real)
            page.fill("[name=port]", str(port))
            page.select_option("[name=forwarding]", "masq")
            submit(page, "forwarding")
            page.wait_for_url(lambda url: "/reals/new/" not in url)
        if port == 80:
            stack.http_service_url = service_url

    expected = {HTTP: {f"{RS1}:80": 1, f"{RS2}:80": 1}, TCP: {f"{RS1}:5500": 1, f"{RS2}:5500": 1}}
    wait_until(lambda: stack.call("lab.table") == expected, 30, what="the guest kernel table")


def test_it_alternates_real_servers_under_rr(stack):
    answers = stack.call("lab.http_get", 6)
    assert sorted(set(answers)) == ["rs1", "rs2"]
    assert all(a != b for a, b in zip(answers, answers[1:], strict=False)), answers


def test_it_drains_in_the_browser_and_keeps_the_established_connection(stack, page):
    held = stack.call("lab.hold_open", 80)  # keep-alive HTTP connection; says which real took it
    if held["server"] != "rs1":  # rr: the next one goes to the other real server
        stack.call("lab.hold_close", held["id"])
        held = stack.call("lab.hold_open", 80)
    assert held["server"] == "rs1"
    page.goto(stack.http_service_url)
    row(page, f"{RS1}:80").get_by_role("button", name="Drain").click()
    # without a reload, the row shows the new state and the job reaches "applied"
    page.locator("tr", has_text=f"{RS1}:80").locator("[data-col=admin_state]").filter(
        has_text="Draining"
    ).wait_for()
    page.locator("tr", has_text=f"{RS1}:80").locator("[data-col=job]").filter(has_text="applied").wait_for(
        timeout=20_000
    )
    wait_until(lambda: stack.call("lab.table")[HTTP][f"{RS1}:80"] == 0, 10, what="weight 0 in the kernel")
    assert set(stack.call("lab.http_get", 6)) == {"rs2"}
    assert stack.call("lab.hold_probe", held["id"]) == "rs1"  # the established connection still works
    stack.call("lab.hold_close", held["id"])
    row(page, f"{RS1}:80").get_by_role("button", name="Enable").click()
    wait_until(lambda: stack.call("lab.table")[HTTP][f"{RS1}:80"] == 1, 10, what="weight back to 1")


def test_it_shows_the_live_connection_table_from_the_guest_kernel(stack, page):
    held = stack.call("lab.hold_open", 5500)
    try:
        real = "192.168.1.4:5500" if held["server"] == "rs1" else "192.168.1.5:5500"
        page.goto(stack.director_url.rstrip("/") + "/connections/?client=172.16.10.100")
        established = page.locator("tr", has_text=real).filter(has_text="ESTABLISHED")
        established.first.wait_for(timeout=15_000)
        assert "172.16.10.100:" in established.first.inner_text()
        assert "showing" in page.locator("[data-stat=shown]").inner_text()
    finally:
        stack.call("lab.hold_close", held["id"])


def health_cell(page, real: str) -> str:
    return page.locator("tr", has_text=real).locator("[data-col=health]").inner_text()


def test_it_shows_a_failed_real_server_down_and_back_up(stack, page):
    page.goto(stack.http_service_url)
    wait_until(lambda: "up" in health_cell(page, f"{RS1}:80"), 20, what="rs1 up on the page")
    t0 = time.monotonic()
    stack.call("lab.rs", "rs1", "stop", "http")
    try:
        wait_until(lambda: "down" in health_cell(page, f"{RS1}:80"), 15, 0.1, what="rs1 down on the page")
        seen_down = time.monotonic() - t0
        assert stack.call("lab.table")[HTTP][f"{RS1}:80"] == 0  # quiescent: weight 0, still in the table
    finally:
        stack.call("lab.rs", "rs1", "start", "http")
    wait_until(lambda: "up" in health_cell(page, f"{RS1}:80"), 20, 0.1, what="rs1 up again on the page")
    wait_until(lambda: stack.call("lab.table")[HTTP][f"{RS1}:80"] == 1, 10, what="weight restored")
    print(f"\nrs1 stop -> 'down' on the page: {seen_down:.2f} s (check interval 1 s + timeout 1 s)")


def test_it_restarts_the_agent_without_dropping_connections(stack):
    before = stack.call("lab.table")
    held = stack.call("lab.hold_open", 5500)
    restarted = stack.call("lab.agent_restart", timeout=90)
    assert restarted["new"] != restarted["old"]
    assert stack.call("lab.table") == before
    assert stack.call("lab.hold_probe", held["id"]) == held["server"]
    stack.call("lab.hold_close", held["id"])
    print(f"\nagent restart to ready: {restarted['seconds']} s")


def test_it_keeps_acting_while_redis_is_down_and_catches_up(stack, page):
    # a logs page open all along, never reloaded, filtered to rs2's checks: the backlog must reach it live
    logs = page.context.new_page()
    logs.goto(f"{stack.base_url}/logs/?kind=check&server={RS2}")
    logs.evaluate("window.notReloaded = true")
    down = stack.lab("redis-stop")
    assert down.returncode == 0, down.stderr
    t0 = time.monotonic()
    try:
        stack.call("lab.rs", "rs2", "stop", "http")
        # the guest acts on its own: rs2 quiesced in the kernel with the central side unreachable
        wait_until(
            lambda: stack.call("lab.table")[HTTP][f"{RS2}:80"] == 0, 15, what="rs2 quiesced without Redis"
        )
        stack.call("lab.rs", "rs2", "start", "http")
        wait_until(
            lambda: stack.call("lab.table")[HTTP][f"{RS2}:80"] == 1, 15, what="rs2 restored without Redis"
        )
        # an operator drains rs1 meanwhile: the change is saved, its push cannot reach the broker
        page.goto(stack.http_service_url)
        row(page, f"{RS1}:80").get_by_role("button", name="Drain").click()
        page.locator("tr", has_text=f"{RS1}:80").locator("[data-col=job]").filter(has_text="failed").wait_for(
            timeout=20_000
        )
        assert stack.call("lab.table")[HTTP][f"{RS1}:80"] == 1
        time.sleep(max(0.0, 30 - (time.monotonic() - t0)))
    finally:
        up = stack.lab("redis-start")
        assert up.returncode == 0, up.stderr

    # the dashboard catches up: both flips of rs2 arrive on the open logs page, in order (newest first)
    def flips():
        texts = logs.locator("#log-rows tr[data-id]").all_inner_texts()
        msgs = [t for t in texts if f"real server {RS2}:80 " in t]
        return msgs if msgs and "is up" in msgs[0] and any("is down" in m for m in msgs) else None

    msgs = wait_until(flips, 30, 0.5, what="rs2's down/up events on the open logs page after Redis returned")
    assert [m for m in msgs if "is down" in m] and "is up" in msgs[0]
    assert logs.evaluate("window.notReloaded") is True
    logs.close()
    page.goto(stack.http_service_url)
    wait_until(lambda: "up" in health_cell(page, f"{RS2}:80"), 20, what="the page is live again")
    # the lost push heals itself: the central follow-up sees the live agent behind and sends the state again
    wait_until(
        lambda: stack.call("lab.table")[HTTP][f"{RS1}:80"] == 0, 60, 0.5, what="rs1 drained after resync"
    )
    row(page, f"{RS1}:80").get_by_role("button", name="Enable").click()
    wait_until(lambda: stack.call("lab.table")[HTTP][f"{RS1}:80"] == 1, 20, what="rs1 enabled again")


@pytest.mark.skipif(not os.environ.get("UMW_E2E_SCREENSHOTS"), reason="screenshots on request")
def test_it_takes_screenshots(stack, page):
    out = os.environ["UMW_E2E_SCREENSHOTS"]
    os.makedirs(out, exist_ok=True)
    page.goto(stack.http_service_url)
    page.screenshot(path=os.path.join(out, "service.png"), full_page=True)
    page.goto(stack.base_url + "/")
    page.screenshot(path=os.path.join(out, "overview.png"), full_page=True)
