"""Turn what agents report through Redis into rows: events, health flips, applied revisions, heartbeats.

Each agent XADDs to its own stream (director/keys.events_stream, read through the gateway agents.py), which its Redis user alone may write
(director/acl.py). So what arrives on director X's stream speaks for X and nothing else: an entry naming
another director, a job of another director, or a revision the central side never issued is dropped and
logged (an error Event on X), whatever X's agent - or whoever holds its password - claims.

We keep one read position per stream in Redis and create Events with the agent's own id as `source_id`,
so reading the same entry twice (a crash between insert and cursor update, or an agent re-sending its disk
buffer) never duplicates a row, and nothing is skipped.
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


def _forged(source: Director, message: str, fields: dict) -> None:
    """An entry X's stream may not carry: dropped, and said loudly on X (the director to look at)."""
    log.warning("dropped event from director %s: %s: %.300r", source.name, message, fields)
    Event.objects.create(
        kind=C.EventKind.AGENT,
        level=C.Level.ERROR,
        director=source,
        message=f"dropped an event from this director's stream: {message}"[:500],
        data={"entry": {k: str(v)[:200] for k, v in list(fields.items())[:12]}},
    )


def apply_entry(fields: dict, lookup: _Lookup, source: str) -> Event | None:
    """Apply one entry of director `source`'s stream to the database; returns the Event (None if it was a
    duplicate or dropped as not `source`'s to say)."""
    director = lookup.director(source)
    if director is None:
        return None
    name = fields.get("director", "")
    if name != source:
        _forged(director, f"it claims to be from director {str(name)[:60]!r}", fields)
        return None
    service = lookup.services.get(name, {}).get(fields.get("service", ""))
    server = lookup.reals.get(name, {}).get(fields.get("real", ""))
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
    revision, job_id = 0, None
    if kind == C.EventKind.APPLY:
        revision, job_id = data.get("revision") or 0, data.get("job_id")
        if type(revision) is not int or not 0 <= revision <= director.desired_revision:
            _forged(director, f"applied revision {str(revision)[:30]} was never sent to it", fields)
            return None
        if job_id is not None and (
            type(job_id) is not int or not ApplyJob.objects.filter(pk=job_id, director=director).exists()
        ):
            _forged(director, f"job {str(job_id)[:30]} is not one of its jobs", fields)
            return None
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
        if kind == C.EventKind.APPLY:
            Director.objects.filter(pk=director.pk, applied_revision__lt=revision).update(
                applied_revision=revision
            )
            if job_id:
                errors = data.get("errors") if isinstance(data.get("errors"), list) else []
                ApplyJob.objects.filter(pk=job_id, director=director, status=C.JobStatus.PENDING).update(
                    status=C.JobStatus.FAILED if errors else C.JobStatus.APPLIED,
                    error="\n".join(str(e) for e in errors)[:5000],
                    result={k: data.get(k) for k in ("ops", "errors", "revision", "seconds")},
                    finished=when,
                )
    return event


def ingest(max_entries: int = 5000, block_ms: int | None = None) -> int:
    """Read new entries of every director's stream (bounded), store them, advance the cursors.
    Returns how many were read."""
    names = list(Director.objects.values_list("name", flat=True))
    entries = agents.read_events(names, max_entries, block_ms)
    lookup = _Lookup()
    for source, entry_id, fields in entries:
        try:
            apply_entry(fields, lookup, source)
        except Exception:  # one bad entry must not block the stream forever
            log.exception("bad event entry %s from %s: %.500r", entry_id, source, fields)
        agents.ack_event(source, entry_id)
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
