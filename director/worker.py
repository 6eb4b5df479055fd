"""The director's Celery app: a worker on queue ``director.<name>``, concurrency 1, no Django.

The `Agent` (director/agent.py) lives inside the worker process as a bootstep: it starts before the consumer
and keeps running health checks, reporting and acting on them whatever the broker does, so a Redis or
central outage never stops the data plane. Tasks are thin wrappers that hand JSON to the agent.
"""

from __future__ import annotations

import os

from celery import Celery, bootsteps
from celery.signals import worker_ready, worker_shutting_down

from . import keys, transport
from .agent import Agent

REDIS_URL = os.environ.get("UMW_REDIS_URL", "redis://127.0.0.1:6379/0")

# fixups=[]: Celery's Django fixup imports Django whenever DJANGO_SETTINGS_MODULE is in the environment;
# the agent must never load the central side's code (and a real director has no Django at all).
# No result backend: answers to queries go to the director's own reply keys (Agent.reply), so the agent's
# Redis user never needs to read Celery's shared `celery-task-meta-*` keys (director/acl.py).
app = Celery("ultramonkey_director", broker=transport.celery_url(REDIS_URL), backend=None, fixups=[])
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    worker_prefetch_multiplier=1,
    task_acks_late=False,
    broker_connection_retry_on_startup=True,
    broker_connection_max_retries=None,  # keep trying forever: the data plane runs without the broker
    # no ack emulation: kombu would keep every director's in-flight messages in one global `unacked` hash,
    # which a director's Redis user (director/acl.py) must not see; acks are early anyway (acks_late=False)
    broker_transport_options={"socket_timeout": 5, "socket_connect_timeout": 3, "ack_emulation": False},
    redis_socket_timeout=5,
    redis_socket_connect_timeout=3,
    worker_hijack_root_logger=False,
    worker_send_task_events=False,
    # no remote control: its pidbox fan-out would need pub/sub and keys shared by every worker
    worker_enable_remote_control=False,
    broker_use_ssl=transport.celery_ssl(**transport.env_tls()),
)

_agent: Agent | None = None


def agent() -> Agent:
    if _agent is None:
        raise RuntimeError("the director agent is not running in this process")
    return _agent


class AgentStep(bootsteps.StartStopStep):
    """Starts the agent (restore last state, health checks, reporter) with the worker, stops it after."""

    requires = {"celery.worker.components:Pool"}

    def start(self, worker):
        global _agent
        _agent = Agent.from_env()
        _agent.start()

    def stop(self, worker):
        if _agent is not None:
            _agent.stop()


app.steps["worker"].add(AgentStep)


@worker_shutting_down.connect
def _leave_pair_first(sig=None, how=None, exitcode=None, **kwargs):
    """A stopping agent hands its VIPs to the peer first: Celery's own warm shutdown takes seconds, and
    clients of a MASTER would wait for them (AgentStep.stop then finds the pair already left)."""
    if _agent is not None:
        _agent.pair.stop()


@worker_ready.connect
def _mark_ready(sender=None, **kwargs):
    """pid + ready time in the state directory: for supervisors, the lab, and humans."""
    import time

    if _agent is not None:
        with open(os.path.join(_agent.state_dir, "agent.pid"), "w") as f:
            f.write(str(os.getpid()))
        with open(os.path.join(_agent.state_dir, "agent.ready"), "w") as f:
            f.write(f"{time.time():.3f}")


@app.task(name=keys.APPLY_TASK)
def apply(message: dict, job_id: int | None = None) -> None:
    """Make the kernel match a signed desired state (the whole state, not a delta); the outcome is an event.

    `job_id` outside the signed envelope is ignored: the job a result is reported for is the signed one."""
    agent().receive(message)


def _answer(task_id: str, ask) -> None:
    """Run a query and put its answer (or why there is none) on this director's reply key."""
    try:
        answer = ask()
    except Exception as exc:  # the asker shows the reason instead of waiting for a timeout
        answer = {"error": f"{exc.__class__.__name__}: {exc}"[:300]}
    agent().reply(task_id, answer)


@app.task(name=keys.CONNTABLE_TASK, bind=True)
def conntable(
    self,
    service: str | None = None,
    client: str = "",
    real: str = "",
    state: str = "",
    port: int | None = None,
    limit: int = 100,
) -> None:
    """The live connection table like `ipvsadm -Lnc`: filtered, ordered, counted, capped (conntable.query)."""
    _answer(
        self.request.id,
        lambda: agent().conntable(
            service=service, client=client, real=real, state=state, port=port, limit=limit
        ),
    )


@app.task(name=keys.SNAPSHOT_TASK, bind=True)
def snapshot(self) -> None:
    """The current kernel table with stats and health, as the reporter publishes it."""
    _answer(self.request.id, agent().snapshot)


@app.task(name=keys.PING_TASK, bind=True)
def ping(self) -> None:
    _answer(self.request.id, lambda: {"director": agent().name, "revision": agent().revision})
