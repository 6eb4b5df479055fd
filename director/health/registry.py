"""From a `CheckSpec` to the checker that implements it, with ldirectord's dispatch rules.

- `connect` on a UDP virtual service is a ping (ldirectord cannot "connect" UDP), unless `tcp_on_udp`
  (keepalived's TCP_CHECK, which does a TCP handshake whatever the service's protocol).
- A numeric checktype N ("combined" in ldirectord) runs connect checks and a negotiate check every
  Nth time; the first check and the check after any failed connect are negotiate checks.
- An unknown checktype or service never crashes the engine: it yields a checker that always reports
  the configuration problem as the failure reason.
"""

from __future__ import annotations

import importlib

from director.desired import CheckSpec

from .base import Checker, CheckResult, Target
from .static import StaticChecker

#: service -> (module, class) of its negotiate checker. Imported when a check uses it, not before: the
#: checker process (checker.py) then holds only the protocols its director checks (a few MB less for most).
NEGOTIATORS: dict[str, tuple[str, str]] = {
    "http": ("http", "HttpChecker"),
    "https": ("http", "HttpChecker"),
    "http_proxy": ("http", "HttpChecker"),
    "ftp": ("ftp", "FtpChecker"),
    "smtp": ("smtp", "SmtpChecker"),
    "submission": ("smtp", "SmtpChecker"),
    "pop": ("pop", "PopChecker"),
    "imap": ("imap", "ImapChecker"),
    "ldap": ("ldap", "LdapChecker"),
    "nntp": ("nntp", "NntpChecker"),
    "dns": ("dns", "DnsChecker"),
    "mysql": ("mysql", "MysqlChecker"),
    "pgsql": ("pgsql", "PgsqlChecker"),
    "sip": ("sip", "SipChecker"),
    "radius": ("radius", "RadiusChecker"),
    "simpletcp": ("simpletcp", "SimpleTcpChecker"),
}
HTTP_SERVICES = frozenset(("http", "https", "http_proxy"))


def checker_class(module: str, name: str) -> type[Checker]:
    return getattr(importlib.import_module(f".{module}", __package__), name)


def needs_tls(spec: CheckSpec) -> bool:
    """Whether checks of `spec` may speak TLS: an https check, or an HTTP check that follows redirects (one
    may lead to https://) or asks for an https:// URL. The checker process loads Python's ssl (5 MB) only
    then."""
    kind = (spec.checktype or "negotiate").strip().lower()
    if kind != "negotiate" and not kind.isdigit():
        return False
    service = spec.service or "none"
    if service not in HTTP_SERVICES:
        return False
    return service == "https" or spec.redirects > 0 or spec.request.strip().lower().startswith("https:")


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
    where = NEGOTIATORS.get(service)
    if where is None:
        return StaticChecker(spec, False, f"unsupported service {service}")
    cls = checker_class(*where)
    if service in HTTP_SERVICES:
        return cls(spec, cafile=cafile)
    return cls(spec)


def connect_checker(spec: CheckSpec, protocol: str) -> Checker:
    """A connect check: a ping on a UDP service (ldirectord) unless `tcp_on_udp` (keepalived's TCP_CHECK)."""
    if protocol == "udp" and not spec.tcp_on_udp:
        return checker_class("ping", "PingChecker")(spec)
    return checker_class("connect", "ConnectChecker")(spec)


def build_checker(spec: CheckSpec, protocol: str = "tcp", *, cafile: str | None = None) -> Checker:
    """The checker for one virtual service's CheckSpec. `protocol` is the virtual service's (tcp/udp/...)."""
    kind = (spec.checktype or "negotiate").strip().lower()
    if kind == "negotiate":
        return negotiate_checker(spec, protocol, cafile)
    if kind == "connect":
        return connect_checker(spec, protocol)
    if kind == "ping":
        return checker_class("ping", "PingChecker")(spec)
    if kind == "external":
        return checker_class("external", "ExternalChecker")(spec)
    if kind == "on":
        return StaticChecker(spec, True, "checktype on")
    if kind == "off":
        return StaticChecker(spec, False, "checktype off")
    if kind.isdigit():
        connect = connect_checker(spec, protocol)
        return CombinedChecker(spec, connect, negotiate_checker(spec, protocol, cafile), int(kind))
    return StaticChecker(spec, False, f"unknown checktype {spec.checktype}")
