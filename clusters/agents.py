"""The central side's one gateway to the director agents: Redis keys, the event stream and Celery tasks.

Agents write heartbeats, stats snapshots, sparkline history and an event stream into Redis and consume
desired states and questions from their Celery queue (names in director/keys.py, the contract both sides
import). This module is the only code in `clusters/` that knows those names or imports `redis` / `celery`
(an import-linter contract keeps it so): everything else asks it in terms of directors. Reads never raise
for an unreachable Redis - a missing key means "no data", and the page should say the director is quiet -,
sends raise, so the caller can record the failure where the user sees it.
"""

from __future__ import annotations

import logging
from functools import lru_cache

import redis
from celery import current_app
from django.conf import settings

from director import keys

from . import reports

log = logging.getLogger(__name__)

# A click must not hang on a dead broker: two quick retries, then the job shows the error.
PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
# A question (connection table) is retried once only: its answer is wanted now or not at all.
ASK_RETRY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}


@lru_cache(maxsize=1)
def client() -> redis.Redis:
    return redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2, decode_responses=True
    )


# -- what agents report (reads) ----------------------------------------------------------------------------
# Everything read is checked by reports.py: a value without the documented shape comes back as
# {"problem": "why"} (a snapshot keeps its good parts and names the bad ones there), never as an exception,
# so one director's garbage shows as that director's "bad report" and breaks nothing for the others.
PROBLEM = reports.PROBLEM


def _get(key: str, what: str, check) -> dict | None:
    try:
        raw = client().get(key)
    except redis.RedisError:
        return None
    return reports.read(raw, what, check)


def snapshot(director: str) -> dict | None:
    """The agent's last stats snapshot: {"time", "revision", "services": {svc_id: {...,"dests": {dest_id: {...}}}}}."""
    return _get(keys.stats_key(director), "snapshot", reports.snapshot)


def dest_stats(director: str) -> dict[str, dict]:
    """Flatten a snapshot to {dest_id: stats} for quick lookup per real server."""
    snap = snapshot(director) or {}
    out = {}
    for svc in (snap.get("services") or {}).values():
        out.update(svc.get("dests") or {})
    return out


def heartbeat(director: str) -> dict | None:
    """The agent's last heartbeat ({"time", "revision", ...}), None without one or without Redis."""
    return _get(keys.heartbeat_key(director), "heartbeat", reports.heartbeat)


def heartbeats(directors: list[str]) -> dict[str, dict | None] | None:
    """`heartbeat` for many directors in one round trip; None (not a dict of Nones) when Redis is unreachable,
    so a caller can tell "no agent reported" from "we cannot know"."""
    if not directors:
        return {}
    try:
        raws = client().mget([keys.heartbeat_key(d) for d in directors])
    except redis.RedisError:
        return None
    return {
        d: reports.read(raw, "heartbeat", reports.heartbeat) for d, raw in zip(directors, raws, strict=True)
    }


def histories(director: str, dests: list[str], points: int = keys.HISTORY_POINTS) -> dict[str, list[dict]]:
    """Sparkline samples, oldest first ([{"t", "active", "inactive", "cps", "inbps", "outbps"}]), for many
    real servers in one round trip (a table row each, refreshed every 2 s)."""
    if not dests:
        return {}
    try:
        pipe = client().pipeline(transaction=False)
        for dest in dests:
            pipe.lrange(keys.history_key(director, dest), -points, -1)
        raws = pipe.execute()
    except redis.RedisError:
        return {}
    out = {}
    for dest, raw in zip(dests, raws, strict=True):
        samples = (reports.read(x, "sample", reports.sample) for x in raw)
        out[dest] = [s for s in samples if s and PROBLEM not in s]  # a bad sample is a gap in the line
    return out


# -- the event stream --------------------------------------------------------------------------------------
def read_events(count: int, block_ms: int | None = None) -> list[tuple[str, dict]]:
    """Up to `count` stream entries after our cursor, oldest first: [(entry id, fields)]; [] when unreachable.

    The cursor only moves with `ack_event`, so an entry whose processing crashed is read again next time.
    """
    try:
        r = client()
        cursor = r.get(keys.EVENTS_CURSOR_KEY) or "0-0"
        batch = r.xread({keys.EVENTS_STREAM: cursor}, count=count, block=block_ms)
    except redis.RedisError as exc:
        log.warning("cannot read events: %s", exc)
        return []
    return list(batch[0][1]) if batch else []


def ack_event(entry_id: str) -> None:
    """Move the cursor past `entry_id`: it has been stored (or judged unreadable) and must not come again."""
    client().set(keys.EVENTS_CURSOR_KEY, entry_id)


# -- what we send (Celery tasks the agent's worker registers) -----------------------------------------------
def send_desired(queue: str, desired: dict, job_id: int | None) -> None:
    """Queue the whole desired state on a director's queue. Fire and forget: the agent answers through the
    event stream (an "apply" event naming `job_id`), never through a Celery result, so none is kept."""
    current_app.send_task(
        keys.APPLY_TASK,
        args=[desired],
        kwargs={"job_id": job_id},
        queue=queue,
        retry=True,
        retry_policy=PUBLISH_RETRY,
        ignore_result=True,
    )


def ask_conntable(queue: str, timeout: float, **filters) -> dict | list:
    """The agent's connection table, waiting at most `timeout` seconds; raises on any failure.

    The question expires quickly, so an agent coming back does not work through a backlog of stale queries.
    """
    result = current_app.send_task(
        keys.CONNTABLE_TASK,
        kwargs=filters,
        queue=queue,
        expires=max(timeout * 2, 5),
        retry=True,
        retry_policy=ASK_RETRY,
    )
    try:
        return result.get(timeout=timeout, propagate=True)
    finally:
        result.forget()
