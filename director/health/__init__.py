"""Health checks run by the director itself: ldirectord's check types plus keepalived's extras.

- `base`: the `Checker` interface (`await checker.check(target) -> CheckResult(ok, latency, reason)`),
  `Target`, ldirectord's checkport rule.
- one module per check: connect, http (http/https/http_proxy), smtp, pop, imap, nntp, ftp, ldap, dns,
  mysql, pgsql, sip, radius, simpletcp, ping, external, static (on/off/none); `registry.build_checker`
  maps a `CheckSpec` to one of them (including ldirectord's numeric checktype).
- `probe`: the hot path of connect and plain-HTTP checks (one epoll per loop, timeouts from the connect /
  the sent request, each socket asked before its deadline is called, stale timeouts when the loop starved).
- `state`: the pure retries / failurecount / rise machine and the quorum with hysteresis.
- `engine.HealthEngine`: runs every check on its own interval in a background thread, reports
  transitions through `on_change(service_key, real_key, up, result)` and, through `load()`, whether it keeps
  up (it stretches its own schedule when the CPU is short, like keepalived, instead of failing checks).
"""

from .base import Checker, CheckResult, Target
from .engine import EngineLoad, HealthEngine, RealStatus, ServiceHealth
from .registry import build_checker

__all__ = [
    "Checker",
    "CheckResult",
    "EngineLoad",
    "HealthEngine",
    "RealStatus",
    "ServiceHealth",
    "Target",
    "build_checker",
]
