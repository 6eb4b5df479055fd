"""Helpers for the view tests: write what a director agent writes into the real Redis - snapshots made by the
agent's own code (agent_snapshot: the contract between agent and pages) - and give Celery fresh pools."""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import time

import pytest

from clusters.desired import desired_state
from director import keys
from director.desired import DesiredState
from director.events import EventLog
from director.health.engine import RealStatus
from director.host import kernel_table
from director.ipvs import model as ipvs_model
from director.keys import dest_key_for
from director.report import Reporter

RATES = ("conns", "inpkts", "outpkts", "inbytes", "outbytes", "cps", "inpps", "outpps", "inbps", "outbps")


def dest(server, active=0, inactive=0, persistent=0, up=True, reason="HTTP 200", latency=0.004, **rates):
    """What the fake kernel and the health checks say about one real server (see agent_snapshot)."""
    unknown = set(rates) - set(RATES)
    assert not unknown, f"the kernel has no counter {unknown}"
    return {
        "counts": {"active": active, "inactive": inactive, "persistent": persistent},
        "rates": rates,
        "health": RealStatus(None, None, up, up, latency, reason, time.time(), time.time(), 1, 0),
    }


def agent_snapshot(director, per_server=None, drift=(), revision=None, ha=None, redis=None) -> dict:
    """The snapshot the agent itself would send for `director`: the central side's desired state, given to
    the agent's own code (director/host.py's kernel_table: admin state x health -> kernel dests; then
    director/report.py's Reporter.snapshot), over a fake kernel whose dests carry the counters of
    `per_server` ({RealServer: dest(...)}) and a fake health engine with its results.

    This is the contract between agent and pages: a page test reads what the agent's code produced, so a
    change of shape on either side breaks the django and browser tiers instead of production."""
    per_server = per_server or {}
    desired = desired_state(director).to_dict()
    if revision is not None:
        desired["revision"] = revision
    state = DesiredState.from_dict(desired)
    servers = {dest_key_for(s): s for vs in director.services.all() for s in vs.reals.all()}
    health, results, in_kernel = {}, {}, {}
    for spec in state.services:
        sid = keys.service_key_for(spec)
        for real in spec.reals:
            did = keys.dest_id(sid, real.address, real.port)
            fake = per_server.get(servers[did]) or dest(servers[did])
            health[did] = fake["health"].up
            results[(spec.key, real.key)] = dataclasses.replace(
                fake["health"], service=spec.key, real=real.key
            )
            in_kernel[keys.dest_id(sid, real.address, ipvs_model.real_port(spec, real))] = fake
    kernel = []
    for ksvc in kernel_table(state, health):
        sid = ipvs_model.service_id_of(ksvc)
        dests = []
        for d in ksvc.dests:
            fake = in_kernel[ipvs_model.dest_id_of(sid, d)]
            dests.append(dataclasses.replace(d, stats=ipvs_model.Stats(**fake["counts"], **fake["rates"])))
        rates = {k: sum(getattr(d.stats, k) for d in dests) for k in RATES}
        kernel.append(dataclasses.replace(ksvc, dests=tuple(dests), stats=ipvs_model.Stats(**rates)))
    reporter = Reporter(
        director.name,
        redis,  # given: one report round is written there, as the agent writes it
        EventLog(os.path.join(tempfile.mkdtemp(prefix="umw-events-"), "events.jsonl"), director.name),
        dump=lambda: kernel,
        specs=lambda: list(state.services),
        table=lambda: kernel_table(state, health),
        revision=lambda: state.revision,
        health=lambda: health,
        results=lambda: results,
        ha=lambda: ha,  # the pair's view (director/pair.py Pair.snapshot), None for a lone director
    )
    reporter.last_drift = list(drift)
    if redis is not None:
        reporter.report_once()
    return reporter.snapshot()


def write_snapshot(r, director, per_server=None, drift=(), revision=None, heartbeat=True, ha=None):
    """One round of the agent's own reporter written into Redis (meta, per-service records, summaries, history
    and heartbeat: director/keys.py); returns agent_snapshot() of the same state."""
    snap = agent_snapshot(director, per_server, drift, revision, ha, redis=r)
    if not heartbeat:
        r.delete(keys.heartbeat_key(director.name))
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
