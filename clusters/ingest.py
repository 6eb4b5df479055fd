"""Turn what agents report through Redis into rows: events, health flips, applied revisions, heartbeats.

Agents XADD to one stream, read through the gateway (agents.py). We keep our read position in Redis and create
Events with the agent's own id as `source_id`, so reading the same entry twice (a crash between insert
and cursor update, or an agent re-sending its disk buffer) never duplicates a row, and nothing is skipped.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from director.keys import dest_key_for, service_key_for

from . import agents, reports
from . import choices as C
from .models import ApplyJob, Director, Event, RealServer, VirtualService

log = logging.getLogger(__name__)


def _when(fields: dict) -> dt.datetime:
    try:
        return dt.datetime.fromtimestamp(float(fields["time"]), tz=dt.UTC)
    except (KeyError, ValueError, TypeError, OverflowError, OSError):
        return timezone.now()


def _number(value) -> float | None:
    """A finite non-negative number from an agent's event data, None for anything else."""
    try:
        return reports.number(value, "value")
    except reports.BadReport:
        return None


class _Lookup:
    """Per-batch cache of director -> {service id: VirtualService, dest id: RealServer}."""

    def __init__(self):
        self.directors: dict[str, Director | None] = {}
        self.services: dict[str, dict] = {}
        self.reals: dict[str, dict] = {}

    def director(self, name: str) -> Director | None:
        if name not in self.directors:
            self.directors[name] = Director.objects.filter(name=name).first()
            d = self.directors[name]
            if d is not None:
                svcs = list(VirtualService.objects.filter(director=d))
                self.services[name] = {service_key_for(s): s for s in svcs}
                reals = RealServer.objects.filter(service__director=d).select_related("service")
                self.reals[name] = {dest_key_for(r): r for r in reals}
        return self.directors[name]


def apply_entry(fields: dict, lookup: _Lookup) -> Event | None:
    """Apply one stream entry to the database; returns the Event (None if it was a duplicate)."""
    director = lookup.director(fields.get("director", ""))
    name = fields.get("director", "")
    service = lookup.services.get(name, {}).get(fields.get("service", "")) if director else None
    server = lookup.reals.get(name, {}).get(fields.get("real", "")) if director else None
    # a stream entry is an agent's word: anything off-shape is stored as what it is, never trusted into a row
    try:
        data = reports.loads(fields.get("data"), "event data") or {}
    except reports.BadReport as exc:
        data = {reports.PROBLEM: str(exc)}
    if not isinstance(data, dict):
        data = {reports.PROBLEM: "event data is not an object", "value": str(data)[:200]}
    kind = fields.get("kind") if fields.get("kind") in C.EventKind.values else C.EventKind.AGENT
    level = fields.get("level") if fields.get("level") in C.Level.values else C.Level.INFO
    health = fields.get("health") if fields.get("health") in C.Health.values else None
    when = _when(fields)
    with transaction.atomic():
        try:
            with transaction.atomic():
                event = Event.objects.create(
                    source_id=fields.get("id") or None,
                    time=when,
                    kind=kind,
                    level=level,
                    director=director,
                    service=service,
                    server=server,
                    message=str(fields.get("message", ""))[:500],
                    data=data,
                )
        except IntegrityError:
            return None  # already ingested
        if kind == C.EventKind.CHECK and server is not None and health:
            # conditional on time so an old, re-sent flip never overwrites a newer one
            RealServer.objects.filter(pk=server.pk).exclude(health_changed__gt=when).update(
                health=health,
                health_reason=str(data.get("reason") or "")[:200],
                health_latency=_number(data.get("latency")),
                health_changed=when,
            )
        if kind == C.EventKind.APPLY and director is not None:
            revision = int(_number(data.get("revision")) or 0)
            Director.objects.filter(pk=director.pk, applied_revision__lt=revision).update(
                applied_revision=revision
            )
            job_id = _number(data.get("job_id"))
            if job_id and job_id < 2**63:
                failed = bool(data.get("errors"))
                ApplyJob.objects.filter(pk=int(job_id), status=C.JobStatus.PENDING).update(
                    status=C.JobStatus.FAILED if failed else C.JobStatus.APPLIED,
                    error="\n".join(str(e) for e in data.get("errors") or [])[:5000],
                    result={k: data.get(k) for k in ("ops", "errors", "revision", "seconds")},
                    finished=when,
                )
    return event


def ingest(max_entries: int = 5000, block_ms: int | None = None) -> int:
    """Read new stream entries (bounded), store them, advance the cursor. Returns how many were read."""
    entries = agents.read_events(max_entries, block_ms)
    if not entries:
        return 0
    lookup = _Lookup()
    for entry_id, fields in entries:
        try:
            apply_entry(fields, lookup)
        except Exception:  # one bad entry must not block the stream forever
            log.exception("bad event entry %s: %s", entry_id, fields)
        agents.ack_event(entry_id)
    return len(entries)


def refresh_heartbeats() -> None:
    """Copy agent heartbeats into Director.last_seen/state (the overview sorts and filters on them)."""
    now = timezone.now()
    directors = list(Director.objects.all())
    beats = agents.heartbeats([d.name for d in directors])
    if beats is None:  # Redis unreachable: we cannot tell, so leave every state as it is
        return
    for director in directors:
        hb = beats[director.name]
        if hb and hb.get("time"):  # a bad heartbeat ({"problem": ...}) says nothing about when
            seen = dt.datetime.fromtimestamp(float(hb["time"]), tz=dt.UTC)
            if director.last_seen is None or seen > director.last_seen:
                director.last_seen = seen
        state = director.agent_status(now)
        Director.objects.filter(pk=director.pk).update(last_seen=director.last_seen, state=state)


def latest_event_id() -> int:
    return Event.objects.aggregate(m=Max("id"))["m"] or 0
