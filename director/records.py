"""Compact per-service stats records and the deltas between two rounds: the reporting wire format.

Why: one JSON snapshot of a whole director per round costs O(table) every 2 s on the agent, in Redis and on
every page that reads it (17 MB a round at 37k real servers). Instead the agent keeps one record per virtual
service - the same shape a service had inside the old snapshot, with zero counters left out - and ships only
the records whose text changed since the last round (director/keys.py documents the Redis layout). Pure
functions, no Redis, no kernel: both sides and the property tests use them.

A record is canonical JSON text (sorted keys, no spaces), so "changed" is a string comparison and applying a
delta to the last full state gives exactly the new full state (tests/unit/test_records.py proves it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from .ipvs.model import STAT_FIELDS

# Sample fields of the sparkline history (one list per real server, director/keys.py history_key).
SAMPLE_FIELDS = ("active", "inactive", "cps", "inbps", "outbps")


def encode(record: dict) -> str:
    """Canonical text of a record: equal records give equal text, so a round compares strings."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"))


def compact_stats(stats: Mapping[str, int]) -> dict:
    """Counters without the zeros (a reader takes a missing counter as 0): most of a quiet table is zeros."""
    return {k: v for k, v in stats.items() if v}


def compact(record: dict) -> dict:
    """A service record without what a reader assumes anyway (zero counters, empty text, nulls): at 37k real
    servers most of a quiet table is zeros, and every byte is written, stored and parsed again."""
    out = {k: v for k, v in record.items() if k != "dests"}
    if record.get("stats"):
        out["in_kernel"] = True  # the kernel has the service (its counters may all be zero)
    out["stats"] = compact_stats(record.get("stats") or {})
    dests = {}
    for did, dest in (record.get("dests") or {}).items():
        # weight 0 (a drained server) is a value, not a default: only a missing weight (None) is left out
        d = {k: v for k, v in dest.items() if v not in (None, 0, "") or k in ("port", "in_kernel")}
        if dest.get("weight") is not None:
            d["weight"] = dest["weight"]
        if "stats" in d:
            d["stats"] = compact_stats(d["stats"])
            if not d["stats"]:
                del d["stats"]
        if "health" in d:
            d["health"] = {k: v for k, v in d["health"].items() if k == "up" or v not in (None, "")}
        dests[did] = d
    out["dests"] = dests
    return out


def full(record):
    """The record `compact` was given: zero counters, empty text and nulls put back, so readers see the shape
    the whole snapshot always had (every counter of a service or real server the kernel holds). Anything that
    is not shaped like a record comes back as it is (the reader's checks say what is wrong with it)."""
    if not isinstance(record, dict):
        return record
    out = dict(record)
    if isinstance(out.get("stats"), dict):
        out["stats"] = _counters(out["stats"]) if out.pop("in_kernel", False) is True else out["stats"]
    dests = out.get("dests")
    if isinstance(dests, dict):
        out["dests"] = {did: _full_dest(d) if isinstance(d, dict) else d for did, d in dests.items()}
    return out


def _counters(stats: dict) -> dict:
    return {**{k: 0 for k in STAT_FIELDS}, **stats}


def _full_dest(dest: dict) -> dict:
    d = {"weight": None, "active": 0, "inactive": 0, "persistent": 0, **dest}
    stats = d.get("stats", {})
    if isinstance(stats, dict):
        d["stats"] = _counters(stats) if d.get("in_kernel") is True else stats
    health = d.get("health")
    if isinstance(health, dict):
        d["health"] = {"up": None, "reason": "", "latency": None, "checked": None, **health}
    return d


def summary(record: dict) -> dict:
    """A service's few numbers for overview and director pages, so they can read every service of a director
    without its real servers (keys.summary_key): health counts, and under "stats" the kernel's service
    counters plus the connections of its real servers (active, inactive, persistent); zeros left out, and
    "in_kernel" when the kernel has the service, so a reader (`full`) puts its zero counters back: a service
    at zero is not a service without numbers (/metrics leaves out the series of the latter only)."""
    out = {k: record[k] for k in ("label", "healthy", "total", "quorum") if k in record}
    if record.get("stats"):
        out["in_kernel"] = True
    counts = {"active": 0, "inactive": 0, "persistent": 0}
    for dest in (record.get("dests") or {}).values():
        for k in counts:
            counts[k] += dest.get(k) or 0
    out["stats"] = compact_stats({**(record.get("stats") or {}), **counts})
    return out


def delta(last: Mapping[str, str], new: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """(records to write, service ids to delete) that turn `last` into `new`: only what changed."""
    changed = {sid: text for sid, text in new.items() if last.get(sid) != text}
    removed = [sid for sid in last if sid not in new]
    return changed, removed


def apply(state: Mapping[str, str], changed: Mapping[str, str], removed) -> dict[str, str]:
    """The state a reader holds after a delta: what HSET/HDEL do to the director's hash."""
    out = {sid: text for sid, text in state.items() if sid not in set(removed)}
    out.update(changed)
    return out


def sample(dest: dict) -> tuple:
    """The sparkline values of a real server's record: a new history point is written only when they change."""
    stats = dest.get("stats") or {}
    return (
        dest.get("active") or 0,
        dest.get("inactive") or 0,
        *(stats.get(k) or 0 for k in SAMPLE_FIELDS[2:]),
    )


def expand(
    samples: list[dict], until: float, step: float, points: int, epoch: float | None = None
) -> list[dict]:
    """Samples written on change only -> one sample per `step` seconds up to `until`, at most `points`.

    A real server's history holds a point when its numbers changed; between two points they stayed as the
    earlier one said. At the history `epoch` (the agent's first round) a real server without a point of
    its own was all zeros (the agent does not write those). Pages draw one value per report round, so the
    gaps are filled with the value that held then, up to the time of the director's last round.
    """
    samples = sorted((s for s in samples if isinstance(s.get("t"), int | float)), key=lambda s: s["t"])
    if isinstance(epoch, int | float) and not any(abs(s["t"] - epoch) < 0.05 for s in samples):
        zero = {"t": epoch, **dict.fromkeys(SAMPLE_FIELDS, 0)}
        samples = [s for s in samples if s["t"] < epoch] + [zero] + [s for s in samples if s["t"] > epoch]
    if not samples or step <= 0 or points <= 0:
        return []
    end = max(until, samples[-1]["t"])
    start = max(samples[0]["t"], end - step * (points - 1))
    out: list[dict] = []
    i = 0
    n = min(points, int((end - start) // step) + 1)
    first = end - step * (n - 1)
    for k in range(n):
        t = first + k * step
        while i + 1 < len(samples) and samples[i + 1]["t"] <= t + 1e-6:
            i += 1
        if samples[i]["t"] > t + 1e-6:  # before the first point: nothing known yet
            continue
        out.append({**samples[i], "t": round(t, 1)})
    return out
