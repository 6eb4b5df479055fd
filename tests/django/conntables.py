"""Connection tables for the page tests, in the kernel's /proc/net/ip_vs_conn format, answered by the agent's
own code (director.conntable): the pages are tested against exactly what an agent sends."""

from __future__ import annotations

import ipaddress
from contextlib import contextmanager

from director import conntable, keys

HEADER = "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData"


def line(
    client: str, cport: int, vip: str, vport: int, real: str, rport: int, state: str, expire: int
) -> str:
    """One connection as ip_vs_conn_seq_show prints an IPv4 one."""

    def hexaddr(address: str) -> str:
        return f"{int(ipaddress.IPv4Address(address)):08X}"

    return (
        f"TCP {hexaddr(client)} {cport:04X} {hexaddr(vip)} {vport:04X} {hexaddr(real)} {rport:04X} "
        f"{state:<11s} {expire:7d}"
    )


def proc_text(lines: list[str]) -> str:
    return "\n".join([HEADER, *lines]) + "\n"


def answer(lines: list[str], limit: int = conntable.DEFAULT_LIMIT, **filters) -> dict:
    """What the agent answers for these connections and filters (director.conntable.summarize)."""
    conns = conntable.parse(proc_text(lines))
    return conntable.summarize(conns, conntable.Filters.parse(**filters), limit)


ASKED: list[dict] = []  # what the stand-in agent was asked, in order
# its /proc file and its reply channel now (the task is registered once per process, so not a closure)
_PROC: dict = {}


class _Replier:
    """What the agent's own `Agent.reply` needs: a name and a Redis connection (the director's user)."""

    def __init__(self, name: str, url: str):
        import redis

        from director.agent import Agent

        self.name = name
        self.redis = redis.Redis.from_url(url, decode_responses=True)
        self.reply = Agent.reply.__get__(self)


@contextmanager
def stand_in_agent(redis_server, director: str, queue: str, proc_path: str, other_threads: bool = False):
    """A real Celery worker (in a thread) on the director's queue, logged in as the director's own Redis ACL
    user and configured like the agent's (no result backend, no remote control, no ack emulation), answering
    the agent's conntable task with the agent's own query code over `proc_path` (a file in the kernel's
    format the test may rewrite) on the director's reply key. Nothing it does may be refused by Redis."""
    import redis
    from celery import Celery
    from celery.contrib.testing.worker import start_worker

    from director import acl
    from ultramonkey_web.celery import app as central_app

    central = redis.Redis.from_url(redis_server.url("central"), decode_responses=True)
    central.execute_command("ACL", "LOG", "RESET")
    password = acl.new_password()
    acl.set_director_user(central, director, acl.password_hash(password))
    url = redis_server.url(acl.username(director), password)
    _PROC["replier"] = _Replier(director, url)
    _PROC["path"] = proc_path
    # No Django fix-up: a real agent has no Django, and the fix-up would close the test's DB connection.
    app = Celery("stand_in_director", broker=url, backend=None, set_as_current=False, fixups=[])
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        worker_enable_remote_control=False,
        broker_transport_options={"ack_emulation": False},
    )

    @app.task(name=keys.CONNTABLE_TASK, bind=True)
    def conntable_task(
        self, service=None, client="", real="", state="", port=None, limit=conntable.DEFAULT_LIMIT
    ):
        ASKED.append(
            {"service": service, "client": client, "real": real, "state": state, "port": port, "limit": limit}
        )
        answer = conntable.query(service, client, real, state, port, limit, path=_PROC["path"])
        _PROC["replier"].reply(self.request.id, answer)

    try:
        with start_worker(app, queues=[queue], perform_ping_check=False, shutdown_timeout=5):
            # start_worker made the stand-in the current and default app; pages must send as the central
            # side, whose Redis user may queue work for the director - in a live server's thread too (the
            # default app; not otherwise: it would bind the central side's shared tasks to the stand-in)
            central_app.set_current()
            if other_threads:
                central_app.set_default()
            yield ASKED
        denials = central.execute_command("ACL", "LOG")
        assert denials == [], repr(denials)  # nothing the stand-in agent did was refused
    finally:
        ASKED.clear()
        central.close()
