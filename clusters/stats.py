"""Read side of live data in Redis: stats snapshots, history for sparklines, heartbeats.

Agents write these keys (director/keys.py names them); pages only read. A missing key means "no data",
never an error page: the director may be down, and the page should say so.
"""

from __future__ import annotations

import json
from functools import lru_cache

import redis
from django.conf import settings

from director import keys

from . import choices as C


@lru_cache(maxsize=1)
def client() -> redis.Redis:
    return redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2, decode_responses=True
    )


def service_key_for(vs) -> str:
    if vs.protocol == C.Protocol.FWMARK:
        return keys.service_id("fwmark", fwmark=vs.fwmark, family=vs.family)
    return keys.service_id(vs.protocol, vs.address, vs.port)


def dest_key_for(server) -> str:
    return keys.dest_id(service_key_for(server.service), server.address, server.port)


def snapshot(director_name: str) -> dict | None:
    """The agent's last stats snapshot: {"time", "revision", "services": {svc_id: {...,"dests": {dest_id: {...}}}}}."""
    try:
        raw = client().get(keys.stats_key(director_name))
    except redis.RedisError:
        return None
    return json.loads(raw) if raw else None


def dest_stats(director_name: str) -> dict[str, dict]:
    """Flatten a snapshot to {dest_id: stats} for quick lookup per row."""
    snap = snapshot(director_name) or {}
    out = {}
    for svc in (snap.get("services") or {}).values():
        out.update(svc.get("dests") or {})
    return out


def history(director_name: str, dest: str, points: int = keys.HISTORY_POINTS) -> list[dict]:
    """Samples for a sparkline, oldest first: [{"t", "active", "inactive", "cps", "inbps", "outbps"}]."""
    try:
        raw = client().lrange(keys.history_key(director_name, dest), -points, -1)
    except redis.RedisError:
        return []
    return [json.loads(x) for x in raw]


def heartbeat(director_name: str) -> dict | None:
    try:
        raw = client().get(keys.heartbeat_key(director_name))
    except redis.RedisError:
        return None
    return json.loads(raw) if raw else None


def histories(
    director_name: str, dests: list[str], points: int = keys.HISTORY_POINTS
) -> dict[str, list[dict]]:
    """`history` for many real servers in one round trip (a table row each, refreshed every 2 s)."""
    if not dests:
        return {}
    try:
        pipe = client().pipeline(transaction=False)
        for dest in dests:
            pipe.lrange(keys.history_key(director_name, dest), -points, -1)
        raws = pipe.execute()
    except redis.RedisError:
        return {}
    return {dest: [json.loads(x) for x in raw] for dest, raw in zip(dests, raws, strict=True)}
