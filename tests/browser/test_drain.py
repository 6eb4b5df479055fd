"""An operator drains a real server: the row changes in place, then shows the apply the agent confirmed."""

import pytest

from clusters import ingest
from clusters.models import ApplyJob, RealServer

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_drains_without_a_page_reload(new_page, login, live_server, operator, demo):
    rs1 = RealServer.objects.get(service__director=demo, address="192.168.1.4", port=80)
    page = login(new_page(), operator)
    page.goto(f"{live_server.url}/services/{rs1.service_id}/")
    page.evaluate("window.notReloaded = true")
    row = page.locator(f"#real-{rs1.pk}")
    row.locator("button:has-text('Drain')").click()
    row.locator("[data-col=admin_state]:has-text('Draining')").wait_for()
    row.locator(".job-pending").wait_for()
    rs1.refresh_from_db()
    assert rs1.admin_state == "draining"

    job = ApplyJob.objects.get(server=rs1)  # the agent answers (as ingest records it)
    ingest.apply_entry(
        {
            "director": demo.name,
            "kind": "apply",
            "id": "b1",
            "data": f'{{"revision": {job.revision}, "job_id": {job.pk}}}',
        },
        ingest._Lookup(),
        demo.name,
    )
    page.locator(f"#real-{rs1.pk} .job-applied").wait_for()
    page.locator(f"#real-{rs1.pk} button:has-text('Maintenance when drained')").click()
    page.locator(f"#real-{rs1.pk}:has-text('→ maintenance')").wait_for()
    assert page.evaluate("window.notReloaded") is True


def test_it_drains_a_whole_host_from_the_director_page(new_page, login, live_server, operator, demo):
    page = login(new_page(), operator)
    page.goto(f"{live_server.url}/directors/{demo.pk}/")
    page.evaluate("window.notReloaded = true")
    host = page.locator("tr:has(code:text-is('192.168.1.5'))")
    host.locator("button:has-text('Drain')").click()
    page.locator("tr:has(code:text-is('192.168.1.5')) :text('2 draining')").wait_for()
    page.locator("#live .job-pending").first.wait_for()
    states = RealServer.objects.filter(service__director=demo, address="192.168.1.5")
    assert set(states.values_list("admin_state", flat=True)) == {"draining"}
    assert page.evaluate("window.notReloaded") is True
