"""The health-check engine: every real server of every virtual service checked on its own interval.

Thread model. The engine owns one asyncio event loop in one background thread (`start()`/`stop()`), so it
can live inside a Celery worker process (a bootstep) whose own threads never block it. `update()`,
`results()`, `result()` and `services()` may be called from any thread. Callbacks run *on the engine
thread*: keep them short (hand work to a queue) or they delay checks.

Scheduling. One asyncio task per (service, real). Each starts after a random delay within its interval
(so 10,000 checks configured at once do not fire at once) and then runs at a fixed rate: a check that
ends at t is followed by the next at start + k * interval, so detection takes at most one interval plus
the check itself. A round is up to `retries` attempts `delay_before_retry` apart (see `state.RealHealth`).

Reconfiguration. `update(services)` diffs against what runs: a real whose check-relevant settings are
unchanged keeps its task, its state and its counters; a real whose check changed restarts with its
current up/down state carried over (no spurious transition); a removed real is cancelled and forgotten.

The engine only reports. Weight 0 vs removal (quiescent), the fallback server and events are the agent's
decisions, taken in `on_change(service_key, real_key, up, result)`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

from director.desired import CheckSpec, ServiceSpec

from .base import Checker, CheckResult, Target, check_port_for
from .registry import build_checker
from .state import Quorum, RealHealth

log = logging.getLogger(__name__)

ServiceKey = tuple
RealKey = tuple[str, int]
OnChange = Callable[[ServiceKey, RealKey, bool, CheckResult], None]
OnQuorum = Callable[[ServiceKey, bool, int], None]


@dataclass(frozen=True, slots=True)
class RealStatus:
    """Latest known health of one real server of one service, for stats and the dashboard.

    up: the debounced state (None until the first round ends); ok/latency/reason: the last attempt;
    checked_at: wall-clock time of the last attempt; since: wall-clock time of the last transition.
    """

    service: ServiceKey
    real: RealKey
    up: bool | None
    ok: bool | None
    latency: float
    reason: str
    checked_at: float
    since: float
    checks: int
    failures: int

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ServiceHealth:
    """How many reals of a service are up and whether that meets its quorum (keepalived semantics)."""

    service: ServiceKey
    healthy: int
    total: int
    quorum: int
    quorum_met: bool | None


class _Job:
    """One (service, real) pair: its checker, target, state machine and running task."""

    __slots__ = (
        "service",
        "real",
        "signature",
        "spec",
        "checker",
        "target",
        "health",
        "task",
        "checks",
        "failures",
        "since",
    )

    def __init__(self, service, real, signature, spec, checker, target, health):
        self.service, self.real, self.signature = service, real, signature
        self.spec: CheckSpec = spec
        self.checker: Checker = checker
        self.target: Target = target
        self.health: RealHealth = health
        self.task: asyncio.Task | None = None
        self.checks = 0
        self.failures = 0
        self.since = 0.0


class _Service:
    """Counts for one service; `unknown` reals (no round finished yet) hold back the first quorum verdict."""

    __slots__ = ("total", "healthy", "unknown", "quorum")

    def __init__(self, quorum: Quorum):
        self.total = 0
        self.healthy = 0
        self.unknown = 0
        self.quorum = quorum


class HealthEngine:
    """Runs all health checks of a director. See the module docstring for the thread model."""

    def __init__(
        self,
        on_change: OnChange | None = None,
        on_quorum: OnQuorum | None = None,
        *,
        cafile: str | None = None,
        jitter: bool = True,
        checker_factory: Callable[[CheckSpec, str], Checker] | None = None,
    ):
        self.on_change = on_change
        self.on_quorum = on_quorum
        self.jitter = jitter
        self._factory = checker_factory or (
            lambda spec, protocol: build_checker(spec, protocol, cafile=cafile)
        )
        self._jobs: dict[tuple[ServiceKey, RealKey], _Job] = {}
        self._services: dict[ServiceKey, _Service] = {}
        self._checkers: dict[tuple[CheckSpec, str], Checker] = {}
        self._status: dict[tuple[ServiceKey, RealKey], RealStatus] = {}
        self._lock = threading.Lock()
        self._pending: list[ServiceSpec] | None = None
        self._applied: list[ServiceSpec] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()

    # ---- lifecycle (any thread) -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the engine thread and its event loop; returns once the loop runs and pending config is applied."""
        if self._thread is not None:
            return
        self._ready.clear()
        self._thread = threading.Thread(target=self._thread_main, name="health-engine", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("health engine did not start")

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel every check (terminating external programs) and join the engine thread."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        loop.call_soon_threadsafe(self._stopping.set)
        thread.join(timeout)
        self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def update(self, services: Iterable[ServiceSpec], timeout: float = 10.0) -> None:
        """Replace the set of services to check. Blocks (up to `timeout`) until applied if running."""
        services = list(services)
        loop = self._loop
        if loop is None or not self.running:
            self._pending = services
            return
        if threading.current_thread() is self._thread:
            self._apply(services)
            return
        done = threading.Event()

        def apply():
            try:
                self._apply(services)
            finally:
                done.set()

        loop.call_soon_threadsafe(apply)
        if not done.wait(timeout):
            raise TimeoutError("health engine did not apply the update in time")

    # ---- read side (any thread) ---------------------------------------------------------------------------

    def results(self) -> dict[tuple[ServiceKey, RealKey], RealStatus]:
        """Snapshot of the latest status of every checked real, keyed by (service key, real key)."""
        with self._lock:
            return dict(self._status)

    def result(self, service: ServiceKey, real: RealKey) -> RealStatus | None:
        with self._lock:
            return self._status.get((service, real))

    def services(self) -> dict[ServiceKey, ServiceHealth]:
        """Healthy count and quorum verdict of every service."""
        with self._lock:
            return {
                key: ServiceHealth(key, s.healthy, s.total, s.quorum.quorum, s.quorum.met)
                for key, s in self._services.items()
            }

    # ---- engine thread --------------------------------------------------------------------------------------

    def _thread_main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()
                self._loop = None

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        if self._pending is not None:
            self._apply(self._pending)
            self._pending = None
        self._ready.set()
        await self._stopping.wait()
        jobs = list(self._jobs.values())
        for job in jobs:
            if job.task:
                job.task.cancel()
        await asyncio.gather(*(j.task for j in jobs if j.task), return_exceptions=True)
        # A later start() begins afresh from the last configuration (states unknown again).
        self._pending = self._applied
        self._jobs.clear()
        self._checkers.clear()
        with self._lock:
            self._services.clear()
            self._status.clear()

    def _checker(self, spec: CheckSpec, protocol: str, cache: dict) -> Checker:
        key = (spec, protocol)
        checker = cache.get(key) or self._checkers.get(key)
        if checker is None:
            try:
                checker = self._factory(spec, protocol)
            except Exception as exc:  # noqa: BLE001 - a bad spec must not stop the other checks
                from .static import StaticChecker

                checker = StaticChecker(spec, False, f"bad check settings: {exc}"[:100])
        cache[key] = checker
        return checker

    def _apply(self, services: list[ServiceSpec]) -> None:
        """Diff the running jobs against `services` (engine thread only)."""
        self._applied = services
        checkers: dict[tuple[CheckSpec, str], Checker] = {}
        wanted: dict[tuple[ServiceKey, RealKey], tuple] = {}
        quorums: dict[ServiceKey, tuple[int, int]] = {}
        for svc in services:
            skey = svc.key
            quorums[skey] = (svc.check.quorum, svc.check.hysteresis)
            v_address = str(svc.fwmark) if svc.protocol == "fwmark" else svc.address
            for real in svc.reals:
                target = Target(
                    real.key[0],
                    real.port,
                    check_port_for(svc.check, real.port, real.check_port),
                    svc.protocol,
                    v_address,
                    svc.port,
                )
                wanted[(skey, real.key)] = (svc.check, svc.protocol, target)

        for key in [k for k in self._jobs if k not in wanted]:
            self._drop(self._jobs.pop(key))

        for skey, (quorum, hysteresis) in quorums.items():
            service = self._services.get(skey)
            if service is None or (service.quorum.quorum, service.quorum.hysteresis) != (quorum, hysteresis):
                new = _Service(Quorum(quorum, hysteresis))
                if service is not None:
                    new.healthy, new.total, new.unknown = service.healthy, service.total, service.unknown
                with self._lock:
                    self._services[skey] = new
        for skey in [k for k in self._services if k not in quorums]:
            with self._lock:
                del self._services[skey]

        for key, (spec, protocol, target) in wanted.items():
            signature = (spec, protocol, target)
            job = self._jobs.get(key)
            if job is not None and job.signature == signature:
                continue
            up = None
            if job is not None:
                up = job.health.up
                self._drop(job, keep_status=True)
            checker = self._checker(spec, protocol, checkers)
            health = RealHealth(spec.failurecount, spec.rise, spec.retries, up=up)
            new = _Job(key[0], key[1], signature, spec, checker, target, health)
            if job is not None:
                new.checks, new.failures, new.since = job.checks, job.failures, job.since
            self._jobs[key] = new
            service = self._services[key[0]]
            service.total += 1
            if up:
                service.healthy += 1
            elif up is None:
                service.unknown += 1
            new.task = asyncio.get_running_loop().create_task(self._run(new), name=f"health {key}")
        for skey, service in self._services.items():  # removals can change a verdict without any check
            if service.quorum.met is not None or (service.unknown == 0 and service.total == 0):
                flip = service.quorum.update(service.healthy)
                if flip is not None and self.on_quorum is not None:
                    self._call(self.on_quorum, skey, flip, service.healthy)
        # Keep only checkers still in use, so e.g. a combined checker's counters survive an update.
        self._checkers = {(j.spec, j.target.protocol): j.checker for j in self._jobs.values()}

    def _drop(self, job: _Job, keep_status: bool = False) -> None:
        if job.task is not None:
            job.task.cancel()
        forget = getattr(job.checker, "forget", None)
        if forget is not None:
            forget(job.target)
        service = self._services.get(job.service)
        if service is not None:
            service.total -= 1
            if job.health.up:
                service.healthy -= 1
            elif job.health.up is None:
                service.unknown -= 1
        if not keep_status:
            with self._lock:
                self._status.pop((job.service, job.real), None)

    async def _run(self, job: _Job) -> None:
        loop = asyncio.get_running_loop()
        interval = max(0.05, float(job.spec.checkinterval))
        delay = max(0.0, float(job.spec.delay_before_retry))
        if self.jitter:
            await asyncio.sleep(random.uniform(0, interval))
        next_at = loop.time()
        while True:
            while True:
                before = job.health.up
                result = await self._attempt(job)
                step = job.health.observe(result.ok)
                if not step.retry:
                    break
                self._record(job, result, before)
                await asyncio.sleep(delay)
            self._record(job, result, before)
            next_at += interval
            now = loop.time()
            if next_at < now:  # overran (slow check or overloaded loop): skip missed slots, do not burst
                next_at = now + interval * random.random() * 0.1
            await asyncio.sleep(next_at - now)

    @staticmethod
    async def _attempt(job: _Job) -> CheckResult:
        """One check; a checker that raises (a bug, or settings it cannot encode) fails the check with the
        reason instead of ending the task - a dead task would leave a dead backend at full weight."""
        try:
            return await job.checker.check(job.target)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - counted as a failure, so failurecount/quiescent apply
            log.exception("health check %s of %s raised", job.checker.name, job.target.address)
            return CheckResult(False, 0.0, f"check error: {exc.__class__.__name__}: {exc}"[:120])

    def _record(self, job: _Job, result: CheckResult, before: bool | None) -> None:
        """Store the attempt's status; on a state change adjust counts and fire the callbacks."""
        now = time.time()
        job.checks += 1
        if not result.ok:
            job.failures += 1
        up = job.health.up
        changed = up != before
        service = self._services.get(job.service)
        if changed:
            job.since = now
            if service is not None:
                service.healthy += int(bool(up)) - int(bool(before))
                if before is None:
                    service.unknown -= 1
        status = RealStatus(
            job.service,
            job.real,
            up,
            result.ok,
            result.latency,
            result.reason,
            now,
            job.since,
            job.checks,
            job.failures,
        )
        with self._lock:
            self._status[(job.service, job.real)] = status
        if not changed:
            return
        quorum_flip = None
        if service is not None and service.unknown == 0:
            quorum_flip = service.quorum.update(service.healthy)
        if self.on_change is not None:
            self._call(self.on_change, job.service, job.real, bool(up), result)
        if quorum_flip is not None and self.on_quorum is not None:
            self._call(self.on_quorum, job.service, quorum_flip, service.healthy)

    @staticmethod
    def _call(callback, *args) -> None:
        """Callbacks belong to the agent; their bugs must not kill a check task."""
        try:
            callback(*args)
        except Exception:
            log.exception("health engine callback %r failed", callback)
