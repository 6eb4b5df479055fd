"""An admin creates a virtual service through the form, and a bad field is reported next to it."""

import pytest

from clusters.models import ApplyJob, VirtualService

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_creates_a_virtual_service(new_page, login, live_server, admin_user, demo):
    page = login(new_page(), admin_user)
    page.click(f"a[href='/directors/{demo.pk}/']")
    page.click("text=New virtual service")
    page.fill("#id_name", "https")
    page.fill("#id_address", "172.16.10.600")
    page.fill("#id_port", "443")
    page.click("button:has-text('Save')")
    assert "valid IPv4 or IPv6" in page.locator("#field-address .errors").inner_text()
    page.fill("#id_address", "172.16.10.60")
    page.select_option("#id_scheduler", "sh")
    page.check("input[name=sched_flags][value=sh-port]")
    page.select_option("#id_checktype", "connect")
    page.click("button:has-text('Save')")
    page.wait_for_selector("h1:has-text('TCP 172.16.10.60:443')")
    vs = VirtualService.objects.get(address="172.16.10.60", port=443)
    assert vs.scheduler == "sh" and vs.sched_flags == ["sh-port"] and vs.director == demo
    assert ApplyJob.objects.filter(director=demo).count() == 1
