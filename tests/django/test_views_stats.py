"""Live numbers on the pages come from the agent's snapshot in Redis (written here as the agent writes it)."""

import pytest
from django.urls import reverse

from clusters.models import RealServer

from .snapshots import dest, write_history, write_snapshot

pytestmark = pytest.mark.django_db


@pytest.fixture
def as_viewer(client, viewer):
    client.force_login(viewer)
    return client


def _rs(demo, address, port=80):
    return RealServer.objects.get(service__director=demo, address=address, port=port)


def test_it_shows_connection_totals_and_rates_on_the_overview(as_viewer, demo, redis_client):
    rs1, rs2 = _rs(demo, "192.168.1.4"), _rs(demo, "192.168.1.5")
    write_snapshot(
        redis_client,
        demo,
        {rs1: dest(rs1, active=4321, cps=7), rs2: dest(rs2, active=1000, up=False, reason="timed out")},
    )
    html = as_viewer.get(reverse("overview")).content.decode()
    assert 'data-stat="active">5.3k<' in html
    assert "agent up" in html
    assert "1/2" in html  # port 80: one of two healthy


def test_it_shows_per_real_counters_health_and_latency(as_viewer, demo, redis_client):
    rs1 = _rs(demo, "192.168.1.4")
    write_snapshot(
        redis_client,
        demo,
        {rs1: dest(rs1, active=17, inactive=3, persistent=2, cps=5, inbps=2048, latency=0.012)},
    )
    html = as_viewer.get(reverse("service_detail", args=[rs1.service_id])).content.decode()
    row = html.split(f'id="real-{rs1.pk}"')[1].split("</tr>")[0]
    assert 'data-col="active">17<' in row and 'data-col="inactive">3<' in row
    assert 'data-col="persistent">2<' in row and 'data-col="cps">5<' in row
    assert "2.0 KiB/s" in row and "12 ms" in row and "health-up" in row


def test_it_draws_a_sparkline_from_history(as_viewer, demo, redis_client):
    rs1 = _rs(demo, "192.168.1.4")
    write_snapshot(redis_client, demo)
    write_history(redis_client, demo, rs1, [{"t": i, "active": i % 5, "inbps": i} for i in range(300)])
    html = as_viewer.get(reverse("service_detail", args=[rs1.service_id])).content.decode()
    row = html.split(f'id="real-{rs1.pk}"')[1].split("</tr>")[0]
    assert row.count("<polyline") == 2
    points = row.split('points="')[1].split('"')[0].split()
    assert len(points) == 120  # downsampled, not 300 points a row every 2 s


def test_it_lists_drift_and_the_reported_revision(as_viewer, demo, redis_client):
    write_snapshot(
        redis_client, demo, drift=["extra service TCP 10.0.0.9:22 (not in desired state)"], revision=3
    )
    html = as_viewer.get(reverse("director_detail", args=[demo.pk])).content.decode()
    assert "extra service TCP 10.0.0.9:22" in html and "agent reports r3" in html


def test_it_falls_back_to_stored_health_without_a_snapshot(as_viewer, demo):
    rs1 = _rs(demo, "192.168.1.4")
    RealServer.objects.filter(pk=rs1.pk).update(health="down", health_reason="connection refused")
    html = as_viewer.get(reverse("service_detail", args=[rs1.service_id])).content.decode()
    assert "connection refused" in html and "no live statistics" in html
