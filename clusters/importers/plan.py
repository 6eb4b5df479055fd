"""The neutral import plan every parser produces and every exporter reads.

Parsers never touch the ORM: they turn a config file into a `Plan` (director-wide notes plus a list of
`ServicePlan` with their `RealPlan`s) and collect warnings and errors that carry file:line. The field names
of `ServicePlan` and `RealPlan` are the model field names, so `apply.py` can hand them to the models as they
are and the exporters can be tested without a database. Nothing here imports Django: the parsers run (and are
tested) on a box that only has Python.

Name resolution is local on purpose: a config may name hosts (`real=web1:80 gate`) but an import must not
depend on, or leak to, whatever DNS the web server happens to see. `HostsMap` answers from an /etc/hosts-style
text only, and `service_port` from a built-in table plus the local /etc/services file.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from director.keys import service_label

from ..checkfields import plan_fields

# Model choice values, repeated here so the parsers stay free of Django (clusters.choices imports it).
PROTOCOLS = ("tcp", "udp", "sctp", "fwmark")
FORWARDING = ("masq", "gate", "ipip")
SCHEDULERS = ("rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos")
SCHED_FLAGS = ("sh-fallback", "sh-port", "mh-fallback", "mh-port", "ops")
CHECKTYPES = ("negotiate", "connect", "ping", "external", "on", "off")
CHECK_SERVICES = (
    "none", "http", "https", "http_proxy", "ftp", "smtp", "pop", "pops", "imap", "imaps", "ldap", "nntp",
    "dns", "mysql", "pgsql", "sip", "radius", "simpletcp",
)  # fmt: skip

# Bounds that keep a hostile or broken upload from eating the server.
MAX_FILE_BYTES = 4 << 20
MAX_FILES = 64
MAX_INCLUDE_DEPTH = 8
MAX_REALS_PER_RANGE = 4096
MAX_LINES = 200_000


@dataclass(frozen=True)
class Message:
    """A warning or an error, anchored where it came from (line 0: the file as a whole)."""

    file: str
    line: int
    text: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.text}" if self.line else f"{self.file}: {self.text}"


@dataclass
class RealPlan:
    """One real server, named as RealServer's fields."""

    address: str
    port: int = 0
    forwarding: str = "masq"
    weight: int = 1
    u_threshold: int = 0
    l_threshold: int = 0
    quiescent: bool | None = None  # keepalived's per-real inhibit_on_failure
    check_port: int = 0  # where the source daemon checked it, when that is not `port`
    file: str = ""
    line: int = 0

    MODEL_FIELDS = (
        "address",
        "port",
        "forwarding",
        "weight",
        "u_threshold",
        "l_threshold",
        "quiescent",
        "check_port",
    )

    def model_values(self) -> dict:
        return {name: getattr(self, name) for name in self.MODEL_FIELDS}

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


def _with_check_fields(cls):
    """Adds the check settings from the contract (`CheckSpec`, under the model's names and defaults), so the
    plan cannot miss one the agent knows; see clusters/checkfields.py."""
    for name, annotation, default in plan_fields():
        cls.__annotations__[name] = annotation
        setattr(cls, name, default)
    return cls


@dataclass
@_with_check_fields
class ServicePlan:
    """One virtual service with its check settings; defaults are the model's defaults."""

    protocol: str = "tcp"
    address: str | None = None
    port: int | None = None
    fwmark: int | None = None
    family: int = 4
    scheduler: str = "wlc"
    sched_flags: list = field(default_factory=list)
    persistence: int = 0
    netmask: str = ""
    name: str = ""
    enabled: bool = True
    check_every: int = 0  # checktype=N; the other check settings: see _with_check_fields
    fallback_address: str | None = None
    fallback_port: int | None = None
    fallback_forwarding: str = "masq"
    reals: list[RealPlan] = field(default_factory=list)
    file: str = ""
    line: int = 0

    NOT_MODEL = ("reals", "file", "line")

    @classmethod
    def model_field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls) if f.name not in cls.NOT_MODEL)

    def model_values(self) -> dict:
        return {name: getattr(self, name) for name in self.model_field_names()}

    @property
    def key(self) -> tuple:
        """What the kernel (and the model's unique constraints) identify the service by."""
        if self.protocol == "fwmark":
            return ("fwmark", self.family, self.fwmark)
        return (self.protocol, self.address, self.port)

    @property
    def label(self) -> str:
        """ipvsadm's name for it: TCP 172.16.10.52:80, FWM 1, TCP [2001:db8::1]:80."""
        return service_label(self.protocol, self.address, self.port, self.fwmark, self.family)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass
