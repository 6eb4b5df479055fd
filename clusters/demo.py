"""The classic Ultra Monkey demo: one NAT director, two real servers, HTTP on :80 and VNC-style TCP on :5500."""

from django.db import transaction

from . import choices as C
from .models import Director, RealServer, VirtualService

VIP = "172.16.10.52"
REALS = ("192.168.1.4", "192.168.1.5")


@transaction.atomic
def load_demo(name: str = "lab1") -> tuple[Director, bool]:
    """Idempotent: returns (director, created)."""
    director, created = Director.objects.get_or_create(
        name=name,
        defaults=dict(
            description="Lab director (UML guest, classic Ultra Monkey topology)",
            wan_interface="wan",
            lan_interface="lan",
            lan_subnet="192.168.1.0/24",
        ),
    )
    if not created and director.services.exists():
        return director, False
    http = VirtualService.objects.create(
        director=director,
        name="web",
        protocol=C.Protocol.TCP,
        address=VIP,
        port=80,
        scheduler=C.Scheduler.RR,
        checktype=C.CheckType.NEGOTIATE,
        check_service=C.CheckService.HTTP,
        request="/index.html",
        receive="rs",
        checkinterval=2,
        checktimeout=1,
        negotiatetimeout=1,
        quiescent=True,
    )
    vnc = VirtualService.objects.create(
        director=director,
        name="vnc",
        protocol=C.Protocol.TCP,
        address=VIP,
        port=5500,
        scheduler=C.Scheduler.WLC,
        persistence=300,
        checktype=C.CheckType.CONNECT,
        checkinterval=2,
        checktimeout=1,
        quiescent=False,
    )
    for vs in (http, vnc):
        for addr in REALS:
            RealServer.objects.create(
                service=vs, address=addr, port=vs.port, forwarding=C.Forwarding.MASQ, weight=1
            )
    return director, True
