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
_PROC: dict[str, str] = {}  # its /proc file now (the task is registered once per process, so not a closure)


@contextmanager
def stand_in_agent(redis_url: str, queue: str, proc_path: str):
    """A real Celery worker (in a thread) on the director's queue, answering the agent's conntable task with
    the agent's own query code over `proc_path`, a file in the kernel's format that the test may rewrite."""
    from celery import Celery
    from celery.contrib.testing.worker import start_worker

    _PROC["path"] = proc_path
    # No Django fix-up: a real agent has no Django, and the fix-up would close the test's DB connection.
    app = Celery("stand_in_director", broker=redis_url, backend=redis_url, set_as_current=False, fixups=[])
    app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"])

    @app.task(name=keys.CONNTABLE_TASK)
    def conntable_task(service=None, client="", real="", state="", port=None, limit=conntable.DEFAULT_LIMIT):
        ASKED.append(
            {"service": service, "client": client, "real": real, "state": state, "port": port, "limit": limit}
        )
        return conntable.query(service, client, real, state, port, limit, path=_PROC["path"])

    try:
        with start_worker(app, queues=[queue], perform_ping_check=False, shutdown_timeout=5):
            yield ASKED
    finally:
        ASKED.clear()
