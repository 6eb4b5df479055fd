"""The central side's one gateway to the director agents: Redis keys, the event stream and Celery tasks.

Agents write heartbeats, stats snapshots, sparkline history and an event stream into Redis and consume
desired states and questions from their Celery queue (names in director/keys.py, the contract both sides
import). This module is the only code in `clusters/` that knows those names or imports `redis` / `celery`
(an import-linter contract keeps it so): everything else asks it in terms of directors. Reads never raise
for an unreachable Redis - a missing key means "no data", and the page should say the director is quiet -,
sends raise, so the caller can record the failure where the user sees it.
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache

import redis
from celery import current_app
from django.conf import settings

from director import acl, keys, records

from . import reports, signing

log = logging.getLogger(__name__)

# A click must not hang on a dead broker: two quick retries, then the job shows the error.
PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
# A question (connection table) is retried once only: its answer is wanted now or not at all.
ASK_RETRY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}


def _connect(socket_timeout: float) -> redis.Redis:
    """The central side's connection: its own ACL user and password in REDIS_URL, TLS per settings."""
    return redis.Redis.from_url(
        settings.REDIS_URL,
        socket_timeout=socket_timeout,
        socket_connect_timeout=2,
        decode_responses=True,
        **getattr(settings, "REDIS_OPTIONS", {}),
    )


@lru_cache(maxsize=1)
def client() -> redis.Redis:
    return _connect(2)


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


def _stats(director: str, fields) -> dict | None:
    """The meta record and what `fields(pipe, key)` reads of the service records, in one MULTI (a round is
    one MULTI/EXEC on the agent's side, so both come from the same round); None without Redis."""
    try:
        pipe = client().pipeline(transaction=True)
        pipe.get(keys.stats_key(director))
        fields(pipe, keys.service_stats_key(director))
        meta, got = pipe.execute()
    except redis.RedisError:
        return None
    return meta, got


def snapshot(director: str) -> dict | None:
    """The agent's live stats, whole: {"time", "revision", "drift", "ha", "services": {svc_id: {...,
    "dests": {dest_id: {...}}}}}. O(table): a page about one service asks `service_snapshot`."""
    read = _stats(director, lambda pipe, key: pipe.hgetall(key))
    return None if read is None else reports.stats(read[0], read[1])


def service_snapshot(director: str, service_ids: list[str]) -> dict | None:
    """Like `snapshot`, with only the named services (one HMGET): what a service page reads every 2 s,
    whatever the size of the director."""
    ids = list(service_ids)
    read = _stats(
        director, (lambda pipe, key: pipe.hmget(key, ids)) if ids else (lambda pipe, key: pipe.exists(key))
    )
    if read is None:
        return None
    got = read[1] if ids and isinstance(read[1], list) else []
    fields = {sid: raw for sid, raw in zip(ids, got, strict=False) if raw is not None}
    return reports.stats(read[0], fields)


def service_summaries(director: str) -> dict | None:
    """Every service's few numbers without its real servers ({"time", ..., "services": {sid: {"label",
    "healthy", "total", "quorum", "active", "inactive", "persistent", "stats"}}}), for pages that list
    all services of a big director. None without stats."""
    try:
        pipe = client().pipeline(transaction=True)
        pipe.get(keys.stats_key(director))
        pipe.hgetall(keys.summary_key(director))
        meta, fields = pipe.execute()
    except redis.RedisError:
        return None
    return reports.stats(meta, fields)


def dest_stats(director: str, service_ids: list[str]) -> dict[str, dict]:
    """{dest_id: stats} of the real servers of the named services (one HMGET, `service_snapshot`): what
    finishing drains needs, in proportion to the services with draining reals, not to the table."""
    snap = service_snapshot(director, service_ids) or {}
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
    """Sparkline samples, one per report round, oldest first ([{"t", "active", "inactive", "cps", "inbps",
    "outbps"}]), for many real servers in one round trip (a table row each, refreshed every 2 s). The agent
    writes a point only when the numbers change (director/keys.py); the gaps are filled up to its last round."""
    if not dests:
        return {}
    try:
        pipe = client().pipeline(transaction=False)
        pipe.get(keys.stats_key(director))
        for dest in dests:
            pipe.lrange(keys.history_key(director, dest), -points, -1)
        meta, *raws = pipe.execute()
    except redis.RedisError:
        return {}
    until, epoch = reports.history_times(meta)
    out = {}
    for dest, raw in zip(dests, raws, strict=True):
        samples = (reports.read(x, "sample", reports.sample) for x in raw)
        good = [s for s in samples if s and PROBLEM not in s]  # a bad sample is a gap in the line
        out[dest] = records.expand(good, until, keys.HISTORY_STEP, points, epoch)
    return out


# -- the event stream --------------------------------------------------------------------------------------
def read_events(directors: list[str], count: int, block_ms: int | None = None) -> list[tuple[str, str, dict]]:
    """New entries of these directors' own streams, each stream oldest first: [(director, entry id, fields)];
    [] when unreachable. At most `count` per stream.

    Each agent writes only its own stream (its Redis ACL, director/acl.py), so the director an entry comes
    from is the stream's, whatever the entry says. A cursor only moves with `ack_event`, so an entry whose
    processing crashed is read again next time.
    """
    if not directors:
        return []
    try:
        r = client()
        cursors = r.hgetall(keys.EVENTS_CURSORS_KEY)
        streams = {keys.events_stream(d): cursors.get(d, "0-0") for d in directors}
        batch = r.xread(streams, count=count, block=block_ms)
    except redis.RedisError as exc:
        log.warning("cannot read events: %s", exc)
        return []
    by_stream = {keys.events_stream(d): d for d in directors}
    return [
        (by_stream[stream], entry_id, fields)
        for stream, entries in batch or ()
        for entry_id, fields in entries
    ]


