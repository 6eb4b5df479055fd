"""The served OpenAPI document is valid OpenAPI (openapi-spec-validator), lists every endpoint of the API,
documents the bodies with the types of the pages' form fields and the answers as they are sent (real answers
are validated against it); the docs page uses local files only."""

import json
import re

import pytest
from django.urls import URLPattern
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from clusters import urls_api
from clusters.models import ApiToken

from .snapshots import dest, write_snapshot

pytestmark = pytest.mark.django_db

# every operation of /api/v1/, as the README documents them
ENDPOINTS = {
    ("get", "/api/v1/directors"),
    ("post", "/api/v1/directors"),
    ("get", "/api/v1/directors/{pk}"),
    ("patch", "/api/v1/directors/{pk}"),
    ("delete", "/api/v1/directors/{pk}"),
    ("post", "/api/v1/directors/{pk}/services"),
    ("post", "/api/v1/directors/{pk}/hosts/{address}/{action}"),
    ("get", "/api/v1/services/{pk}"),
    ("patch", "/api/v1/services/{pk}"),
    ("delete", "/api/v1/services/{pk}"),
    ("post", "/api/v1/services/{pk}/reals"),
    ("patch", "/api/v1/servers/{pk}"),
    ("delete", "/api/v1/servers/{pk}"),
    ("post", "/api/v1/servers/{pk}/{action}"),
    ("get", "/api/v1/jobs/{pk}"),
    ("get", "/api/v1/events"),
}


@pytest.fixture
def document(client):
    response = client.get("/api/v1/openapi.json")  # public, like the docs: it describes, it holds no data
    assert response.status_code == 200 and response["Content-Type"].startswith("application/json")
    return response.json()


def test_it_serves_a_valid_openapi_document(document):
    validate(document)  # raises OpenAPIValidationError naming the first fault
    assert document["openapi"].startswith("3.1")


def test_it_lists_every_endpoint(document):
    operations = {(m, p) for p, ops in document["paths"].items() for m in ops}
    assert operations == ENDPOINTS


def test_it_documents_every_routed_url():
    """A URL added to the API's URLconf without an entry in ENDPOINTS (or the document) fails here."""
    routed = set()
    for pattern in urls_api.urlpatterns:
        if isinstance(pattern, URLPattern) and pattern.name not in ("api_openapi", "api_docs", "api_root"):
            path = "/api/v1/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", str(pattern.pattern))
            routed.add(path)
    assert routed == {p for _, p in ENDPOINTS}


def test_it_guards_every_operation_with_the_bearer_token(document):
    (scheme,) = document["components"]["securitySchemes"].values()
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            assert op["security"] == [{"BearerToken": []}], (method, path)


def typed(prop: dict) -> dict:
    """The type of an optional field: its first anyOf branch (the other is null)."""
    return prop["anyOf"][0] if "anyOf" in prop else prop


def test_it_types_the_bodies_from_the_form_fields(document):
    schemas = document["components"]["schemas"]
    service = schemas["VirtualServiceIn"]["properties"]
    port = typed(service["port"])
    assert (port["type"], port["minimum"], port["maximum"]) == ("integer", 1, 65535)
    assert "wlc" in typed(service["scheduler"])["enum"]
    assert {"sh-port", "ops"} <= set(typed(service["sched_flags"])["items"]["enum"])
    assert "director" not in service  # the URL decides it
    assert schemas["VirtualServiceIn"]["additionalProperties"] is False
    assert "service" not in schemas["RealServerIn"]["properties"]
    weight = typed(schemas["RealServerIn"]["properties"]["weight"])
    assert (weight["type"], weight["minimum"], weight["maximum"]) == ("integer", 0, 65535)
    assert set(schemas["ServerActionIn"]["properties"]) == {"then", "weight"}
    events = {p["name"] for p in document["paths"]["/api/v1/events"]["get"]["parameters"]}
    assert events == {"director", "kind", "after_id", "limit"}


