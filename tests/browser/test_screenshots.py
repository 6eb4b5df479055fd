"""Screenshots of every page at phone and desktop width, for reviews: opt-in with UMW_SHOTS=<directory>."""

import os
import random
from pathlib import Path

import pytest

from clusters import services
from clusters.models import RealServer
from tests.django.snapshots import dest, write_history, write_snapshot

from .conftest import DESKTOP, PHONE

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.environ.get("UMW_SHOTS"), reason="set UMW_SHOTS=<dir> to take screenshots"),
]


def _stage(demo, operator, redis_client):
    """A director mid-operation: traffic, one drain under way, one failed check, history for sparklines."""
    reals = list(RealServer.objects.filter(service__director=demo).order_by("service__port", "address"))
    services.drain(reals[0], operator, then="maintenance")
    services.record(
        "check", "real server 192.168.1.5:5500 is down: connection refused", server=reals[3], level="warning"
    )
    rnd = random.Random(5)
    live = {}
    for i, rs in enumerate(reals):
        rs.refresh_from_db()
        active = [12, 230, 3, 0][i]
        live[rs] = dest(
            rs,
            active=active,
            inactive=active * 3,
            persistent=i,
            cps=7 * i,
            inpps=40 * i + 3,
            outpps=55 * i + 4,
            inbps=9000 * i + 512,
            outbps=120000 * i + 800,
            up=i != 3,
            reason="connection refused" if i == 3 else "HTTP 200",
            latency=0.002 + i / 1000,
        )
        write_history(
            redis_client,
            demo,
            rs,
            [
                {
                    "t": t,
                    "active": max(0, active + rnd.randint(-8, 8) + (t // 60) * (1 if i else -1)),
                    "inbps": 9000 * i + rnd.randint(0, 4000),
                }
                for t in range(0, 1800, 2)
            ],
        )
    write_snapshot(redis_client, demo, live, drift=["extra real 192.168.1.9:80 in TCP 172.16.10.52:80"])
    return reals


def test_it_takes_screenshots(
    new_page, login, live_server, settings, operator, admin_user, demo, redis_client
):
    settings.UMW_CONNTABLE_TIMEOUT = 0.5
    out = Path(os.environ["UMW_SHOTS"])
    out.mkdir(parents=True, exist_ok=True)
    reals = _stage(demo, operator, redis_client)
    pages = {
        "overview": "/",
        "director": f"/directors/{demo.pk}/",
        "service": f"/services/{reals[0].service_id}/",
        "connections": f"/directors/{demo.pk}/connections/",
        "logs": "/logs/",
    }
    for label, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        page = new_page(viewport)
        page.goto(live_server.url + "/login/")
        page.screenshot(path=str(out / f"login-{label}.png"), full_page=True)
        login(page, operator)
        for name, url in pages.items():
            page.goto(live_server.url + url)
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(out / f"{name}-{label}.png"), full_page=True)
        page = login(new_page(viewport), admin_user)
        page.goto(f"{live_server.url}/directors/{demo.pk}/services/new/")
        page.fill("#id_address", "172.16.10.600")
        page.click("button:has-text('Save')")
        page.screenshot(path=str(out / f"service-form-errors-{label}.png"), full_page=True)
