"""Helpers for the view tests: write what a director agent writes (director/keys.py names, the shape of
agent.snapshot()) into the real Redis, and give Celery fresh connection pools."""

from __future__ import annotations

import json
import time

import pytest

from director import keys
from director.keys import dest_key_for, service_key_for


def dest(server, active=0, inactive=0, persistent=0, up=True, reason="HTTP 200", latency=0.004, **rates):
    stats = {"conns": 0, "cps": 0, "inpps": 0, "outpps": 0, "inbps": 0, "outbps": 0}
    stats.update(rates, active=active, inactive=inactive, persistent=persistent)
    return {
        "address": server.address,
        "port": server.port,
        "in_kernel": True,
        "weight": 0 if server.admin_state == "draining" else server.weight,
        "active": active,
        "inactive": inactive,
        "persistent": persistent,
        "stats": stats,
        "health": {"up": up, "reason": reason, "latency": latency, "checked": time.time()},
    }


def write_snapshot(r, director, per_server=None, drift=(), revision=None, heartbeat=True):
    """per_server: {RealServer: dest-dict}; services get summed rates and healthy counts."""
    per_server = per_server or {}
    services = {}
    for vs in director.services.all():
        dests = {}
        for server in vs.reals.all():
            dests[dest_key_for(server)] = per_server.get(server) or dest(server)
        rates = {
            k: sum(d["stats"].get(k, 0) for d in dests.values())
            for k in ("cps", "inpps", "outpps", "inbps", "outbps")
        }
        services[service_key_for(vs)] = {
            "label": vs.label,
            "scheduler": vs.scheduler,
            "stats": rates,
            "healthy": sum(1 for d in dests.values() if d["health"]["up"] is not False),
            "total": len(dests),
            "quorum": True,
            "dests": dests,
        }
    now = time.time()
    snap = {
        "time": now,
        "revision": director.desired_revision if revision is None else revision,
        "director": director.name,
        "drift": list(drift),
        "services": services,
    }
    r.set(keys.stats_key(director.name), json.dumps(snap), ex=keys.STATS_TTL)
    if heartbeat:
        r.set(keys.heartbeat_key(director.name), json.dumps({"time": now, "revision": snap["revision"]}))
    return snap


def write_history(r, director, server, samples):
    key = keys.history_key(director.name, dest_key_for(server))
    for s in samples:
        r.rpush(key, json.dumps(s))


@pytest.fixture
def fresh_celery_pools():
    """Another test points the Celery app at a dead broker and closes the shared pools; start clean."""
    from kombu import pools

    from ultramonkey_web.celery import app

    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None
    yield
