"""The contract between the agent and the central side: Redis key names, task names, queues and identities.

Kept in the director package because the agent must not import Django; on the central side only the gateway
(clusters/agents.py) uses the key, stream and task names, while the identities (`service_key_for`,
`dest_key_for`) are used wherever a database row must be matched with what an agent reported. Every name
is defined here once, so writer and reader cannot drift apart.
"""

from __future__ import annotations

import functools
import ipaddress

EVENTS_MAXLEN = 100_000
EVENTS_CURSORS_KEY = "umw:events:cursors"  # hash: director -> the central side's read position in its stream
HISTORY_POINTS = 1800  # one hour at one sample every 2 s
HISTORY_STEP = 2.0  # seconds between two points of a sparkline (the agent's report interval)
HISTORY_TTL = 7200
STATS_TTL = 30  # seconds a stats snapshot stays readable after the agent stops writing
STATS_FORMAT = 2  # the "format" of the meta record below: per-service records, not one snapshot
HEARTBEAT_TTL = 300


# Celery task names the agent's worker registers (director/worker.py) and the central side sends by name.
APPLY_TASK = "director.apply"
CONNTABLE_TASK = "director.conntable"
SNAPSHOT_TASK = "director.snapshot"
PING_TASK = "director.ping"


def queue(director: str) -> str:
    """The Celery queue a director's agent consumes: one per director, so work for one never waits on another."""
    return f"director.{director}"


def events_stream(director: str) -> str:
    """A director's own event stream: XADD by its agent only (its Redis ACL), read by the central ingest."""
    return f"umw:events:{director}"


def heartbeat_key(director: str) -> str:
    return f"umw:hb:{director}"


# -- live stats: what the agent's reporter (director/report.py) writes every round --------------------------
# Written in proportion to change (director/records.py): one record per virtual service, re-sent only when its
# text changed; everything is rewritten on the agent's start, after a Redis error, and every RESYNC seconds.
# Each round is one MULTI/EXEC, so a reader never sees half a round.
#
#   stats_key        string, JSON: {"format": 2, "time": the round's epoch seconds, "revision", "director",
#                    "drift": [...], "ha": {...} | null, "health_load": {...} | null (HealthEngine.load()),
#                    "count": number of services, "resync": epoch of the last full rewrite, "epoch": the history
#                    epoch (see history_key)}. "time" is the age of every record below: a record that did not change was
#                    true at that time too. (A value without "format" is an older agent's whole snapshot:
#                    {"time", ..., "services": {...}}; the reader takes both.)  TTL STATS_TTL.
#   service_stats_key  hash, service id -> JSON record: {"label", "scheduler", "stats": {counter: n},
#                    "healthy", "total", "quorum", "dests": {dest id: {"address", "port", "in_kernel",
#                    "weight", "active", "inactive", "persistent", "stats": {...}, "health": {"up", "reason",
#                    "latency", "checked"}}}}; zero counters, empty text and nulls are left out (read as 0 / "" /
#                    null). Health latency and check time are refreshed with the record: when anything of the
#                    service changes, and at least every HEALTH_REFRESH seconds.  TTL STATS_TTL.
#   summary_key      hash, service id -> JSON {"label", "healthy", "total", "quorum", "in_kernel" (true when
#                    the kernel has the service: its missing counters are 0), "stats": {the service's
#                    counters and rates, and "active", "inactive", "persistent" summed over its real servers;
#                    zeros left out}}: a service without its real servers, for pages and /metrics that show
#                    every service of a director.  TTL STATS_TTL.
#   history_key      list per real server of JSON samples {"t", "active", "inactive", "cps", "inbps", "outbps"},
#                    RPUSHed when they differ from the last one pushed (and at every full rewrite), trimmed to
#                    HISTORY_POINTS; a reader fills the gaps with the value that held (records.expand).
RESYNC = 600.0
HEALTH_REFRESH = 30.0


def stats_key(director: str) -> str:
    return f"umw:stats:{director}"


def service_stats_key(director: str) -> str:
    return f"umw:svcstats:{director}"


def summary_key(director: str) -> str:
    return f"umw:svcsum:{director}"


def history_key(director: str, dest_id: str) -> str:
    return f"umw:hist:{director}:{dest_id}"


def decommissioned_key(director: str) -> str:
    """Central only: when a director was deleted (its Redis user is removed once its agent has drained)."""
    return f"umw:decommissioned:{director}"


def reply_key(director: str, task_id: str) -> str:
    """Where a director's agent puts its answer to a query task (RPUSH, short TTL); the asker BLPOPs it.

    Not Celery's result backend: storing a result makes the worker GET every `celery-task-meta-*` key,
    which would let one director read the answers meant for the others (see director/acl.py)."""
    return f"umw:reply:{director}:{task_id}"


REPLY_TTL = 60


@functools.lru_cache(maxsize=1 << 17)
def canonical_address(address: str) -> str:
    """An address as ipaddress writes it; cached, since ids and keys are built per real server and per
    flip (parsing dominated rebuilding a 37k-real table); ValueError for a non-address, as ipaddress."""
    return str(ipaddress.ip_address(address))


def _host(address: str) -> str:
    return canonical_address(address) if address else ""


def service_id(protocol: str, address: str = "", port: int = 0, fwmark: int = 0, family: int = 4) -> str:
    """Stable text id of a virtual service: tcp|172.16.10.52|80 or fwmark|4|1."""
    if protocol == "fwmark":
        return f"fwmark|{family}|{int(fwmark)}"
    return f"{protocol}|{_host(address)}|{int(port)}"


def service_label(protocol: str, address: str = "", port: int = 0, fwmark: int = 0, family: int = 4) -> str:
    """The one human name of a virtual service, as `ipvsadm -L` prints it: TCP 172.16.10.52:80,
    TCP [2001:db8::1]:80, FWM 1, FWM 1 IPv6 (pages, events, exports and import messages all use it)."""
    if protocol == "fwmark":
        return f"FWM {fwmark}" + (" IPv6" if family == 6 else "")
    host = f"[{address}]" if family == 6 or ":" in (address or "") else address
    return f"{protocol.upper()} {host}:{port}"


def dest_id(svc_id: str, address: str, port: int) -> str:
    """Stable text id of a real server inside a service."""
    return f"{svc_id}|{_host(address)}|{int(port)}"


def service_key_for(svc) -> str:
    """`service_id` of anything shaped like a virtual service: a desired ServiceSpec, a kernel Service, or a
    dashboard VirtualService row (protocol, address, port, fwmark, family; empty address/port for fwmark)."""
    return service_id(svc.protocol, svc.address or "", svc.port or 0, svc.fwmark or 0, svc.family)


def dest_key_for(real, svc=None) -> str:
    """`dest_id` of a real server (address, port) inside `svc`, by default its own `.service` (a RealServer row)."""
    return dest_id(service_key_for(real.service if svc is None else svc), real.address, real.port)
