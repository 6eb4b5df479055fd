"""Pages that list every service of a director, /metrics without per-real series and the drain follow-up read
in proportion to what they show (issue 17: 2,284 services / 37,298 reals): the overview, the director page and
their fragments and /metrics read the service summaries (keys.summary_key) and the meta record, never the
records with real servers (keys.service_stats_key); finishing drains reads only the services with draining
reals. Each test spoils what must not be read and checks the numbers still come from what must."""

import re

import pytest
from django.test import override_settings
from django.urls import reverse

from clusters import live, reports
from clusters.models import RealServer
from clusters.tasks.central import follow_up
from director import keys

from .snapshots import dest, write_snapshot

pytestmark = pytest.mark.django_db


def _rs(director, address, port=80):
    return RealServer.objects.get(service__director=director, service__port=port, address=address)


def _spoil_reals(redis_client, director, how):
    """Leave the summaries and the meta record as the agent wrote them; break the records with reals."""
    key = keys.service_stats_key(director.name)
    if how == "gone":
        redis_client.delete(key)
    else:
        sids = list(redis_client.hkeys(key))
        redis_client.hset(key, mapping=dict.fromkeys(sids, "not json {"))


@pytest.mark.parametrize("how", ["gone", "garbage"])
def test_it_shows_director_numbers_from_the_summaries_without_the_reals(
    client, viewer, demo, redis_client, how
):
    rs = _rs(demo, "192.168.1.4")
    write_snapshot(redis_client, demo, {rs: dest(rs, active=9, inactive=4, inbps=100)}, drift=["one drift"])
    _spoil_reals(redis_client, demo, how)
    summary = live.summarize(demo, services=live.service_refs([demo])[demo.pk])
    assert summary.problem is None and summary.drift == ["one drift"] and summary.age is not None
    assert all(s.live for s in summary.services)
    assert (summary.totals["active"], summary.totals["inactive"]) == (9, 4)
    web = next(s for s in summary.services if s.service.pk == rs.service_id)
    assert web.numbers["active"] == 9 and web.total == rs.service.reals.count()
    client.force_login(viewer)
    for url in (reverse("overview"), demo.get_absolute_url()):
        for headers in ({}, {"HX-Request": "true"}):
            html = client.get(url, headers=headers).content.decode()
            assert 'data-stat="bad-report"' not in html
            assert re.search(r'data-stat="active"[^>]*>\s*9\s*<', html), (url, headers)
    assert "one drift" in client.get(demo.get_absolute_url()).content.decode()


def test_it_reads_a_whole_snapshot_of_an_older_agent_too(demo):
    """An older agent writes one snapshot with the reals: the service numbers add them up as before."""
    rs = _rs(demo, "192.168.1.4")
    sid, did = keys.service_key_for(rs.service), keys.dest_key_for(rs)
    snap = {
        "time": 1e9,
        "services": {sid: {"dests": {did: {"active": 3, "inactive": 2}}, "stats": {"cps": 5}}},
    }
    numbers = live.service_numbers(reports.snapshot(snap)["services"][sid])
    assert (numbers["active"], numbers["inactive"], numbers["cps"]) == (3, 2, 5)
    assert live.service_counts({"stats": {"active": 7}, "dests": {}})["active"] == 7


def test_it_serves_metrics_from_the_summaries_when_per_real_series_are_off(
    client, viewer, demo, redis_client
):
    rs = _rs(demo, "192.168.1.4")
    write_snapshot(redis_client, demo, {rs: dest(rs, active=9, conns=41)}, drift=["x", "y"])
    _spoil_reals(redis_client, demo, "garbage")
    client.force_login(viewer)
    with override_settings(UMW_METRICS_REALSERVERS=False, METRICS_ALLOW_ANONYMOUS=True):
        body = client.get(reverse("metrics")).content.decode()
    label = f'director="lab1",service="{rs.service.label}"'
    assert f"umw_service_scheduled_connections_total{{{label}}} 41.0" in body
    assert f"umw_service_reals{{{label}}} {float(rs.service.reals.count())}" in body
    assert 'umw_director_drift_entries{director="lab1"} 2.0' in body
    assert "umw_realserver_" not in body


def test_it_still_reads_the_reals_for_per_real_series(client, viewer, demo, redis_client):
    rs = _rs(demo, "192.168.1.4")
    write_snapshot(redis_client, demo, {rs: dest(rs, active=9)})
    client.force_login(viewer)
    with override_settings(UMW_METRICS_REALSERVERS=True, METRICS_ALLOW_ANONYMOUS=True):
        body = client.get(reverse("metrics")).content.decode()
    assert re.search(
        r'umw_realserver_connections\{[^}]*real="192\.168\.1\.4:80"[^}]*state="active"\} 9\.0', body
    )


@pytest.mark.parametrize("active", [0, 3])
def test_it_finishes_a_drain_from_the_records_of_the_draining_services_only(demo, redis_client, active):
    rs = _rs(demo, "192.168.1.4")
    RealServer.objects.filter(pk=rs.pk).update(admin_state="draining", after_drain="maintenance")
    rs.refresh_from_db()
    write_snapshot(redis_client, demo, {rs: dest(rs, active=active)})
    # every other service's record is garbage: the follow-up must not need it
    key = keys.service_stats_key(demo.name)
    mine = keys.service_key_for(rs.service)
    others = [sid for sid in redis_client.hkeys(key) if sid != mine]
    assert others
    redis_client.hset(key, mapping=dict.fromkeys(others, "not json {"))
    follow_up()
    rs.refresh_from_db()
    assert rs.admin_state == ("maintenance" if active == 0 else "draining")


def test_it_exports_the_zero_counters_of_a_quiet_service_from_its_summary(client, viewer, demo, redis_client):
    """A service the kernel has, at zero, keeps its counter series (a missing series means "no data")."""
    write_snapshot(redis_client, demo)
    _spoil_reals(redis_client, demo, "gone")
    client.force_login(viewer)
    with override_settings(UMW_METRICS_REALSERVERS=False, METRICS_ALLOW_ANONYMOUS=True):
        body = client.get(reverse("metrics")).content.decode()
    vs = RealServer.objects.filter(service__director=demo).first().service
    assert f'umw_service_scheduled_connections_total{{director="lab1",service="{vs.label}"}} 0.0' in body
