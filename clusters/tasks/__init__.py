"""Celery tasks of the central side (queue `central`)."""

from .central import follow_up, ingest_events  # noqa: F401