class Plan:
    """What an import would create, plus everything worth telling the user about the file."""

    format: str
    source: str
    services: list[ServicePlan] = field(default_factory=list)
    warnings: list[Message] = field(default_factory=list)
    errors: list[Message] = field(default_factory=list)
    # Director-wide settings read from the file (ldirectord globals, keepalived notes), for the preview.
    settings: dict = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def warn(self, file: str, line: int, text: str) -> None:
        self.warnings.append(Message(file, line, text))

    def error(self, file: str, line: int, text: str) -> None:
        self.errors.append(Message(file, line, text))

    def finish(self) -> Plan:
        """Messages in reading order (file by file, line by line), however the parser found them."""
        order = {name: i for i, name in enumerate(self.files)}

        def key(m: Message):
            return (order.get(m.file, len(order)), m.line)

        self.errors.sort(key=key)
        self.warnings.sort(key=key)
        return self

    @property
    def real_count(self) -> int:
        return sum(len(s.reals) for s in self.services)


class PlanError(Exception):
    """Raised where a parser cannot go on at all (e.g. a file that is not text)."""


# ---- local name resolution -----------------------------------------------------------------------------


class HostsMap:
    """Host names from an /etc/hosts-style text: the only resolver importers use (never DNS)."""

    def __init__(self, entries: dict[str, list[str]] | None = None, origin: str = "hosts map"):
        self.entries = {k.lower(): v for k, v in (entries or {}).items()}
        self.origin = origin

    @classmethod
    def from_text(cls, text: str, origin: str = "hosts map") -> HostsMap:
        entries: dict[str, list[str]] = {}
        for raw in text.splitlines()[:MAX_LINES]:
            words = raw.split("#", 1)[0].split()
            if len(words) < 2:
                continue
            try:
                address = str(ipaddress.ip_address(words[0].split("%", 1)[0]))
            except ValueError:
                continue
            for name in words[1:]:
                entries.setdefault(name.lower(), []).append(address)
        return cls(entries, origin)

    @classmethod
    def system(cls, path: str = "/etc/hosts") -> HostsMap:
        """The machine's hosts file (a local file read; no resolver is involved)."""
        try:
            return cls.from_text(Path(path).read_text(errors="replace")[:MAX_FILE_BYTES], path)
        except OSError:
            return cls({}, path)

    def resolve(self, name: str, family: int) -> str | None:
        """An address literal as is, else the first address of `family` the map has for the name."""
        name = name.strip()
        if name.startswith("[") and name.endswith("]"):
            name = name[1:-1]
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            pass
        else:
            return str(address) if address.version == family else None
        for candidate in self.entries.get(name.lower(), ()):
            if ipaddress.ip_address(candidate).version == family:
                return candidate
        return None


# Ports of the service names configs use; /etc/services is consulted for the rest.
KNOWN_PORTS = {
    "ftp": 21, "ssh": 22, "telnet": 23, "smtp": 25, "domain": 53, "http": 80, "www": 80, "pop3": 110,
    "nntp": 119, "imap": 143, "imap2": 143, "ldap": 389, "https": 443, "submission": 587, "ldaps": 636,
    "imaps": 993, "pop3s": 995, "ms-sql-s": 1433, "oracle": 1521, "radius": 1812, "http-alt": 8080,
    "squid": 3128, "mysql": 3306, "sip": 5060, "postgresql": 5432, "vnc": 5900,
}  # fmt: skip


