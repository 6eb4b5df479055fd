"""A configuration pasted into the import page arrives with CRLF line ends and is read like the file itself."""

import pytest

from clusters.models import Director, Event
from tests.configs import read

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_imports_a_configuration_pasted_into_the_page(new_page, login, live_server, admin_user):
    director = Director.objects.create(name="lb9", masquerade=False)
    page = login(new_page(), admin_user)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page.goto(live_server.url + "/io/import/")
    page.select_option("#id_director", str(director.pk))
    # a real paste (the clipboard, then Ctrl+V), the way a user copies a file from a terminal
    text = read("ldirectord-ultramonkey.cf")
    assert "quiescent=yes" in text
    page.evaluate("text => navigator.clipboard.writeText(text)", text)
    page.focus("#id_text")
    page.keyboard.press("Control+V")
    assert page.input_value("#id_text") == text
    page.click("button:has-text('Preview')")
    page.wait_for_selector("h1:has-text('Preview: ldirectord into lb9')")
    assert page.locator("#errors").count() == 0, page.locator("#errors").inner_text()
    assert "Will be created: 2 virtual services, 4 real servers" in page.locator("#plan h2").inner_text()
    page.click("button:has-text('Import into lb9')")
    page.wait_for_selector("h1:has-text('Imported into lb9')")
    services = {(s.port, s.quiescent) for s in director.services.all()}
    assert services == {(80, True), (5500, True)}
    assert Event.objects.get(kind="import").user == admin_user
