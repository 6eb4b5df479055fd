"""Events from the director to the central side, never lost: disk first, Redis when it answers.

Every event is appended (fsync'd) to a JSON-lines file in the agent's state directory before anything else,
then `flush()` XADDs everything pending to the Redis stream and truncates the file. While Redis is down the
file grows (bounded) and the data plane does not care; when Redis returns the backlog goes out in order.
A crash between XADD and truncate re-sends a few events: each carries a unique id, and the central ingest
ignores ids it has already stored, so re-sending is harmless while losing is impossible.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid

from . import keys

log = logging.getLogger(__name__)

MAX_BUFFERED = 200_000  # beyond this, the oldest events are dropped and the drop itself is reported


class EventLog:
    """Append-only disk buffer of events plus the flush to Redis."""

    def __init__(self, path: str, director: str):
        self.path = path
        self.director = director
        self._lock = threading.Lock()
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)

    def emit(self, kind: str, message: str, **fields) -> dict:
        """Record one event durably; returns it. Cheap enough to call from the health-check path.

        `fields` are the keyword fields of `_event` (level, service, real, health, data); they are passed
        straight through so the field list and its defaults live in one place."""
        return self.emit_many([dict(kind=kind, message=message, **fields)])[0]

    def emit_many(self, events: list[dict]) -> list[dict]:
        """Record several events (emit's keyword arguments, plus `kind` and `message`) with one write and
        one fsync: a batch of flips must not cost the disk a sync per real server."""
        records = [self._event(**ev) for ev in events]
        if records:
            self._append("".join(json.dumps(ev) + "\n" for ev in records))
        return records

    def _event(
        self,
        kind: str,
        message: str,
        *,
        level: str = "info",
        service: str = "",
        real: str = "",
        health: str = "",
        data: dict | None = None,
    ) -> dict:
        """One event record, as stored on disk and XADDed: the single definition of an event's fields."""
        return {
            "id": uuid.uuid4().hex,
            "director": self.director,
            "time": f"{time.time():.6f}",
            "kind": kind,
            "level": level,
            "message": message,
            "service": service,
            "real": real,
            "health": health,
            "data": json.dumps(data or {}, default=str),
        }

    def _append(self, text: str) -> None:
        with self._lock:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())

    def pending(self) -> list[dict]:
        with self._lock:
            return self._read()

    def _read(self) -> list[dict]:
        try:
            with open(self.path, encoding="utf-8") as f:
                lines = f.readlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a torn last line after a power cut: skip it, keep the rest
        return out

    def flush(self, redis_client) -> int:
        """Send every pending event to Redis in order; returns how many went out (0 if Redis is down)."""
        with self._lock:
            events = self._read()
            if not events:
                return 0
            dropped = len(events) - MAX_BUFFERED
            if dropped > 0:
                events = events[dropped:]
            try:
                pipe = redis_client.pipeline(transaction=False)
                for ev in events:
                    pipe.xadd(
                        keys.events_stream(self.director), ev, maxlen=keys.EVENTS_MAXLEN, approximate=True
                    )
                pipe.execute()
            except Exception as exc:  # redis down or slow: keep everything on disk for the next try
                log.debug("event flush failed, %d pending: %s", len(events), exc)
                self._trim(events if dropped > 0 else None)
                return 0
            tmp = self.path + ".tmp"
            with open(tmp, "w", encoding="utf-8"):
                pass
            os.replace(tmp, self.path)
            return len(events)

    def _trim(self, keep: list[dict] | None) -> None:
        if keep is None:
            return
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(ev) + "\n" for ev in keep)
        os.replace(tmp, self.path)
