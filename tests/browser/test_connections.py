"""The connections page in a real browser: it refreshes itself, pauses on request and while a filter is being
typed, keeps its filters in the URL and pages with "show more". The agent is a stand-in Celery worker running
the agent's own query code over a /proc file the test rewrites (tests/django/conntables.py)."""

import pytest

from tests.django.conntables import line, proc_text, stand_in_agent
from tests.django.snapshots import fresh_celery_pools  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_celery_pools")]
VIP = "172.16.10.52"


class Table:
    """The fake kernel table: connections from 10.0.0.x to the demo's HTTP service."""

    def __init__(self, path):
        self.path = path
        self.lines = []

    def add(self, client, cport, state="ESTABLISHED", expire=900, real="192.168.1.4"):
        self.lines.append(line(client, cport, VIP, 80, real, 80, state, expire))
        self.path.write_text(proc_text(self.lines))


@pytest.fixture
def table(tmp_path, redis_server, demo, settings):
    settings.UMW_CONNTABLE_TIMEOUT = 5
    t = Table(tmp_path / "ip_vs_conn")
    t.add("10.0.0.1", 40001)
    with stand_in_agent(redis_server, demo.name, demo.queue, str(t.path), other_threads=True):
        yield t


def rows(page) -> str:
    return page.locator("#connrows tbody").inner_text()


def test_it_shows_a_new_connection_without_a_click_and_stops_while_paused(
    new_page, login, live_server, viewer, demo, table
):
    page = login(new_page(), viewer)
    page.goto(f"{live_server.url}/directors/{demo.pk}/connections/")
    assert "10.0.0.1:40001" in rows(page)
    page.evaluate("window.notReloaded = true")
    table.add("10.0.0.2", 40002)
    page.locator("#connrows", has_text="10.0.0.2:40002").wait_for(timeout=8000)
    assert page.locator("[data-count-state=ESTABLISHED]").inner_text() == "2"

    page.click("#conn-pause")
    assert page.locator("#conn-pause").inner_text() == "Resume"
    page.wait_for_timeout(500)  # a refresh already on its way may still land
    table.add("10.0.0.3", 40003)
    page.wait_for_timeout(5000)  # two and a half refresh periods
    assert "10.0.0.3:40003" not in rows(page)
    page.click("#conn-pause")
    page.locator("#connrows", has_text="10.0.0.3:40003").wait_for(timeout=8000)
    assert page.evaluate("window.notReloaded") is True


def test_it_does_not_refresh_while_a_filter_is_typed_and_keeps_filters_in_the_url(
    new_page, login, live_server, viewer, demo, table
):
    page = login(new_page(), viewer)
    page.goto(f"{live_server.url}/directors/{demo.pk}/connections/")
    page.locator("#id_client").click()
    page.keyboard.type("10.0.0.")
    page.wait_for_timeout(500)
    table.add("10.0.0.4", 40004)
    page.wait_for_timeout(5000)
    assert "10.0.0.4:40004" not in rows(page)
    assert page.locator("#id_client").input_value() == "10.0.0."  # nothing swapped under the typing
    page.keyboard.type("4")
    page.keyboard.press("Enter")
    page.wait_for_url("**/connections/?*client=10.0.0.4*")
    page.locator("[data-stat=shown]", has_text="showing 1 of 1 connections").wait_for()
    # the filtered URL is the page: a reload shows the same filter and the same rows
    page.reload()
    assert page.locator("#id_client").input_value() == "10.0.0.4"
    assert "10.0.0.4:40004" in rows(page) and "10.0.0.1:40001" not in rows(page)


def test_it_shows_more_rows_on_request(new_page, login, live_server, viewer, demo, table):
    for i in range(150):
        table.add(f"10.0.1.{i % 50}", 41000 + i, expire=800 - i)
    page = login(new_page(), viewer)
    page.goto(f"{live_server.url}/directors/{demo.pk}/connections/")
    assert page.locator("#connrows tbody tr").count() == 100
    page.click("#conn-more")
    page.wait_for_url("**limit=151*")
    page.locator("[data-stat=shown]", has_text="showing 151 of 151").wait_for()
    assert page.locator("#connrows tbody tr").count() == 151
    assert page.locator("#conn-more").count() == 0
    # talkers: 50 clients with 3 connections each, and 10.0.0.1 with 1
    assert page.locator("[data-talkers=service] li").count() == 5
