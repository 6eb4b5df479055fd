"""Numbers on the page follow the agent's snapshot in Redis without a reload."""

import pytest
from playwright.sync_api import expect

from clusters.models import RealServer
from tests.django.snapshots import dest, write_snapshot

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_updates_connection_counts_as_the_snapshot_changes(
    new_page, login, live_server, viewer, demo, redis_client
):
    rs1 = RealServer.objects.get(service__director=demo, address="192.168.1.4", port=80)
    write_snapshot(redis_client, demo, {rs1: dest(rs1, active=11)})
    page = login(new_page(), viewer)
    refused = []  # what the Content-Security-Policy blocked (htmx runs without eval, so nothing)
    page.on("console", lambda m: "Content Security Policy" in m.text and refused.append(m.text))
    page.on("console", lambda m: "evalDisallowed" in m.text and refused.append(m.text))
    page.goto(f"{live_server.url}/services/{rs1.service_id}/")
    cell = page.locator(f"#real-{rs1.pk} [data-col=active]")
    assert cell.inner_text() == "11"
    page.evaluate("window.notReloaded = true")
    write_snapshot(redis_client, demo, {rs1: dest(rs1, active=42, up=False, reason="timed out")})
    # a locator, not wait_for_function("..."): the page's CSP forbids the eval that one runs on
    expect(cell).to_have_text("42", timeout=8000)
    page.locator(f"#real-{rs1.pk}.health-down").wait_for()  # htmx settles attributes a moment later
    assert page.evaluate("window.notReloaded") is True
    assert refused == []


def test_it_updates_the_overview_totals(new_page, login, live_server, viewer, demo, redis_client):
    rs1 = RealServer.objects.get(service__director=demo, address="192.168.1.4", port=80)
    page = login(new_page(), viewer)
    assert "agent unknown" in page.locator(f"#director-{demo.pk}").inner_text()
    write_snapshot(redis_client, demo, {rs1: dest(rs1, active=7)})
    page.locator(f"#director-{demo.pk} .agent-up").wait_for(timeout=15_000)  # idle pages poll every 10 s
    assert page.locator(f"#director-{demo.pk} dd[data-stat=active]").inner_text() == "7"
