"""A viewer sees the live page without operation buttons, and a forged POST is refused."""

import pytest

from clusters.models import Event, RealServer

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_gives_a_viewer_no_buttons_and_a_403(new_page, login, live_server, viewer, demo):
    rs1 = RealServer.objects.get(service__director=demo, address="192.168.1.4", port=80)
    page = login(new_page(), viewer)
    page.goto(f"{live_server.url}/services/{rs1.service_id}/")
    page.locator(f"#real-{rs1.pk}").wait_for()
    assert page.locator("button:has-text('Drain')").count() == 0
    assert page.locator("input[name=weight]").count() == 0
    status = page.evaluate(
        """async (url) => {
            const token = JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRFToken'];
            const r = await fetch(url, {method: 'POST', headers: {'X-CSRFToken': token, 'HX-Request': 'true'}});
            return r.status;
        }""",
        f"/servers/{rs1.pk}/drain/",
    )
    assert status == 403
    rs1.refresh_from_db()
    assert rs1.admin_state == "active" and not Event.objects.exists()
