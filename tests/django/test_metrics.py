"""/metrics: desired state and live snapshots, collected by a pure function, rendered by prometheus-client."""

import math
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from clusters import metrics
from clusters.models import ApiToken, Director, RealServer

from .snapshots import dest, write_snapshot

pytestmark = pytest.mark.django_db

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')


def _unescape(v):
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), v)


def parse(text):
    """A strict little parser of text format 0.0.4: {name: {"type", "help", "samples": [(labels, value)]}}.

    It insists on what Prometheus insists on: HELP and TYPE before a family's samples, each family in one
    block, label values quoted and escaped, values that are floats (NaN and ±Inf included).
    """
    families, current = {}, None
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, help_ = line[7:].partition(" ")
            assert name not in families, f"{name} split into two blocks"
            current = families[name] = {"help": _unescape(help_), "type": None, "samples": []}
        elif line.startswith("# TYPE "):
            name, _, type_ = line[7:].partition(" ")
            assert type_ in ("counter", "gauge") and current is families[name]
            current["type"] = type_
        else:
            name, body, value = SAMPLE.match(line).groups()
            assert current is families[name] and current["type"], line
            labels, rest = {}, body or ""
            while rest:
                m = LABEL.match(rest)
                assert m, f"bad labels in {line!r}"
                labels[m.group(1)] = _unescape(m.group(2))
                rest = rest[m.end() :]
            current["samples"].append((labels, float(value)))
    return families


def value(families, name, **labels):
    matches = [v for lab, v in families[name]["samples"] if all(lab.get(k) == w for k, w in labels.items())]
    assert len(matches) == 1, (name, labels, matches)
    return matches[0]


def _text(families) -> str:
    body, content_type = metrics.render(families)
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    return body.decode()


def _prefetched(demo):
    return [Director.objects.prefetch_related("services__reals").get(pk=demo.pk)]


def test_it_renders_desired_state_and_live_numbers(demo, redis_client, django_assert_num_queries):
    web = demo.services.get(port=80)
    rs1, rs2 = web.reals.order_by("address")
    RealServer.objects.filter(pk=rs2.pk).update(admin_state="draining")
    rs2.refresh_from_db()
    snap = write_snapshot(
        redis_client,
        demo,
        {
            rs1: dest(
                rs1,
                active=12,
                inactive=3,
                persistent=1,
                cps=5,
                inbps=800,
                outbps=9600,
                conns=1234,
                inpkts=10,
                outpkts=20,
                inbytes=1000,
                outbytes=2000,
            ),  # fmt: skip
            rs2: dest(rs2, up=False, reason="HTTP 503"),
        },
    )
    snap["services"]["tcp|172.16.10.52|80"]["stats"].update(conns=5000, inbytes=7, outbytes=8)
    directors = _prefetched(demo)
    directors[0].last_seen = timezone.now()
    with django_assert_num_queries(0):
        text = _text(metrics.collect(directors, {"lab1": snap}))
    f = parse(text)
    d = {"director": "lab1"}
    r1 = {**d, "service": "TCP 172.16.10.52:80", "real": "192.168.1.4:80"}
    r2 = {**r1, "real": "192.168.1.5:80"}
    assert value(f, "umw_agent_up", **d) == 1 and value(f, "umw_director_in_sync", **d) == 1
    assert value(f, "umw_director_revision", **d, kind="desired") == 0
    assert value(f, "umw_director_revision", **d, kind="applied") == 0
    assert value(f, "umw_realserver_health", **r1) == 1 and value(f, "umw_realserver_health", **r2) == 0
    assert value(f, "umw_realserver_weight", **r2, source="config") == 1
    assert value(f, "umw_realserver_weight", **r2, source="kernel") == 0
    assert value(f, "umw_realserver_admin_state", **r2, state="draining") == 1
    assert value(f, "umw_realserver_admin_state", **r2, state="active") == 0
    assert value(f, "umw_realserver_connections", **r1, state="active") == 12
    assert value(f, "umw_realserver_connections", **r1, state="persistent") == 1
    assert value(f, "umw_realserver_cps", **r1) == 5
    assert value(f, "umw_realserver_bytes_per_second", **r1, direction="out") == 9600
    assert value(f, "umw_realserver_scheduled_connections_total", **r1) == 1234
    assert value(f, "umw_realserver_bytes_total", **r1, direction="in") == 1000
    assert value(f, "umw_realserver_check_latency_seconds", **r1) == 0.004
    assert f["umw_realserver_bytes_total"]["type"] == "counter"
    web_labels = {**d, "service": "TCP 172.16.10.52:80"}
    assert value(f, "umw_service_scheduled_connections_total", **web_labels) == 5000
    assert value(f, "umw_service_bytes_total", **web_labels, direction="out") == 8
    assert value(f, "umw_service_healthy_reals", **web_labels) == 1
    assert value(f, "umw_service_reals", **web_labels) == 2
    assert "NaN" in f["umw_realserver_health"]["help"]


def test_it_has_no_live_series_without_a_snapshot_and_nan_for_unknown_health(demo):
    directors = _prefetched(demo)
    f = parse(_text(metrics.collect(directors, {}, now=timezone.now() + timedelta(hours=1))))
    assert value(f, "umw_agent_up", director="lab1") == 0
    assert all(math.isnan(v) for _, v in f["umw_realserver_health"]["samples"])
    assert len(f["umw_realserver_health"]["samples"]) == 4
    for live_only in ("umw_realserver_connections", "umw_realserver_cps", "umw_service_reals"):
        assert live_only not in f
    assert {lab["source"] for lab, _ in f["umw_realserver_weight"]["samples"]} == {"config"}


