"""What agents write into Redis, checked before any page, API answer or metric uses it.

Every director writes its own heartbeat, snapshot, sparkline samples and stream entries, and the central
side shows them all on one page: a single director with a bug, a version skew or a hand-edited key must not
take the overview, the API or /metrics down for everyone. So every value goes through these pure functions
(agents.py, the one gateway, calls them): what has the documented shape (director/keys.py) passes, with
numbers made finite and non-negative and text bounded; what does not is left out, and the reason is kept
under "problem" so the page can show that director as "bad report" and say why.
"""

from __future__ import annotations

import json
import math

from director import records

PROBLEM = "problem"
COUNTS = ("active", "inactive", "persistent", "conns")
RATES = ("cps", "inpps", "outpps", "inbps", "outbps")
MAX_TEXT = 500
MAX_DRIFT = 200


class BadReport(ValueError):
    """A value that does not have the shape agents write; the message says what is wrong."""


def loads(raw: str | bytes | None, what: str):
    """JSON from Redis; BadReport (never RecursionError or a decode error) for anything that is not JSON."""
    if raw is None or raw == "":
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError, TypeError) as exc:
        raise BadReport(f"{what} is not JSON ({type(exc).__name__})") from None


def number(value, what: str, *, integer: bool = False, low: float = 0.0) -> float | int:
    """A finite number >= low (bool is not a number here); BadReport otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadReport(f"{what} is not a number: {str(value)[:40]!r}")
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an int too big for a float (JSON allows any number of digits)
        finite = False
    if not finite or value < low:
        shown = f"{value.bit_length()}-bit integer" if isinstance(value, int) and not finite else repr(value)
        raise BadReport(f"{what} is out of range: {shown[:40]}")
    return int(value) if integer else float(value)


def text(value, what: str) -> str:
    if not isinstance(value, str):
        raise BadReport(f"{what} is not text")
    return value[:MAX_TEXT]


def _dict(value, what: str) -> dict:
    if not isinstance(value, dict):
        raise BadReport(f"{what} is not an object")
    return value


def heartbeat(value) -> dict:
    """{"time": epoch seconds, "revision": int, ...}."""
    hb = _dict(value, "heartbeat")
    out = {"time": number(hb.get("time"), "heartbeat time", low=1)}
    if hb.get("revision") is not None:
        out["revision"] = number(hb["revision"], "heartbeat revision", integer=True)
    return out


_NUMBER_TYPES = frozenset({int, float})


def _stats(value, what: str) -> dict:
    """Kernel counters and rates ({"conns": 12, "inbps": 800.0, ...}): every value a number.

    Checked as a whole first (types, bounds and finiteness in C: a director page checks 2,284 of these a
    refresh); anything that fails that goes through `number` one by one, which says what is wrong."""
    stats = _dict(value if value is not None else {}, what)
    if len(stats) > 64:
        raise BadReport(f"{what} has {len(stats)} entries")
    values = stats.values()
    try:
        if (
            not stats
            or set(map(type, values)) <= _NUMBER_TYPES
            and min(values) >= 0
            and math.isfinite(sum(values))  # NaN and infinities (and only they) make the sum not finite
            and set(map(type, stats)) == {str}
            and max(map(len, stats)) <= 40
        ):
            return dict(zip(stats, map(float, values), strict=True))
    except OverflowError:  # an int too big for a float: `number` says which
        pass
    return {str(k)[:40]: number(v, f"{what} {str(k)[:40]}") for k, v in stats.items()}


def _health(value) -> dict:
    health = _dict(value if value is not None else {}, "health")
    up = health.get("up")
    if up not in (True, False, None):
        raise BadReport(f"health up is {str(up)[:20]!r}, not true/false/null")
    out = {"up": up, "reason": text(health.get("reason") or "", "health reason")}
    for key in ("latency", "checked"):
        if health.get(key) is not None:
            out[key] = number(health[key], f"health {key}")
    return out


def dest(value) -> dict:
    d = _dict(value, "real server")
    out = {
        "address": text(d.get("address") or "", "address"),
        "port": number(d.get("port") or 0, "port", integer=True),
        "in_kernel": bool(d.get("in_kernel")),
        "stats": _stats(d.get("stats"), "stats"),
        "health": _health(d.get("health")),
    }
    for k in ("active", "inactive", "persistent"):
        out[k] = number(d.get(k) or 0, k, integer=True)
    if d.get("weight") is not None:
        out["weight"] = number(d["weight"], "weight", integer=True)
    return out


def service(value, problems: list[str], where: str) -> dict:
    svc = _dict(value, "service")
    out = {
        "label": text(svc.get("label") or "", "label"),
        "scheduler": text(svc.get("scheduler") or "", "scheduler"),
        "stats": _stats(svc.get("stats"), "service stats"),
        "quorum": bool(svc.get("quorum", True)),
        "dests": {},
    }
    for k in ("healthy", "total"):
        if svc.get(k) is not None:
            out[k] = number(svc[k], k, integer=True)
    for did, d in _dict(svc.get("dests") or {}, "dests").items():
        try:
            out["dests"][str(did)] = dest(d)
        except BadReport as exc:
            problems.append(f"{where} real server {str(did)[:60]}: {exc}")
    return out


def snapshot(value) -> dict:
    """The agent's snapshot with what has the right shape; a bad service or real server is left out and named
    under "problem" (the rest of the director still shows)."""
    snap = _dict(value, "snapshot")
    problems: list[str] = []
    out = {
        "time": number(snap.get("time"), "snapshot time", low=1),
        "services": {},
        "drift": [],
    }
    if snap.get("revision") is not None:
        out["revision"] = number(snap["revision"], "snapshot revision", integer=True)
    if snap.get("director") is not None:
        out["director"] = text(snap["director"], "director")
    drift = snap.get("drift") or []
    if not isinstance(drift, list):
        problems.append("drift is not a list")
    else:
        # a drift entry is shown as it is: plain JSON with finite numbers (an agent's `Infinity` must not reach
        # a template or the API's JSON), anything else as bounded text
        out["drift"] = [_plain(d) if isinstance(d, dict) else str(d)[:MAX_TEXT] for d in drift[:MAX_DRIFT]]
    for sid, svc in _dict(snap.get("services") or {}, "services").items():
        try:
            out["services"][str(sid)] = service(svc, problems, f"service {str(sid)[:60]}")
        except BadReport as exc:
            problems.append(f"service {str(sid)[:60]}: {exc}")
    for key, value in snap.items():  # other parts the agent adds (failover state "ha", ...): plain JSON
        if key not in out and key not in (PROBLEM, "revision", "director") and isinstance(value, dict):
            out[key] = _plain(value)
    if problems:
        out[PROBLEM] = f"{len(problems)} bad part(s): " + "; ".join(problems[:3])
    return out


def _scalar(v) -> bool:
    return v is None or isinstance(v, bool | int | str) or (isinstance(v, float) and math.isfinite(v))


def _plain(value, depth: int = 3):
    """Objects and lists of scalars, bounded in depth and size (what a template may show as it is)."""
    if isinstance(value, dict) and depth:
        return {str(k)[:40]: _plain(v, depth - 1) for k, v in list(value.items())[:64] if _kept(v, depth)}
    if isinstance(value, list) and depth:
        return [_plain(v, depth - 1) for v in value[:64] if _kept(v, depth)]
    return value[:MAX_TEXT] if isinstance(value, str) else value


def _kept(v, depth: int) -> bool:
    return _scalar(v) or (depth > 1 and isinstance(v, dict | list))


def sample(value) -> dict:
    s = _dict(value, "sample")
    return {"t": number(s.get("t"), "t"), **{k: number(s.get(k) or 0, k) for k in ("active", "inactive", *RATES)
                                               if k in s or k in ("active", "inactive")}}  # fmt: skip


def stats(meta_raw, fields: dict | None):
    """A director's live stats from its meta record and service records (director/keys.py, format 2), in the
    shape of `snapshot`: {"time", "revision", "drift", "ha", "services": {sid: record}}. None without a meta
    record, {"problem": why} when the meta record is garbage; a garbage service record is left out and
    named under "problem" like any bad part of a snapshot. A meta value without "format" is an older
    agent's whole snapshot and is read as one. Never raises."""
    try:
        meta = loads(meta_raw, "snapshot")
        if meta is None:
            return None
        meta = _dict(meta, "snapshot")
        if meta.get("format") is None or isinstance(meta.get("services"), dict):
            return snapshot(meta)
        if meta.get("format") != 2:
            raise BadReport(f"unknown stats format {str(meta.get('format'))[:20]!r}")
        problems: list[str] = []
        services = {}
        if not isinstance(fields, dict):
            fields = {}
        for sid, raw in fields.items():
            try:
                services[str(sid)] = records.full(loads(raw, f"service {str(sid)[:60]}"))
            except BadReport as exc:
                problems.append(str(exc))
        out = snapshot({k: v for k, v in meta.items() if k not in ("format", "count", "resync", "services")}
                       | {"services": services})  # fmt: skip
    except BadReport as exc:
        return {PROBLEM: str(exc)}
    except RecursionError:
        return {PROBLEM: "snapshot is nested too deep"}
    if problems:
        before = out.get(PROBLEM)
        out[PROBLEM] = "; ".join(
            p for p in (before, f"{len(problems)} unreadable record(s): {problems[0]}") if p
        )
    return out


def history_times(meta_raw) -> tuple[float, float | None]:
    """(time of the director's last round, its history epoch or None) from its meta record; (0, None) for
    anything unreadable - a sparkline then shows only the points it has."""
    try:
        meta = _dict(loads(meta_raw, "snapshot") or {}, "snapshot")
        until = number(meta.get("time") or 0, "time")
        epoch = meta.get("epoch")
        return until, (number(epoch, "epoch") if epoch is not None else None)
    except (BadReport, RecursionError):
        return 0.0, None


def read(raw, what: str, check):
    """`check(loads(raw))`, or {"problem": reason} for garbage; None when there is nothing."""
    try:
        value = loads(raw, what)
        return None if value is None else check(value)
    except BadReport as exc:
        return {PROBLEM: str(exc)}
