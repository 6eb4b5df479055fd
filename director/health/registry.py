"""From a `CheckSpec` to the checker that implements it, with ldirectord's dispatch rules.

- `connect` on a UDP virtual service is a ping (ldirectord cannot "connect" UDP), unless `tcp_on_udp`
  (keepalived's TCP_CHECK, which does a TCP handshake whatever the service's protocol).
- A numeric checktype N ("combined" in ldirectord) runs connect checks and a negotiate check every
  Nth time; the first check and the check after any failed connect are negotiate checks.
- An unknown checktype or service never crashes the engine: it yields a checker that always reports
  the configuration problem as the failure reason.
"""

from __future__ import annotations

from director.desired import CheckSpec

from .base import Checker, CheckResult, Target
from .connect import ConnectChecker
from .dns import DnsChecker
from .external import ExternalChecker
from .ftp import FtpChecker
from .http import HttpChecker
from .imap import ImapChecker
from .ldap import LdapChecker
from .mysql import MysqlChecker
from .nntp import NntpChecker
from .pgsql import PgsqlChecker
from .ping import PingChecker
from .pop import PopChecker
from .radius import RadiusChecker
from .simpletcp import SimpleTcpChecker
from .sip import SipChecker
from .smtp import SmtpChecker
from .static import StaticChecker

NEGOTIATORS: dict[str, type[Checker]] = {
    "http": HttpChecker,
    "https": HttpChecker,
    "http_proxy": HttpChecker,
    "ftp": FtpChecker,
    "smtp": SmtpChecker,
    "submission": SmtpChecker,
    "pop": PopChecker,
    "imap": ImapChecker,
    "ldap": LdapChecker,
    "nntp": NntpChecker,
    "dns": DnsChecker,
    "mysql": MysqlChecker,
    "pgsql": PgsqlChecker,
    "sip": SipChecker,
    "radius": RadiusChecker,
    "simpletcp": SimpleTcpChecker,
}


class CombinedChecker(Checker):
    """checktype=N: connect checks, with a negotiate check every Nth time (state kept per target)."""

    name = "combined"

    def __init__(self, spec: CheckSpec, connect: Checker, negotiate: Checker, every: int):
        super().__init__(spec)
        self.connect, self.negotiate, self.every = connect, negotiate, max(0, every)
        self._connects: dict[Target, int] = {}

    async def check(self, target: Target) -> CheckResult:
        done = self._connects.get(target, 1 << 30)
        if done >= self.every:
            result = await self.negotiate.check(target)
            if result.ok:
                self._connects[target] = 0
            return result
        result = await self.connect.check(target)
        self._connects[target] = done + 1 if result.ok else 1 << 30
        return result

    def forget(self, target: Target) -> None:
        self._connects.pop(target, None)


def negotiate_checker(spec: CheckSpec, protocol: str, cafile: str | None) -> Checker:
    service = spec.service or "none"
    if service == "none":
        return StaticChecker(spec, True, "service none: not checked")
    cls = NEGOTIATORS.get(service)
    if cls is None:
        return StaticChecker(spec, False, f"unsupported service {service}")
    if cls is HttpChecker:
        return HttpChecker(spec, cafile=cafile)
    return cls(spec)


def connect_checker(spec: CheckSpec, protocol: str) -> Checker:
    """A connect check: a ping on a UDP service (ldirectord) unless `tcp_on_udp` (keepalived's TCP_CHECK)."""
    return PingChecker(spec) if protocol == "udp" and not spec.tcp_on_udp else ConnectChecker(spec)


def build_checker(spec: CheckSpec, protocol: str = "tcp", *, cafile: str | None = None) -> Checker:
    """The checker for one virtual service's CheckSpec. `protocol` is the virtual service's (tcp/udp/...)."""
    kind = (spec.checktype or "negotiate").strip().lower()
    if kind == "negotiate":
        return negotiate_checker(spec, protocol, cafile)
    if kind == "connect":
        return connect_checker(spec, protocol)
    if kind == "ping":
        return PingChecker(spec)
    if kind == "external":
        return ExternalChecker(spec)
    if kind == "on":
        return StaticChecker(spec, True, "checktype on")
    if kind == "off":
        return StaticChecker(spec, False, "checktype off")
    if kind.isdigit():
        connect = connect_checker(spec, protocol)
        return CombinedChecker(spec, connect, negotiate_checker(spec, protocol, cafile), int(kind))
    return StaticChecker(spec, False, f"unknown checktype {spec.checktype}")