def ack_event(director: str, entry_id: str) -> None:
    """Move `director`'s cursor past `entry_id`: it has been stored (or judged unreadable) and must not come again."""
    client().hset(keys.EVENTS_CURSORS_KEY, director, entry_id)


# -- the agents' Redis users (director/acl.py) ----------------------------------------------------------------
def set_director_user(director: str, password_sha256: str) -> None:
    """Create or reset `director`'s Redis ACL user with the password given by its SHA-256; raises."""
    acl.set_director_user(client(), director, password_sha256)


def delete_director_user(director: str) -> None:
    try:
        acl.delete_director_user(client(), director)
    except redis.RedisError as exc:
        log.warning("cannot delete the Redis user of %s: %s", director, exc)


DECOMMISSION_GRACE = 3600  # seconds a deleted director's agent keeps its login to fetch its last state


def mark_decommissioned(director: str, now: float) -> None:
    """Note when `director` was deleted: its Redis user lives on until its agent has taken the last desired
    state (clear the kernel) from its queue, or DECOMMISSION_GRACE has passed (prune_director_users)."""
    client().set(keys.decommissioned_key(director), str(now), ex=7 * 86400)


def prune_director_users(existing: set[str], now: float) -> list[str]:
    """Delete the Redis users (and queue, stream, heartbeat, stats) of directors deleted from the dashboard
    (mark_decommissioned), once their agent has emptied its queue or the grace period is over; returns the
    names pruned. Never raises.

    Deleting a director must end its agent's access: otherwise its password would keep a login on the
    broker for ever. ACL DELUSER also closes that user's open connections."""
    pruned = []
    try:
        users = client().acl_users()
        for user in users[:10_000]:  # bounded: far more than any fleet
            name = user.removeprefix("director.")
            if not user.startswith("director.") or name in existing:
                continue
            queue = keys.queue(name)
            marked = client().get(keys.decommissioned_key(name))
            if marked is None:
                continue  # a user made outside the dashboard (e.g. the lab's): not ours to remove
            try:
                age = now - float(marked)
            except ValueError:
                age = DECOMMISSION_GRACE
            if client().llen(queue) and age < DECOMMISSION_GRACE:
                continue  # its last desired state is still waiting for it
            acl.delete_director_user(client(), name)
            client().delete(
                queue, f"_kombu.binding.{queue}", keys.events_stream(name), keys.heartbeat_key(name),
                keys.stats_key(name), keys.service_stats_key(name), keys.summary_key(name),
                keys.decommissioned_key(name),
            )  # fmt: skip
            client().hdel(keys.EVENTS_CURSORS_KEY, name)
            pruned.append(name)
    except (redis.RedisError, ValueError) as exc:
        log.warning("cannot prune the Redis users of deleted directors: %s", exc)
    return pruned


def ensure_director_users(hashes: dict[str, str]) -> int:
    """Re-create the Redis users that are missing (a Redis restarted without an ACL file keeps none made at
    run time) from the stored hashes {director: sha256}; returns how many were made. Never raises."""
    made = 0
    try:
        for director, digest in hashes.items():
            if client().acl_getuser(acl.username(director)) is None:
                acl.set_director_user(client(), director, digest)
                made += 1
    except (redis.RedisError, ValueError) as exc:
        log.warning("cannot check the directors' Redis users: %s", exc)
    return made


# -- what we send (Celery tasks the agent's worker registers) -----------------------------------------------
def send_desired(queue: str, desired: dict, job_id: int | None) -> None:
    """Sign the whole desired state, with the job it answers, and queue it on a director's queue. Fire and
    forget: the agent answers through its event stream (an "apply" event naming `job_id`), never through a
    Celery result, so none is kept. The agent applies nothing that is not signed by a key it trusts, for
    its own name, with a newer revision (director/signing.py)."""
    current_app.send_task(
        keys.APPLY_TASK,
        args=[signing.sign(desired["director"], desired, job_id)],
        queue=queue,
        retry=True,
        retry_policy=PUBLISH_RETRY,
        ignore_result=True,
    )


class NoAnswer(TimeoutError):
    """The agent did not answer in time (not running, busy, or its Redis is unreachable)."""


def ask_conntable(director: str, queue: str, timeout: float, **filters) -> dict | list:
    """The agent's connection table, waiting at most `timeout` seconds; raises on any failure.

    The agent answers on its own reply key (keys.reply_key), which only it may write: not Celery's result
    backend, whose keys every director would have to be able to read (director/acl.py). The question
    expires quickly, so an agent coming back does not work through a backlog of stale queries.
    """
    result = current_app.send_task(
        keys.CONNTABLE_TASK,
        kwargs=filters,
        queue=queue,
        expires=max(timeout * 2, 5),
        retry=True,
        retry_policy=ASK_RETRY,
        ignore_result=True,
    )
    reply = keys.reply_key(director, result.id)
    r = _connect(timeout + 2)  # the socket must outlast the blocking pop
    try:
        got = r.blpop([reply], timeout=max(timeout, 0.01))
        if got is None:
            raise NoAnswer(f"no reply in {timeout:g} s")
        r.delete(reply)
    finally:
        r.close()
    answer = json.loads(got[1])
    if isinstance(answer, dict) and set(answer) == {"error"}:
        raise RuntimeError(answer["error"])
    return answer
