"""/api/v1/docs renders in a real browser under the site's Content-Security-Policy, offline, and works.

The page is django-ninja's Swagger UI from its bundled static files: the test records every request the
page makes (all must go to the live server: no CDN) and every CSP violation (none allowed), checks that
each operation of the served OpenAPI document is listed, then authorizes with a real token and runs one.
"""

import json

import pytest

from clusters.models import ApiToken

pytestmark = pytest.mark.django_db(transaction=True)

# installed before any page script, so a violation during start-up is recorded too
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener('securitypolicyviolation',
    e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
"""


def test_it_renders_the_api_docs_under_the_csp_without_internet(new_page, live_server, viewer, demo):
    page = new_page()
    page.add_init_script(RECORD_VIOLATIONS)
    requests, console = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: console.append(m.text))
    response = page.goto(live_server.url + "/api/v1/docs")
    assert response.status == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.locator(".opblock").first.wait_for()

    schema = json.loads(page.request.get(live_server.url + "/api/v1/openapi.json").text())
    expected = {(m.upper(), p) for p, ops in schema["paths"].items() for m in ops}
    listed = {
        (
            block.locator(".opblock-summary-method").inner_text().strip(),
            block.locator(".opblock-summary-path").get_attribute("data-path"),
        )
        for block in page.locator(".opblock-summary").all()
    }
    assert listed == expected and len(expected) >= 15

    _, secret = ApiToken.issue(viewer)
    page.click("button.authorize")
    page.fill(".auth-container input", secret)
    page.click(".auth-btn-wrapper button.authorize")
    page.click("button.btn-done")
    directors = page.locator("#operations-directors-clusters_api_directors")
    directors.locator(".opblock-summary").click()
    directors.locator("button.try-out__btn").click()
    directors.locator("button.execute").click()
    status = directors.locator(".live-responses-table tr.response .response-col_status").first
    status.wait_for()
    assert status.inner_text().strip() == "200"
    assert '"name": "lab1"' in directors.locator(".live-responses-table .microlight").first.inner_text()

    assert page.evaluate("window.__csp") == []
    assert not [m for m in console if "Content Security Policy" in m], console
    assert requests and all(url.startswith(live_server.url) for url in requests), requests
