"""The one validator of the desired-state contract, run by the agent before anything reaches disk or kernel.

The agent runs as root and its input comes over the network, so a desired state is checked field by field
against the contract's own dataclasses (director/desired.py: `DesiredState`, `ServiceSpec`, `RealSpec`,
`CheckSpec`; director/vrrp.py: `Config`): the *types* come from their annotations, so a new field is
type-checked the moment it is added, and `RULES` adds what a type cannot say (ranges, enums, address
kinds, sizes). `test_schema.py` fails when a contract field has no rule. Unknown keys are errors (a typo
or a newer central side must not be silently ignored; upgrade agents first), and every error names its
path, e.g. ``services[3].check.virtualhost: must be printable ASCII``.

`parse(doc)` returns the `DesiredState` or raises `Invalid`; it never raises anything else.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import re
import types
import typing

from . import vrrp
from .desired import ADMIN_STATES, FORWARDING, PROTOCOLS, CheckSpec, DesiredState, RealSpec, ServiceSpec
from .health.registry import NEGOTIATORS
from .ipvs import model as ipvs_model

MAX_SERVICES = 10_000
MAX_REALS_PER_SERVICE = 10_000
MAX_REALS = 100_000
MAX_ADDRESSES = 1_000  # masquerade subnets
MAX_VIPS = MAX_SERVICES  # every service may have its own VIP (issue 17's director: 2,284 of them)
MAX_TEXT = 4096
CHECKTYPES = ("connect", "negotiate", "ping", "external", "on", "off")
# what the agent can negotiate, plus the dashboard's pops/imaps (accepted, reported as unsupported)
CHECK_SERVICES = tuple(dict.fromkeys(("none", *NEGOTIATORS, "pops", "imaps")))
HTTP_METHODS = ("GET", "HEAD")
SERVICE_FLAGS = tuple(ipvs_model.FLAG_BITS)
IFNAME_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,15}$")
NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,50}$")
HOST_RE = re.compile(r"^[A-Za-z0-9.:\[\]_-]{1,255}$")  # a DNS name or an address, as a Host header carries it
U32 = 2**32 - 1
REVISION_MAX = 2**53  # an integer JSON, JavaScript and SQLite all keep exactly


class Invalid(ValueError):
    """The desired state breaks the contract; the message says where and why."""


# -- value rules: (value, path) -> None or raise Invalid -----------------------------------------------------
def _range(lo, hi):
    def rule(v, path):
        if not lo <= v <= hi:
            raise Invalid(f"{path}: must be {lo}..{hi}, not {v!r}")

    return rule


def _one_of(choices):
    def rule(v, path):
        if v not in choices:
            raise Invalid(f"{path}: must be one of {', '.join(map(str, choices))}, not {str(v)[:40]!r}")

    return rule


def _text(max_len=MAX_TEXT, printable=False, pattern=None, what=""):
    def rule(v, path):
        if len(v) > max_len:
            raise Invalid(f"{path}: longer than {max_len} characters")
        if "\x00" in v or any(0xD800 <= ord(c) <= 0xDFFF for c in v):
            raise Invalid(f"{path}: contains NUL or a lone surrogate")
        if printable and v and not (v.isascii() and v.isprintable()):
            raise Invalid(f"{path}: must be printable ASCII")
        if pattern is not None and v and not pattern.match(v):
            raise Invalid(f"{path}: not a valid {what}: {v[:60]!r}")

    return rule


def _unicast(text, path, what="an address", loopback=False):
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise Invalid(f"{path}: not an IP address: {str(text)[:60]!r}") from None
    if addr.is_loopback and loopback:
        return addr
    if addr.is_unspecified or addr.is_multicast or addr.is_reserved or addr.is_loopback:
        raise Invalid(f"{path}: {addr} cannot be {what} (unspecified, multicast, loopback or reserved)")
    return addr


def _address(v, path):
    _unicast(v, path)


def _real_address(v, path):
    """A real server may be the director itself (ldirectord's classic fallback=127.0.0.1:80 sorry page)."""
    _unicast(v, path, loopback=True)


def _optional_address(v, path):
    if v:
        _unicast(v, path)


def _vip(v, path):
    """A VIP goes on the WAN interface: a unicast host address with a sane prefix, never 0.0.0.0/0."""
    text, _, plen = v.partition("/")
    addr = _unicast(text, path, "a VIP")
    if plen:
        if not plen.isascii() or not plen.isdigit():
            raise Invalid(f"{path}: bad prefix length {plen[:10]!r}")
        lo = 8 if addr.version == 4 else 16
        if not lo <= int(plen) <= addr.max_prefixlen:
            raise Invalid(f"{path}: prefix length must be {lo}..{addr.max_prefixlen}")


def _subnet(v, path):
    """A masqueraded LAN: a real network, not 0.0.0.0/0 (that would NAT everything leaving the director)."""
    try:
        net = ipaddress.ip_network(v, strict=False)
    except ValueError:
        raise Invalid(f"{path}: not a network: {str(v)[:60]!r}") from None
    if net.prefixlen < (8 if net.version == 4 else 16):
        raise Invalid(f"{path}: {net} is too wide to masquerade")


def _checktype(v, path):
    if v in CHECKTYPES:
        return
    if v.isascii() and v.isdigit() and 1 <= int(v) <= 1000:
        return
    raise Invalid(f"{path}: must be one of {', '.join(CHECKTYPES)} or a number 1..1000, not {v[:20]!r}")


def _each(rule):
    def each(v, path):
        for i, item in enumerate(v):
            rule(item, f"{path}[{i}]")

    return each


def _max_items(n, then=None):
    def rule(v, path):
        if len(v) > n:
            raise Invalid(f"{path}: more than {n} items")
        if then is not None:
            then(v, path)

    return rule


def _seconds(lo, hi):
    r = _range(lo, hi)

    def rule(v, path):
        if not math.isfinite(v):
            raise Invalid(f"{path}: must be a finite number")
        r(v, path)

    return rule


_port = _range(0, 65535)

RULES: dict[type, dict[str, typing.Callable]] = {
    DesiredState: {
        "director": _text(50, pattern=NAME_RE, what="director name"),
        "revision": _range(1, REVISION_MAX),
        "wan_interface": _text(15, pattern=IFNAME_RE, what="interface name"),
        "lan_interface": _text(15, pattern=IFNAME_RE, what="interface name"),
        "ip_forward": None,
        "masquerade": _max_items(MAX_ADDRESSES, _each(_subnet)),
        "vips": _max_items(MAX_VIPS, _each(_vip)),
        "services": _max_items(MAX_SERVICES),
        "failover": None,  # checked as vrrp.Config below
    },
    ServiceSpec: {
        "protocol": _one_of(PROTOCOLS),
        "address": _optional_address,
        "port": _port,
        "fwmark": _range(0, U32),
        "family": _one_of((4, 6)),
        "scheduler": _one_of(ipvs_model.SCHEDULERS),
        "flags": _max_items(len(SERVICE_FLAGS), _each(_one_of(SERVICE_FLAGS))),
        "persistence": _range(0, 2**31 - 1),
        "netmask": _text(40, printable=True),
        "check": None,
        "fallback": None,
        "reals": _max_items(MAX_REALS_PER_SERVICE),
        "name": _text(200),
    },
    RealSpec: {
        "address": _real_address,
        "port": _port,
        "forwarding": _one_of(FORWARDING),
        "weight": _range(0, 65535),
        "u_threshold": _range(0, U32),
        "l_threshold": _range(0, U32),
        "admin_state": _one_of(ADMIN_STATES),
        "quiescent": None,
        "check_port": _range(0, 65535),
    },
    CheckSpec: {
        "checktype": _checktype,
        "service": _one_of(CHECK_SERVICES),
        "request": _text(),
        "receive": _text(),
        "httpmethod": _one_of(HTTP_METHODS),
        "virtualhost": _text(255, printable=True, pattern=HOST_RE, what="host name"),
        "checkport": _range(1, 65535),
        "checkinterval": _seconds(0.05, 86400),
        "checktimeout": _seconds(0.05, 3600),
        "negotiatetimeout": _seconds(0.05, 3600),
        "failurecount": _range(1, 1000),
        "quiescent": None,
        "expected_status": _max_items(100, _each(_range(100, 599))),
        "retries": _range(1, 100),
        "delay_before_retry": _seconds(0, 3600),
        "rise": _range(1, 1000),
        "quorum": _range(0, MAX_REALS_PER_SERVICE),
        "hysteresis": _range(0, MAX_REALS_PER_SERVICE),
        "external": _text(1024, printable=True),
        "login": _text(256),
        "passwd": _text(256),
        "database": _text(256),
        "secret": _text(256),
        "verify_tls": None,
        "redirects": _range(0, 20),
        "tcp_on_udp": None,
        "fallback_rule": _one_of(("ldirectord", "keepalived")),
        "check_traffic_port": None,
        "start_down": None,
    },
    vrrp.Config: {
        "local_address": _address,
        "peer_address": _address,
        "secret": _text(256),
        "priority": _range(1, 254),
        "interval": _seconds(0.01, 40.95),
        "preempt": None,
        "vrid": _range(1, 255),
        "sync_daemon": None,
        "sync_id": _range(0, 255),
        "track_agent": None,
    },
}


# -- types, from the dataclasses' own annotations -------------------------------------------------------------
_HINTS: dict[type, dict[str, object]] = {}


def _hints(cls) -> dict[str, object]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _typed(value, hint, path):
    """`value` (from JSON) converted to `hint`'s Python type, or Invalid. Lists become tuples."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        (inner,) = [o for o in options if o is not type(None)]
        return _typed(value, inner, path)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise Invalid(f"{path}: must be a list, not {type(value).__name__}")
        (inner, _) = typing.get_args(hint)
        return tuple(_typed(v, inner, f"{path}[{i}]") for i, v in enumerate(value))
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise Invalid(f"{path}: must be an object, not {type(value).__name__}")
        return value
    if hint is bool:
        if type(value) is not bool:
            raise Invalid(f"{path}: must be true or false, not {type(value).__name__}")
        return value
    if hint is int:
        if type(value) is not int:
            raise Invalid(f"{path}: must be an integer, not {type(value).__name__}")
        return value
    if hint is float:
        if type(value) not in (int, float):
            raise Invalid(f"{path}: must be a number, not {type(value).__name__}")
        return float(value)
    if hint is str:
        if type(value) is not str:
            raise Invalid(f"{path}: must be a string, not {type(value).__name__}")
        return value
    if dataclasses.is_dataclass(hint):
        return hint(**_object(hint, value, path))
    raise Invalid(f"{path}: no rule for type {hint!r}")  # a contract type this module does not know yet


def _object(cls, doc, path):
    """Check `doc` against dataclass `cls`; returns the kwargs (typed, rule-checked) for cls(**kwargs)."""
    if not isinstance(doc, dict):
        raise Invalid(f"{path or 'state'}: must be an object, not {type(doc).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in doc if k not in fields]
    if unknown:
        raise Invalid(f"{path or 'state'}: unknown field(s) {', '.join(str(k)[:40] for k in unknown[:5])}")
    hints, rules = _hints(cls), RULES[cls]
    out = {}
    for name, f in fields.items():
        where = f"{path}.{name}" if path else name
        if name not in doc:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise Invalid(f"{where}: missing")
            continue
        value = _typed(doc[name], hints[name], where)
        rule = rules.get(name)  # a field without a rule is still type-checked (test_schema wants a rule)
        if rule is not None and value is not None:
            rule(value, where)
        out[name] = value
    return out


# -- the document ---------------------------------------------------------------------------------------------
def _check_service(spec: ServiceSpec, path: str) -> None:
    """What no single field says: fwmark vs address, address families, a kernel service that builds."""
    if spec.protocol == "fwmark":
        if not spec.fwmark:
            raise Invalid(f"{path}.fwmark: a fwmark service needs a mark 1..{U32}")
    else:
        if not spec.address:
            raise Invalid(f"{path}.address: a {spec.protocol} service needs an address")
        if ipaddress.ip_address(spec.address).version != spec.family:
            raise Invalid(f"{path}.family: {spec.family} does not match address {spec.address}")
    reals = [(f"{path}.reals[{i}]", r) for i, r in enumerate(spec.reals)]
    if spec.fallback is not None:
        reals.append((f"{path}.fallback", spec.fallback))
    for where, real in reals:
        if ipaddress.ip_address(real.address).version != spec.family and real.forwarding == "masq":
            raise Invalid(f"{where}.address: an IPv{spec.family} service cannot NAT to {real.address}")
    try:  # what the kernel will be given must be buildable (netmask, flags, ...)
        ipvs_model.service_from_spec(spec, [(r, r.weight) for r in spec.reals])
    except (ValueError, TypeError) as exc:
        raise Invalid(f"{path}: {exc}") from None


def parse(doc, *, external_dir: str | None = None) -> DesiredState:
    """The validated `DesiredState` for JSON `doc`, or `Invalid` naming the first problem.

    `external_dir`: where this director allows external check programs (the agent's own configuration,
    see `external_program`); None refuses every external check.
    """
    try:
        return _parse(doc, external_dir)
    except Invalid:
        raise
    except RecursionError:
        raise Invalid("state: nested too deeply") from None
    except Exception as exc:  # noqa: BLE001 - a validator bug must still reject, never crash the agent
        raise Invalid(f"state: {exc.__class__.__name__}: {exc}"[:300]) from None


def _parse(doc, external_dir) -> DesiredState:
    kw = _object(DesiredState, doc, "")
    total = 0
    seen = set()
    for i, spec in enumerate(kw.get("services", ())):
        path = f"services[{i}]"
        _check_service(spec, path)
        total += len(spec.reals)
        if total > MAX_REALS:
            raise Invalid(f"services: more than {MAX_REALS} real servers in all")
        if spec.key in seen:
            raise Invalid(f"{path}: the same virtual service twice ({spec.key})")
        seen.add(spec.key)
        if spec.check.checktype == "external" or spec.check.external:
            external_program(spec.check.external, external_dir, f"{path}.check.external")
    if kw.get("failover") is not None:
        cfg = _object(vrrp.Config, kw["failover"], "failover")
        try:
            vrrp.Config.from_dict(cfg)
        except (ValueError, TypeError) as exc:
            raise Invalid(f"failover: {exc}") from None
    return DesiredState(**kw)


def external_program(command: str, allowed_dir: str | None, path: str = "external") -> str:
    """The program of an external check, if this director allows it; else Invalid with the reason.

    Allowed: an absolute path to a regular file inside `allowed_dir` (after resolving symlinks), owned by
    root and writable by nobody else, in a directory that is itself root's and not writable by others.
    A desired state can name a program; only root on the director decides which programs exist there.
    """
    if not allowed_dir:
        raise Invalid(
            f"{path}: external checks are disabled on this director (agent.toml external_check_dir)"
        )
    argv0 = command.split()[0] if command.split() else ""
    if not argv0.startswith("/"):
        raise Invalid(f"{path}: the program must be an absolute path inside {allowed_dir}")
    real_dir = os.path.realpath(allowed_dir)
    real = os.path.realpath(argv0)
    if os.path.dirname(real) != real_dir:
        raise Invalid(f"{path}: {argv0} is not in the allowed directory {allowed_dir}")
    for what, p in (("directory", real_dir), ("program", real)):
        try:
            st = os.stat(p)
        except OSError as exc:
            raise Invalid(f"{path}: {what} {p}: {exc.strerror}") from None
        if st.st_uid != 0 or st.st_mode & 0o022:
            raise Invalid(f"{path}: {what} {p} must be owned by root and not writable by group or others")
    if not os.path.isfile(real) or not os.access(real, os.X_OK):
        raise Invalid(f"{path}: {real} is not an executable file")
    return real
