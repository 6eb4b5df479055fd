"""checktype=connect: a TCP handshake within checktimeout, then close (ldirectord's check_connect).

Runs on the probe fast path (probe.py): a bare non-blocking socket on the loop's epoll, nothing exchanged,
the cheapest possible liveness proof. (ldirectord turns connect checks of UDP services into pings;
`registry` does too.)
"""

from __future__ import annotations

from director.desired import CheckSpec

from .base import Checker, CheckResult, Target, reason_for
from .probe import Prober, run_fast


class ConnectChecker(Checker):
    """Up when the three-way handshake completes."""

    name = "connect"
    fast = True

    def __init__(self, spec: CheckSpec):
        super().__init__(spec)
        self.timeout = self.connect_timeout = float(spec.checktimeout)

    def begin(self, prober: Prober, target: Target, done):
        timeout = self.timeout

        def finished(exc, raw, latency, stale):
            if exc is None:
                done(CheckResult(True, latency, "connected"))
            else:
                done(CheckResult(False, latency, reason_for(exc, timeout), stale))

        return prober.start(
            target.family, (target.address, target.check_port), None, timeout, timeout, finished
        )

    async def check(self, target: Target) -> CheckResult:
        return await run_fast(self, target)