def test_it_serves_the_docs_page_from_local_files(client):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in html and "/static/ninja/swagger-ui-init.js" in html
    assert not re.search(r"""(src|href)=["']https?://""", html)  # no CDN: the docs work offline
    assert not re.search(r"<script>|<script type=.text/javascript.>", html)  # nothing inline for the CSP
    assert client.get("/static/ninja/swagger-ui-bundle.js").status_code == 200


def answers_as_documented(document, method: str, template: str, response) -> None:
    """The answer's status is one the document lists for the operation, and its body fits that schema."""
    responses = document["paths"][template][method]["responses"]
    status = str(response.status_code)
    assert status in responses, f"{method} {template} answered {status}; documented: {sorted(responses)}"
    if status == "204":
        return
    schema = responses[status]["content"]["application/json"]["schema"]
    OAS31Validator({**schema, "components": document["components"]}).validate(response.json())


def test_it_answers_as_the_document_says(client, admin_user, demo, redis_client, document):
    """Every operation, answered and refused, against the live numbers of a snapshot in the real Redis."""
    web = demo.services.get(port=80)
    rs1, rs2 = web.reals.order_by("address")
    write_snapshot(
        redis_client, demo, {rs1: dest(rs1, active=3, cps=2), rs2: dest(rs2, up=False)}, drift=["x"]
    )
    _, secret = ApiToken.issue(admin_user)
    auth = {"Authorization": f"Bearer {secret}"}

    def call(method, template, body=None, **ids):
        url = template.format(**ids)
        data = {} if body is None else {"data": json.dumps(body), "content_type": "application/json"}
        response = getattr(client, method)(url, headers=auth, **data)
        answers_as_documented(document, method, template, response)
        return response

    d, s, r = "/api/v1/directors/{pk}", "/api/v1/services/{pk}", "/api/v1/servers/{pk}"
    call("get", "/api/v1/directors")
    call("get", d, pk=demo.pk)
    call("get", d, pk=999999)
    call("patch", d, {"description": "edge"}, pk=demo.pk)
    call("patch", d, {"ha_vrid": "x", "colour": 1}, pk=demo.pk)
    new = call(
        "post", "/api/v1/directors", {"name": "lab7", "wan_interface": "wan", "lan_subnet": "10.7.0.0/24"}
    )
    call("post", "/api/v1/directors", "[")
    vs = call("post", d + "/services", {"address": "172.16.10.60", "port": 8080}, pk=demo.pk).json()
    call("post", d + "/services", {"port": 1e400}, pk=demo.pk)
    call("get", s, pk=web.pk)
    call("patch", s, {"scheduler": "wrr"}, pk=web.pk)
    real = call("post", s + "/reals", {"address": "192.168.1.9"}, pk=vs["id"]).json()
    call("post", s + "/reals", {"address": "nohost"}, pk=vs["id"])
    call("patch", r, {"weight": 3}, pk=rs1.pk)
    for action, body in (("drain", {"then": "maintenance"}), ("weight", {"weight": 2}), ("enable", None)):
        job = call("post", r + "/{action}", body, pk=rs1.pk, action=action).json()["job"]
    call("post", r + "/{action}", {"weight": -1}, pk=rs1.pk, action="weight")
    call("get", "/api/v1/jobs/{pk}", pk=job["id"])
    call("get", "/api/v1/jobs/{pk}", pk=999999)
    hosts = d + "/hosts/{address}/{action}"
    call("post", hosts, pk=demo.pk, address="192.168.1.5", action="maintenance")
    call("post", hosts, pk=demo.pk, address="nohost", action="drain")
    call("get", "/api/v1/events", None)
    response = client.get("/api/v1/events", {"limit": "0"}, headers=auth)
    answers_as_documented(document, "get", "/api/v1/events", response)
    call("delete", r, pk=real["id"])
    call("delete", s, pk=vs["id"])
    call("delete", d, pk=new.json()["id"])
    response = client.get("/api/v1/directors")  # no token
    answers_as_documented(document, "get", "/api/v1/directors", response)
