"""The health-check engine: every real server of every virtual service checked on its own interval.

Thread model. The engine owns one asyncio event loop in one background thread (`start()`/`stop()`), so it
can live inside a Celery worker process (a bootstep) whose own threads never block it. `update()`,
`results()`, `result()`, `services()` and `load()` may be called from any thread. Callbacks run *on the
engine thread*: keep them short (hand work to a queue) or they delay checks.

Scheduling. No task per real server: one scheduler tick (every TICK seconds) starts the checks that are due,
from one heap. Plain HTTP and TCP connect checks then run as callbacks on the loop's epoll (probe.py); other
checkers run as one short task per attempt. The first check of each real comes after a random delay within
its interval (so 10,000 checks configured at once do not fire at once), then rounds run at a fixed rate
(round k starts at first + k * interval), so detection takes at most one interval plus the check itself. A
round is up to `retries` attempts `delay_before_retry` apart (see `state.RealHealth`).

Overload (like keepalived, which simply runs late when its CPU is short, instead of collapsing). A tick that
comes late means the loop has more work than CPU: the number of checks a tick may start and the number of
checks in flight are cut (AIMD: cut by a fifth on a late tick, grown while ticks are on time), so due
checks wait in the heap instead of piling up as sockets whose replies nobody has the CPU to read. Answers
that come close to their timeout (PRESSURE) shrink the in-flight window too: servers, or this host, starved
by the checks' own load. A check that starts late schedules its next round from its actual start: the
schedule stretches instead of piling up, and recovers as ticks come on time again. `load()` says how far
behind the engine is (the agent ships it in its snapshot). A check never fails because the engine was
late: timeouts count from the connect / the sent request (probe.py), each socket is asked before its
deadline is called (a reply that arrived while the loop was busy is seen), and a timeout that ran while the
loop was starved is *stale*: re-verified with a fresh attempt (up to REVERIFY times a round) instead of
counted.

Reconfiguration. `update(services)` diffs against what runs: a real whose check-relevant settings are
unchanged keeps its schedule, its state and its counters; a real whose check changed restarts with its
current up/down state carried over (no spurious transition); a removed real is cancelled and forgotten.

The engine only reports. Weight 0 vs removal (quiescent), the fallback server and events are the agent's
decisions, taken in `on_change(service_key, real_key, up, result)`.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import random
import resource
import selectors
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace

from director.desired import CheckSpec, ServiceSpec

from .base import Checker, CheckResult, Target, check_port_for
from .probe import LATE, Prober
from .registry import build_checker
from .state import Quorum, RealHealth

log = logging.getLogger(__name__)

ServiceKey = tuple
RealKey = tuple[str, int]
OnChange = Callable[[ServiceKey, RealKey, bool, CheckResult], None]
OnQuorum = Callable[[ServiceKey, bool, int], None]
OnResults = Callable[[int, list], None]

#: The scheduler's period (seconds): checks start at most this late when the loop keeps up.
TICK = 0.02
#: A tick later than this (seconds) cuts the number of checks a tick may start.
SLOW_TICK = 0.1
#: Checks whose replies take this share of their timeout (EWMA) mean the servers or this host are saturated
#: (by the checks among others): the engine keeps fewer in flight until replies are quick again. Half the
#: timeout leaves a reply room to double before anything times out; at 0.2 the engine throttled itself in a
#: guest with CPU to spare (bench/scale_health.py, 5,000 reals: 1,812-2,055 of 2,500 HTTP checks/s, 15-19 %
#: idle); at 0.5 it keeps 2,482-2,494/s there (32-44 % idle) and still 0 false downs with a CPU hog.
PRESSURE = 0.5
#: The fewest checks the overload control keeps in flight.
WINDOW_MIN = 16
#: Stale timeouts (run while the loop was starved) re-verified per round before one counts anyway, so a
#: server that really hangs is still found while the engine stays overloaded.
REVERIFY = 3
#: How long the engine's loop lets socket events gather before serving them (seconds; see _GatheringSelector).
QUANTUM = 0.01
#: The engine reports itself behind when a due check waited longer than this (seconds), or when most recent
#: ticks had to leave due checks waiting.
BEHIND = 1.0


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


@dataclass(frozen=True, slots=True)
class EngineLoad:
    """Whether the engine keeps up with its configuration (the agent's snapshot carries it as `health_load`).

    configured: check rounds per second the configuration asks for (sum of 1/interval); achieved: checks
    started per second over the last seconds (retries and re-verifications included); lag: the longest a due
    check waited to start since the previous `load()` (seconds; the scheduler's tick alone makes it up to
    TICK); loop_late: how late the engine's tick ran lately (decaying maximum); throttled: share of recent
    ticks that left due checks waiting (the engine slowing its own schedule); behind: throttled > 0.5 or
    lag > BEHIND, i.e. the engine lacks CPU (or descriptors) for the configured rate and runs the checks
    less often than configured; in_flight: checks running now; stale_timeouts: timeouts seen while the loop
    was starved, re-verified instead of counted (total).
    """

    configured: float
    achieved: float
    lag: float
    loop_late: float
    throttled: float
    behind: bool
    in_flight: int
    stale_timeouts: int

    def as_dict(self) -> dict:
        return asdict(self)


def reals_in_order(services: Iterable[ServiceSpec]):
    """((service key, real key), service, real) of every real, services in order, reals in order."""
    for svc in services:
        skey = svc.key
        for real in svc.reals:
            yield (skey, real.key), svc, real


def numbering(services: Iterable[ServiceSpec]) -> list[tuple]:
    """The (service key, real key) of an update's reals by their place in it (where a key first appears):
    the engine numbers its jobs so (`_Job.ordinal`) and on_results names reals by it, so a process outside
    (health/process.py) maps the numbers back with this list."""
    return list(dict.fromkeys(key for key, _, _ in reals_in_order(services)))


class _Job(RealHealth):
    """One (service, real) pair: its checker, target, state machine (the RealHealth it is), schedule and
    last result. The job is its own state machine, not a holder of one, because at 5,000 reals every object
    per real shows in the checker process's memory (issue 17: within 1.5x of keepalived's)."""

    __slots__ = (
        "service",
        "real",
        "ordinal",
        "spec",
        "checker",
        "target",
        "interval",
        "delay",
        "due",
        "round_due",
        "round_started",
        "new_round",
        "reverified",
        "running",
        "op",
        "task",
        "dead",
        "engine",
        "checks",
        "failures",
        "since",
        "last",
    )

    def __init__(self, service, real, spec, checker, target, up, engine):
        super().__init__(spec.failurecount, spec.rise, spec.retries, up=up)
        self.service, self.real = service, real
        self.ordinal = 0  # position of this real in the last update (services in order, reals in order)
        self.engine = engine
        self.spec: CheckSpec = spec
        self.checker: Checker = checker
        self.target: Target = target
        self.interval = max(0.05, float(spec.checkinterval))
        self.delay = max(0.0, float(spec.delay_before_retry))
        self.due = self.round_due = self.round_started = 0.0
        self.new_round = True
        self.reverified = 0
        self.running = False
        self.op = None  # probe.Op of a fast-path attempt in flight
        self.task: asyncio.Task | None = None  # task of a slow-path attempt in flight
        self.dead = False
        self.checks = 0
        self.failures = 0
        self.since = 0.0
        self.last: tuple | None = None  # the last attempt's status fields, see HealthEngine._record

    def __call__(self, result: CheckResult) -> None:
        """The completion callback of every attempt: the job itself, so a check allocates no closure."""
        self.engine._finished(self, result)


class _Service:
    """Counts for one service; `unknown` reals (no round finished yet) hold back the first quorum verdict."""

    __slots__ = ("total", "healthy", "unknown", "quorum")

    def __init__(self, quorum: Quorum):
        self.total = 0
        self.healthy = 0
        self.unknown = 0
        self.quorum = quorum


class _GatheringSelector(selectors.EpollSelector):
    """The engine loop's selector: when the loop would wait anyway, it first lets events gather for QUANTUM.

    Why: each turn of an asyncio loop costs a few system calls (epoll_wait, clock reads) whatever it serves,
    and at a few hundred checks per second every connect and every reply would otherwise get a turn of its
    own - on a guest where a system call is expensive (UML: ~60 us) that overhead was more than the checks.
    A health check does not care about 10 ms; with events served in batches the per-turn cost is shared.
    Never delays work that is ready: with a zero timeout (callbacks waiting) it selects at once.
    """

    def select(self, timeout=None):
        if timeout is None or timeout > QUANTUM:
            time.sleep(QUANTUM)
            timeout = None if timeout is None else timeout - QUANTUM
        elif timeout > 0:
            time.sleep(timeout)
            timeout = 0
        return super().select(timeout)


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
        on_results: OnResults | None = None,
        results_every: float = 0.5,
        remember: bool = True,
    ):
        self.on_change = on_change
        self.on_quorum = on_quorum
        # on_results(tag, [(ordinal, last) of the reals checked since]): every `results_every` s from the engine
        # thread, so a process outside (health/process.py) mirrors the results at O(changed) cost; `ordinal`
        # is the real's position in the update tagged `tag` (update(tag=...)), both taken on the engine thread
        self.on_results = on_results
        self._tag = 0  # the tag of the update applied last (on_results names reals by their place in it)
        # remember=False: keep no copy of the last update's specs (a start after stop() then checks nothing
        # until the next update): the checker process, which never restarts its engine, holds a MB less a
        # thousand reals
        self._remember = remember
        self._results_every = float(results_every)
        self._results_at = 0.0
        self._dirty: set | None = set() if on_results is not None else None
        self.jitter = jitter
        self._factory = checker_factory or (
            lambda spec, protocol: build_checker(spec, protocol, cafile=cafile)
        )
        self._jobs: dict[tuple[ServiceKey, RealKey], _Job] = {}
        self._services: dict[ServiceKey, _Service] = {}
        self._checkers: dict[tuple[CheckSpec, str], Checker] = {}
        self._lock = threading.Lock()
        # update(services, known, tag) waiting for the loop to start
        self._pending: tuple[list[ServiceSpec], dict, int] | None = None
        self._applied: list[ServiceSpec] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        # scheduler
        self._heap: list[tuple[float, int, _Job]] = []
        self._seq = itertools.count()
        self._prober: Prober | None = None
        self._tasks: set[asyncio.Task] = set()
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        # descriptors for checks in flight: leave room for the rest of the process (a Celery worker, Redis...)
        self._max_in_flight = max(32, min(50_000, (soft if soft > 0 else 1024) - 128))
        self._in_flight = 0
        self._budget = 1e9  # checks a tick may start (AIMD: cut when ticks run late)
        self._window = float(self._max_in_flight)  # checks in flight at most (AIMD likewise)
        self._window_limited = False
        self._cut_at = 0.0
        self._tick_at = 0.0
        self._late = 0.0
        self._late_at = -1.0
        self._lag = 0.0
        self._throttled = 0.0
        self._started = 0
        self._rate_samples: deque = deque(maxlen=6)
        self._configured = 0.0
        self._stale = 0
        self._timer: asyncio.TimerHandle | None = None
        self._started_last_tick = 0
        self._wall = time.time() - time.monotonic()

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

    def update(
        self, services: Iterable[ServiceSpec], timeout: float = 10.0, known: dict | None = None, tag: int = 0
    ) -> None:
        """Replace the set of services to check. Blocks (up to `timeout`) until applied if running.

        known: {(service key, real key): up} - the state a real not checked yet starts from (a restarted
        checker process carries its predecessor's verdicts over instead of flapping every server); tag: the
        number on_results gives the reals' places in this update (`numbering`)."""
        services, known = list(services), known or {}
        loop = self._loop
        if loop is None or not self.running:
            self._pending = (services, known, tag)
            return
        if threading.current_thread() is self._thread:
            self._apply(services, known, tag)
            return
        done = threading.Event()

        def apply():
            try:
                self._apply(services, known, tag)
            finally:
                done.set()

        loop.call_soon_threadsafe(apply)
        if not done.wait(timeout):
            raise TimeoutError("health engine did not apply the update in time")

    # ---- read side (any thread) ---------------------------------------------------------------------------

    def results(self) -> dict[tuple[ServiceKey, RealKey], RealStatus]:
        """Snapshot of the latest status of every checked real, keyed by (service key, real key).

        Built on demand from each job's last result (one tuple, swapped atomically by the engine thread), so
        a check costs no status object and no lock."""
        jobs = dict(self._jobs)
        out = {}
        for key, job in jobs.items():
            status = self._status_of(job)
            if status is not None:
                out[key] = status
        return out

    def result(self, service: ServiceKey, real: RealKey) -> RealStatus | None:
        job = self._jobs.get((service, real))
        return None if job is None else self._status_of(job)

    @staticmethod
    def _status_of(job: _Job) -> RealStatus | None:
        last = job.last
        if last is None:
            return None
        ok, latency, reason, checked_at, checks, failures, since, up = last
        return RealStatus(job.service, job.real, up, ok, latency, reason, checked_at, since, checks, failures)

    def services(self) -> dict[ServiceKey, ServiceHealth]:
        """Healthy count and quorum verdict of every service."""
        with self._lock:
            return {
                key: ServiceHealth(key, s.healthy, s.total, s.quorum.quorum, s.quorum.met)
                for key, s in self._services.items()
            }

    def load(self) -> EngineLoad:
        """How well the engine keeps up (see EngineLoad); cheap, any thread."""
        samples = list(self._rate_samples)
        achieved = 0.0
        if len(samples) >= 2 and samples[-1][0] > samples[0][0]:
            achieved = (samples[-1][1] - samples[0][1]) / (samples[-1][0] - samples[0][0])
        lag, self._lag = self._lag, 0.0  # worst since the previous call (a lost race only loses a maximum)
        if self._tick_at and self.running:
            # a loop kept from running its tick (another thread holding the interpreter lock) measures no lag
            # of its own: asked from outside, it is behind by as long as its tick is overdue
            lag = max(lag, time.monotonic() - self._tick_at)
        throttled = self._throttled
        return EngineLoad(
            configured=round(self._configured, 1),
            achieved=round(achieved, 1),
            lag=round(lag, 3),
            loop_late=round(self._late, 3),
            throttled=round(throttled, 2),
            behind=throttled > 0.5 or lag > BEHIND,
            in_flight=self._in_flight,
            stale_timeouts=self._stale,
        )

    # ---- engine thread --------------------------------------------------------------------------------------

    def _thread_main(self) -> None:
        loop = asyncio.SelectorEventLoop(_GatheringSelector())
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
        loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._prober = Prober.of(loop)
        self._prober.driven = True  # our tick scans its deadlines
        self._budget, self._late, self._lag, self._late_at, self._throttled = 1e9, 0.0, 0.0, -1.0, 0.0
        self._window, self._window_limited = float(self._max_in_flight), False
        self._rate_samples.clear()
        if self._pending is not None:
            self._apply(*self._pending)
            self._pending = None
        self._tick_at = loop.time() + TICK
        self._timer = loop.call_at(self._tick_at, self._tick)
        self._ready.set()
        try:
            await self._stopping.wait()
        finally:
            self._timer.cancel()
        jobs = list(self._jobs.values())
        for job in jobs:
            job.dead = True
            if job.task is not None:
                job.task.cancel()
        await asyncio.gather(*(j.task for j in jobs if j.task), return_exceptions=True)
        self._prober.close()
        self._prober = None
        # A later start() begins afresh from the last configuration (states unknown again).
        self._pending = None if self._applied is None else (self._applied, {}, self._tag)
        self._jobs.clear()
        self._checkers.clear()
        self._heap.clear()
        self._in_flight = 0
        self._configured = 0.0
        with self._lock:
            self._services.clear()

    def _tick(self) -> None:
        """Start due checks within the budget, judge deadlines, adapt the budget to how late we run."""
        loop = self._loop
        now_loop = loop.time()
        late = now_loop - self._tick_at
        now = self._prober.now = time.monotonic()
        self._wall = time.time() - now  # wall clock = monotonic + this, for the status timestamps
        self._late = max(late, self._late * 0.95)
        if late >= LATE:
            self._late_at = self._prober.late_at = now
        heap = self._heap
        backlog = bool(heap) and heap[0][0] <= now
        congested = self._prober.pressure > PRESSURE
        if late > SLOW_TICK:  # more work than CPU: start fewer checks and keep fewer in flight (AIMD)
            recent = max(self._started_last_tick, self._configured * TICK, 1.0)
            self._budget = max(1.0, min(self._budget, recent) * 0.8)
            self._window = max(WINDOW_MIN, min(self._window, self._in_flight) * 0.8)
        elif congested and now - self._cut_at > 0.25:  # replies come late: fewer in flight
            self._cut_at = now
            self._window = max(WINDOW_MIN, min(self._window, self._in_flight) * 0.8)
        elif backlog:
            if self._budget < 1e9:
                self._budget = min(1e9, self._budget * 1.25 + 2.0)
            if self._window_limited and not congested:
                # regrow by a tenth a tick (a cut window is whole again within ~0.5 s): one late tick from host
                # steal cut it by a fifth, and at 2 % a tick it stayed short for seconds, so checks waited with
                # the CPU a third idle (bench/scale_health.py, 5,000 TCP reals in a slow guest: 2,374-2,393 of
                # 2,500/s; at a tenth 2,479-2,490/s, the overload run still 0 false downs)
                self._window = min(self._max_in_flight, self._window + max(1.0, self._window * 0.1))
        self._prober.expire()  # asks each socket before calling a deadline: a late loop sees every reply
        if heap and heap[0][0] <= now:  # the oldest due check's wait, whether it starts now or not
            self._lag = max(self._lag, now - heap[0][0])
        budget = int(self._budget)
        started = 0
        cap = min(self._max_in_flight, self._window)
        self._prober.in_tick = True
        while heap and heap[0][0] <= now and started < budget and self._in_flight < cap:
            job = heapq.heappop(heap)[2]
            if job.dead:
                continue
            self._launch(job, now)
            started += 1
        self._prober.in_tick = False
        self._window_limited = self._in_flight >= cap
        self._started_last_tick = started
        waiting = bool(heap) and heap[0][0] <= now
        self._throttled = self._throttled * 0.97 + (0.03 if waiting else 0.0)  # over ~1 s of ticks
        if not self._rate_samples or now - self._rate_samples[-1][0] >= 1.0:
            self._rate_samples.append((now, self._started))
        if self._dirty is not None and now - self._results_at >= self._results_every:
            self._results_at = now
            dirty, self._dirty = self._dirty, set()
            self._call(self.on_results, self._tag, [(j.ordinal, j.last) for j in dirty if not j.dead])
        self._tick_at = now_loop + TICK
        self._timer = loop.call_at(self._tick_at, self._tick)

    def _push(self, job: _Job, due: float) -> None:
        job.due = due
        heapq.heappush(self._heap, (due, next(self._seq), job))

    def _launch(self, job: _Job, now: float) -> None:
        if job.new_round:
            job.new_round = False
            job.round_started = now
        job.running = True
        self._in_flight += 1
        self._started += 1
        checker = job.checker
        if checker.fast:
            try:
                job.op = checker.begin(self._prober, job.target, job)
            except Exception as exc:  # noqa: BLE001 - a checker bug is a failed check, not a dead schedule
                self._loop.call_soon(job, self._crashed(job, exc))
            return
        task = self._loop.create_task(self._attempt(job, now))
        job.task = task
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task) -> None:
        if task.cancelled():
            return
        job, result = task.result()
        job.task = None
        job(result)

    async def _attempt(self, job: _Job, started: float) -> tuple[_Job, CheckResult]:
        """One check as a task (checkers without a fast path). A checker that raises (a bug, or settings it
        cannot encode) fails the check with the reason instead of ending the schedule - a dead schedule would
        leave a dead backend at full weight."""
        try:
            result = await job.checker.check(job.target)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - counted as a failure, so failurecount/quiescent apply
            result = self._crashed(job, exc)
        if not result.ok and "timeout" in result.reason and self._late_at >= started:
            result = replace(result, stale=True)  # the loop was starved while this check waited
        return job, result

    @staticmethod
    def _crashed(job: _Job, exc: Exception) -> CheckResult:
        log.error("health check %s of %s raised", job.checker.name, job.target.address, exc_info=exc)
        return CheckResult(False, 0.0, f"check error: {exc.__class__.__name__}: {exc}"[:120])

    def _finished(self, job: _Job, result: CheckResult) -> None:
        """An attempt ended: re-verify a stale timeout, else feed the state machine and schedule what follows."""
        if job.dead:
            return
        job.running = False
        job.op = None
        self._in_flight -= 1
        now = self._prober.now  # this batch's clock (a check ends inside one); close enough to schedule by
        if result.stale and job.reverified < REVERIFY:
            job.reverified += 1
            self._stale += 1
            self._push(job, now + random.uniform(0.05, 0.25))  # once the loop has caught its breath
            return
        before = job.up
        step = job.observe(result.ok)
        self._record(job, result, before)
        if step.retry:
            self._push(job, now + job.delay)
            return
        job.reverified = 0
        job.new_round = True
        interval = job.interval
        # fixed rate while on time; a round that started late (overload) stretches the schedule instead
        nxt = max(job.round_due + interval, job.round_started + interval)
        if nxt < now:  # overran (a slow check): skip the missed slots, do not burst
            nxt = now + interval * random.random() * 0.1
        job.round_due = nxt
        self._push(job, nxt)

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

    def _apply(self, services: list[ServiceSpec], known: dict, tag: int) -> None:
        """Diff the running jobs against `services` (engine thread only); see update() for known and tag."""
        self._applied = services
        checkers: dict[tuple[CheckSpec, str], Checker] = {}
        wanted: dict[tuple[ServiceKey, RealKey], tuple] = {}
        quorums: dict[ServiceKey, tuple[int, int]] = {}
        for svc in services:
            quorums[svc.key] = (svc.check.quorum, svc.check.hysteresis)
        for key, svc, real in reals_in_order(services):  # wanted's order is `numbering`: ordinals below
            v_address = str(svc.fwmark) if svc.protocol == "fwmark" else svc.address
            target = Target(
                key[1][0],
                real.port,
                check_port_for(svc.check, real.port, real.check_port),
                svc.protocol,
                v_address,
                svc.port,
            )
            wanted[key] = (svc.check, svc.protocol, target)

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

        now = time.monotonic()
        for key, (spec, protocol, target) in wanted.items():
            job = self._jobs.get(key)
            if job is not None and job.target == target and job.spec == spec:  # target holds the protocol
                continue
            up = known.get(key)
            if job is not None:
                up = job.up
                self._drop(job)
            checker = self._checker(spec, protocol, checkers)
            new = _Job(key[0], key[1], spec, checker, target, up, self)
            if job is not None:
                new.checks, new.failures, new.since, new.last = job.checks, job.failures, job.since, job.last
            self._jobs[key] = new
            service = self._services[key[0]]
            service.total += 1
            if up:
                service.healthy += 1
            elif up is None:
                service.unknown += 1
            first = now + (random.uniform(0, new.interval) if self.jitter else 0.0)
            new.round_due = first
            self._push(new, first)
        self._configured = sum(1.0 / j.interval for j in self._jobs.values())
        for skey, service in self._services.items():  # removals can change a verdict without any check
            if service.quorum.met is not None or (service.unknown == 0 and service.total == 0):
                flip = service.quorum.update(service.healthy)
                if flip is not None and self.on_quorum is not None:
                    self._call(self.on_quorum, skey, flip, service.healthy)
        # Keep only checkers still in use, so e.g. a combined checker's counters survive an update.
        self._checkers = {(j.spec, j.target.protocol): j.checker for j in self._jobs.values()}
        jobs = self._jobs
        for ordinal, key in enumerate(wanted):
            jobs[key].ordinal = ordinal
        self._tag = tag
        if not self._remember:
            self._applied = None

    def _drop(self, job: _Job) -> None:
        job.dead = True
        if job.running:
            job.running = False
            self._in_flight -= 1
        if job.task is not None:
            job.task.cancel()
        if job.op is not None and self._prober is not None:
            self._prober.cancel(job.op)
        forget = getattr(job.checker, "forget", None)
        if forget is not None:
            forget(job.target)
        service = self._services.get(job.service)
        if service is not None:
            service.total -= 1
            if job.up:
                service.healthy -= 1
            elif job.up is None:
                service.unknown -= 1

    def _record(self, job: _Job, result: CheckResult, before: bool | None) -> None:
        """Store the attempt's status; on a state change adjust counts and fire the callbacks."""
        now = self._wall + self._prober.now
        job.checks += 1
        if not result.ok:
            job.failures += 1
        up = job.up
        changed = up != before
        service = self._services.get(job.service)
        if changed:
            job.since = now
            if service is not None:
                service.healthy += int(bool(up)) - int(bool(before))
                if before is None:
                    service.unknown -= 1
        # one tuple swapped in: a reader on another thread sees the whole previous or the whole new status
        job.last = (result.ok, result.latency, result.reason, now, job.checks, job.failures, job.since, up)
        if self._dirty is not None:
            self._dirty.add(job)
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
