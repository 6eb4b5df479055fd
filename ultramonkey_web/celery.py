"""Central Celery app: routes director work to `director.<name>` queues and the rest to `central`.

Director agents run their own Celery app (director/worker.py, no Django); the two agree only on task
names and JSON payloads, which is why director tasks are sent by name with `send_task`.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ultramonkey_web.settings")

app = Celery("ultramonkey_web")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_default_queue="central",
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    result_expires=3600,
    broker_connection_retry_on_startup=True,
    task_routes={"clusters.*": {"queue": "central"}},
    beat_schedule={
        "ingest-director-events": {"task": "clusters.ingest_events", "schedule": 1.0},
        "check-drift-and-drains": {"task": "clusters.follow_up", "schedule": 5.0},
    },
)
app.autodiscover_tasks(["clusters"])