def test_it_escapes_label_values(demo):
    director = _prefetched(demo)[0]
    director.name = 'a"b\\c\nd'
    text = _text(metrics.collect([director], {}))
    assert 'director="a\\"b\\\\c\\nd"' in text
    assert value(parse(text), "umw_agent_up", director='a"b\\c\nd') == 0


def test_it_writes_values_as_prometheus_reads_them():
    families = metrics.Families()
    for i, v in enumerate((True, 3, 2.0, 0.25, math.nan, math.inf, None, 2**40)):
        families.add("umw_service_reals", v, director=str(i))
    samples = parse(_text(list(families.values())))["umw_service_reals"]["samples"]
    got = [v for _, v in samples]
    assert got[:4] + got[5:6] + got[7:] == [1, 3, 2, 0.25, math.inf, 2**40]
    assert math.isnan(got[4]) and math.isnan(got[6])


def _scrape(client, secret=None, accept=None):
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    if accept:
        headers["Accept"] = accept
    return client.get(reverse("metrics"), headers=headers)


def test_it_serves_metrics_to_a_token_from_the_real_redis(client, viewer, demo, redis_client):
    rs1 = demo.services.get(port=80).reals.get(address="192.168.1.4")
    write_snapshot(redis_client, demo, {rs1: dest(rs1, active=4)})
    _, secret = ApiToken.issue(viewer)
    response = _scrape(client, secret)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    f = parse(response.content.decode())
    assert value(f, "umw_agent_up", director="lab1") == 1
    assert value(f, "umw_realserver_connections", real="192.168.1.4:80", state="active") == 4


def test_it_refuses_a_scrape_without_a_token_by_default(client, demo):
    response = _scrape(client)
    assert response.status_code == 401 and response["Content-Type"] == "application/json"


def test_it_allows_anonymous_scrapes_when_configured_but_still_checks_a_sent_token(client, demo, settings):
    settings.METRICS_ALLOW_ANONYMOUS = True
    assert _scrape(client).status_code == 200
    assert _scrape(client, "umw_revoked-or-wrong").status_code == 401


def test_it_refuses_a_token_without_view_rights(client, django_user_model, demo):
    _, secret = ApiToken.issue(django_user_model.objects.create_user("nobody"))
    assert _scrape(client, secret).status_code == 403


# What Prometheus 2.x/3.x sends by default: OpenMetrics first.
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,"
    "text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
)


def test_it_answers_openmetrics_when_the_scraper_asks_for_it(client, viewer, demo, redis_client):
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    rs1 = demo.services.get(port=80).reals.get(address="192.168.1.4")
    write_snapshot(redis_client, demo, {rs1: dest(rs1, active=4, conns=77)})
    _, secret = ApiToken.issue(viewer)
    response = _scrape(client, secret, accept=PROMETHEUS_ACCEPT)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/openmetrics-text; version=1.0.0; charset=utf-8")
    text = response.content.decode()
    assert text.endswith("# EOF\n")
    families = {f.name: f for f in text_string_to_metric_families(text)}  # the strict OpenMetrics parser
    counter = families["umw_realserver_scheduled_connections"]
    assert counter.type == "counter"
    (sample,) = [s for s in counter.samples if s.labels["real"] == "192.168.1.4:80"]
    assert (sample.name, sample.value) == ("umw_realserver_scheduled_connections_total", 77)
    conns = {s.labels["state"]: s.value for s in families["umw_realserver_connections"].samples
             if s.labels["real"] == "192.168.1.4:80"}  # fmt: skip
    assert conns["active"] == 4


def test_it_names_the_same_series_in_both_formats(client, viewer, demo, redis_client):
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    rs1 = demo.services.get(port=80).reals.get(address="192.168.1.4")
    write_snapshot(redis_client, demo, {rs1: dest(rs1, active=4)})
    _, secret = ApiToken.issue(viewer)

    def series(text, families):
        return {(s.name, tuple(sorted(s.labels.items()))) for f in families(text) for s in f.samples}

    plain = _scrape(client, secret).content.decode()
    om = _scrape(client, secret, accept=PROMETHEUS_ACCEPT).content.decode()
    ours = {
        (name, tuple(sorted(lab.items()))) for name, fam in parse(plain).items() for lab, _ in fam["samples"]
    }
    assert series(om, text_string_to_metric_families) == ours


def test_it_leaves_out_per_real_series_when_switched_off(
    client, demo, redis_client, settings, django_assert_max_num_queries
):
    """UMW_METRICS_REALSERVERS=0 (issue 17: 37,298 reals are ~750,000 series): director and service series
    stay, with the same values, no umw_realserver_* series, and a query count that does not grow with reals."""
    settings.METRICS_ALLOW_ANONYMOUS = True
    write_snapshot(redis_client, demo)
    full = parse(_scrape(client).content.decode())
    settings.UMW_METRICS_REALSERVERS = False
    text = _scrape(client).content.decode()
    lean = parse(text)
    assert "umw_realserver_" not in text
    assert set(lean) == {name for name in full if not name.startswith("umw_realserver_")}
    for name in lean:
        assert sorted(map(str, lean[name]["samples"])) == sorted(map(str, full[name]["samples"])), name
    with CaptureQueriesContext(connection) as few:
        _scrape(client)
    for vs in demo.services.all():
        RealServer.objects.bulk_create(
            RealServer(service=vs, address=f"192.168.7.{i}", port=80) for i in range(1, 30)
        )
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert _scrape(client).status_code == 200
