"""Who may touch what in Redis: the ACL of a director's own Redis user, and of the central side's.

One compromised director must not become root on every other director, nor make the dashboard lie about
the others. So each agent logs in as its own Redis user, ``director.<name>``, whose ACL allows exactly what
the agent's Celery worker and reporter do, measured with ``MONITOR`` and ``ACL LOG`` on a real worker:

* its queue ``director.<name>`` (and kombu's priority lists ``director.<name>\\x06\\x16<N>``): BRPOP/LLEN;
* kombu's binding sets for that queue (SADD when the worker declares it; they only route the central
  side's messages *to this director*, so adding to them can harm nobody else);
* its own event stream, heartbeat, stats and history keys: write only (XADD, SET, HSET/HDEL/DEL, RPUSH/LTRIM/EXPIRE);
* its replies to the central side's queries ``umw:reply:<name>:<task id>``: write only. Not Celery's
  result backend, which GETs ``celery-task-meta-*`` before every store and so would need read access to
  every result of every director.

Nothing else: no KEYS/SCAN, no other director's queue or stream, no central keys, no pub/sub subscriptions,
no admin commands. The worker runs without remote control (pidbox fan-out) and without kombu's ack
emulation (the global ``unacked`` hash would hold every director's messages), see director/worker.py.

The central side's user may do everything except the dangerous commands, plus ``ACL SETUSER/DELUSER`` to
manage the directors' users (it is the one signing their desired state anyway).
"""

from __future__ import annotations

import hashlib
import re
import secrets

from . import keys

NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,50}$")  # Director.name is a slug: no ':' or '.' to escape a prefix
PRIORITY_SEP = "\x06\x16"  # kombu's separator between a queue name and its priority

# Commands a director's connection needs besides its data: connect, authenticate, name itself, pipeline.
DIRECTOR_COMMANDS = (
    "+auth",
    "+hello",
    "+ping",
    "+select",
    "+client|setname",
    "+client|id",
    "+multi",
    "+exec",
    "+discard",
    "+brpop",
    "+llen",
    "+sadd",
    "+xadd",
    "+set",
    "+rpush",
    "+ltrim",
    "+expire",
    "+hset",  # per-service stats records (keys.service_stats_key, summary_key)
    "+hdel",
    "+del",  # a full rewrite of those hashes
)


def username(director: str) -> str:
    """The Redis user of a director's agent (the same words as its queue)."""
    check_name(director)
    return f"director.{director}"


def check_name(director: str) -> str:
    if not isinstance(director, str) or not NAME_RE.match(director):
        raise ValueError(f"invalid director name {director!r}: letters, digits, '_' and '-' only")
    return director


def new_password() -> str:
    """256 bits from the OS, URL-safe (it goes into redis:// URLs)."""
    return secrets.token_urlsafe(32)


def password_hash(password: str) -> str:
    """What Redis itself stores for a password (SHA-256, hex): the central side keeps only this."""
    return hashlib.sha256(password.encode()).hexdigest()


def director_rules(director: str) -> list[bytes]:
    """ACL SETUSER arguments (after the user name, before the password) for `director`'s agent.

    Bytes, because kombu's priority-queue names contain control characters that a text config cannot
    carry; pass them with ``execute_command("ACL", "SETUSER", name, *rules, b"#" + hash)``.
    """
    check_name(director)
    queue = f"director.{director}"
    rw = [queue, queue + PRIORITY_SEP + "*"]
    write_only = [
        f"_kombu.binding.{queue}",
        f"_kombu.binding_permanent.{queue}",
        keys.events_stream(director),
        keys.heartbeat_key(director),
        keys.stats_key(director),
        keys.service_stats_key(director),
        keys.summary_key(director),
        keys.history_key(director, "*"),
        keys.reply_key(director, "*"),
    ]
    rules = ["reset", "on", "-@all", *DIRECTOR_COMMANDS]  # reset: no keys, no channels, no password
    rules += [f"~{k}" for k in rw]
    rules += [f"%W~{k}" for k in write_only]
    return [r.encode() for r in rules]


def set_director_user(client, director: str, password_sha256: str) -> None:
    """Create or reset `director`'s Redis user with its ACL and the password given by its SHA-256."""
    if not re.fullmatch(r"[0-9a-f]{64}", password_sha256 or ""):
        raise ValueError("password hash must be 64 hex digits (SHA-256)")
    client.execute_command(
        "ACL", "SETUSER", username(director), *director_rules(director), "#" + password_sha256
    )


def delete_director_user(client, director: str) -> None:
    client.execute_command("ACL", "DELUSER", username(director))


# The central user, for redis.conf / the command line (see lab/lab.sh): everything except the dangerous
# commands, plus managing the directors' users.
CENTRAL_RULES = (
    "on",
    "~*",
    "&*",
    "+@all",
    "-@dangerous",
    "+acl|setuser",
    "+acl|deluser",
    "+acl|getuser",
    "+acl|users",
    "+acl|log",
    "+acl|whoami",
    "+info",
)