def _etc_services(path: str = "/etc/services") -> dict[str, int]:
    table: dict[str, int] = {}
    try:
        text = Path(path).read_text(errors="replace")[:MAX_FILE_BYTES]
    except OSError:
        return table
    for raw in text.splitlines()[:MAX_LINES]:
        words = raw.split("#", 1)[0].split()
        if len(words) >= 2 and "/" in words[1]:
            port = words[1].split("/", 1)[0]
            if port.isascii() and port.isdigit():
                for name in [words[0], *words[2:]]:
                    table.setdefault(name, int(port))
    return table


_SERVICES_CACHE: dict[str, int] | None = None


def service_port(name: str) -> int | None:
    """A port number (0-65535) or a service name from the local tables; None when unknown."""
    global _SERVICES_CACHE
    name = name.strip()
    if name.isascii() and name.isdigit():  # "²".isdigit() is true, int("²") fails
        return int(name) if int(name) < 65536 else None
    if name in KNOWN_PORTS:
        return KNOWN_PORTS[name]
    if _SERVICES_CACHE is None:
        _SERVICES_CACHE = _etc_services()
    return _SERVICES_CACHE.get(name)


# ---- where included files come from --------------------------------------------------------------------


class Sources:
    """Reads the files a config includes (ldirectord `execute=`, keepalived `include`).

    `FileSources` reads the disk for the command line; `MemorySources` serves uploaded files by name for the
    web, where the server's own disk must never be read on behalf of a user.
    """

    def read(self, name: str, relative_to: str) -> tuple[str, str]:  # pragma: no cover - interface
        raise NotImplementedError

    def glob(self, pattern: str, relative_to: str) -> list[str]:  # pragma: no cover - interface
        raise NotImplementedError


class FileSources(Sources):
    def _path(self, name: str, relative_to: str) -> Path:
        path = Path(name)
        if not path.is_absolute() and relative_to:
            path = Path(relative_to).parent / path
        return path

    def read(self, name: str, relative_to: str) -> tuple[str, str]:
        path = self._path(name, relative_to)
        if path.stat().st_size > MAX_FILE_BYTES:
            raise OSError(f"{path} is larger than {MAX_FILE_BYTES} bytes")
        return str(path), path.read_bytes().decode("utf-8", errors="replace")

    def glob(self, pattern: str, relative_to: str) -> list[str]:
        path = self._path(pattern, relative_to)
        if not any(c in pattern for c in "*?["):
            return [str(path)] if path.exists() else []
        root = Path(path.anchor) if path.is_absolute() else Path(".")
        relative = path.relative_to(path.anchor) if path.is_absolute() else path
        return sorted(str(p) for p in root.glob(str(relative)))[:MAX_FILES]


class MemorySources(Sources):
    """Files uploaded together, found by base name (directories in the config are ignored)."""

    def __init__(self, files: dict[str, str] | None = None):
        self.files = {os.path.basename(k): v for k, v in (files or {}).items()}

    def read(self, name: str, relative_to: str) -> tuple[str, str]:
        base = os.path.basename(name)
        if base not in self.files:
            raise OSError(f"{name} was not uploaded with the configuration")
        return base, self.files[base]

    def glob(self, pattern: str, relative_to: str) -> list[str]:
        base = os.path.basename(pattern)
        return sorted(n for n in self.files if fnmatch.fnmatch(n, base))[:MAX_FILES]


def normalize_newlines(text: str) -> tuple[str, bool]:
    """CRLF (and lone CR) line ends as LF; True when there were any.

    Browsers send a pasted textarea with CRLF whatever the user copied, and files saved on Windows have them;
    the daemons would read `quiescent = yes\r` and choke, so the upload paths normalise before parsing.
    """
    if "\r" not in text:
        return text, False
    return text.replace("\r\n", "\n").replace("\r", "\n"), True


def split_lines(text: str) -> list[str]:
    """Lines as the daemons read them: split on newlines only (a stray CR stays in the value)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines[:MAX_LINES]
