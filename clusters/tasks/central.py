"""Periodic central work: ingest agent reports, heartbeats, finishing drains.

Run by the central worker on beat's schedule (ultramonkey_web/celery.py). Each task is short and bounded
so a slow database never piles up work: the next tick just continues from the stream cursor.
"""

import time

from celery import shared_task
from django.db.models import F

from director.keys import service_key_for

from .. import agents, ingest, services
from .. import choices as C
from ..models import Director, RealServer, VirtualService


@shared_task(name="clusters.ingest_events", ignore_result=True)
def ingest_events() -> int:
    n = 0
    for _ in range(10):  # bounded: at most 10 batches per tick
        got = ingest.ingest()
        n += got
        if got < 5000:
            break
    ingest.refresh_heartbeats()
    return n


@shared_task(name="clusters.follow_up", ignore_result=True)
def follow_up() -> int:
    """Resend desired state to live agents that are behind; finish drains whose connections have gone; put
    back the agents' Redis users if Redis lost them (restarted without an ACL file), and remove those of
    deleted directors once their agent has taken its last state."""
    agents.ensure_director_users(
        dict(Director.objects.exclude(redis_password_sha256="").values_list("name", "redis_password_sha256"))
    )
    agents.prune_director_users(set(Director.objects.values_list("name", flat=True)), time.time())
    for director in Director.objects.filter(applied_revision__lt=F("desired_revision")):
        services.resync(director, agents.heartbeat(director.name))
    moved = 0
    draining = RealServer.objects.filter(admin_state=C.AdminState.DRAINING).exclude(after_drain="")
    for director in Director.objects.filter(services__reals__in=draining).distinct():
        # only the records of the services with draining reals: O(those services), not O(table)
        sids = {
            service_key_for(vs) for vs in VirtualService.objects.filter(reals__in=draining, director=director)
        }
        moved += services.finish_drains(agents.dest_stats(director.name, sorted(sids)), director)
    return moved
