"""ldirectord.cf -> Plan, reading the file the way ldirectord's own `read_config` does.

The reference is ldirectord's Perl source (ClusterLabs resource-agents, ldirectord/ldirectord.in): the same
regular expressions decide what is accepted, what is silently ignored and what is refused, because "it works
with ldirectord" is the promise users import under. Where ldirectord reads only part of a value (its
patterns are unanchored: `checktimeout=3 // ms?` reads 3) we accept the same part and warn with file:line
about the rest; where ldirectord stops with a configuration error we refuse with the same reason.

Semantics carried over from ldirectord:

* defaults: scheduler wrr, protocol tcp (udp when the port is 53/domain), checktype negotiate, service from
  the port (80 -> http ...), forwarding method required on every `real=`, weight 1, quiescent **no**
  (set_defaults; the man page's "yes" is wrong), checkinterval 10, checktimeout 5, negotiatetimeout 30, with
  checktimeout and negotiatetimeout defaulting to each other (ld_setup), failurecount 1;
* global checktimeout/negotiatetimeout/checkinterval/failurecount/quiescent/fallback apply to every virtual
  that does not set its own; a per-virtual checkinterval only counts with fork=yes;
* a virtual section is the indented block (4 spaces or a tab) right after `virtual=`: a blank line ends it;
  inside it `#` starts a comment anywhere, at the top level only at the start of a line;
* `real=a->b:port` expands an IPv4 range; ports and hosts may be names; for TCP/UDP services a gate or ipip
  real server always gets the virtual port (the kernel forces it), as does a real without a port; the port
  ldirectord *checks* such a real on (its configured port, or the service's port without one) is kept as
  the real's check port, with a warning naming both;
* `execute=other.cf` starts a second ldirectord instance on the same director: its file is read too, with
  its own globals, and its services join the plan.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from .plan import (
    MAX_FILES,
    MAX_INCLUDE_DEPTH,
    MAX_REALS_PER_RANGE,
    SCHEDULERS,
    HostsMap,
    Plan,
    RealPlan,
    ServicePlan,
    Sources,
    service_port,
    split_lines,
)

FORMAT = "ldirectord"

# ld_service_to_port: the port ldirectord checks a real server without a port on.
LD_SERVICE_PORTS = {
    "ftp": 21, "smtp": 25, "dns": 53, "http": 80, "pop": 110, "nntp": 119, "imap": 143, "ldap": 389,
    "https": 443, "submission": 587, "ldaps": 636, "imaps": 993, "pops": 995, "oracle": 1521, "radius": 1812,
    "http_proxy": 3128, "mysql": 3306, "sip": 5060, "pgsql": 5432,
}  # fmt: skip

# ld_port_to_service: the check service ldirectord picks from the virtual port when `service=` is absent.
PORT_SERVICE = {
    21: "ftp", 25: "smtp", 53: "dns", 80: "http", 110: "pop", 119: "nntp", 143: "imap", 389: "ldap",
    443: "https", 587: "submission", 636: "ldaps", 995: "pops", 993: "imaps", 1521: "oracle", 1812: "radius",
    3128: "http_proxy", 3306: "mysql", 5060: "sip", 5432: "pgsql",
}  # fmt: skip
LD_SERVICES = (
    "dns", "ftp", "http", "https", "http_proxy", "imap", "imaps", "ldap", "ldaps", "nntp", "mysql", "none",
    "oracle", "pop", "pops", "radius", "pgsql", "sip", "smtp", "submission", "simpletcp",
)  # fmt: skip
LD_CHECKTYPES = ("connect", "negotiate", "ping", "off", "on", "external", "external-perl")
YES_NO = ("yes", "no")
# Accepted by ldirectord, meaningless here (mail, logging, process management): reported, not imported.
NOT_USED = {
    "emailalert": "e-mail alerts",
    "emailalertfreq": "e-mail alerts",
    "emailalertstatus": "e-mail alerts",
    "emailalertfrom": "e-mail alerts",
    "smtp": "e-mail alerts",
    "autoreload": "the web UI is the configuration",
    "callback": "the web UI is the configuration",
    "logfile": "the live log replaces ldirectord's log file",
    "fork": "every service is checked concurrently",
    "supervised": "the agent is supervised by systemd",
    "cleanstop": "the agent keeps the table when it stops",
    "readdquiescent": "real servers stay in the table while quiescent",
    "maintenancedir": "use maintenance mode per real server instead",
    "fallbackcommand": "fallback commands are not run",
    "monitorfile": "check results go to the live log",
    "comment": "a note for e-mail alerts",
    "load": "load testing is not supported",
}

VIRTUAL_RE = re.compile(r"^virtual(6)?\s*=\s*(.*)")
V4_PORT_RE = re.compile(r"^(\d+\.\d+\.\d+\.\d+):([0-9A-Za-z_-]+)")
HOST_PORT_RE = re.compile(r"^([0-9A-Za-z._+-]+):([0-9A-Za-z_-]+)")
FWMARK_RE = re.compile(r"^(\d+)")
V6_PORT_RE = re.compile(r"^\[([0-9A-Fa-f:]+)\]:([0-9A-Za-z_-]+)")
# _ld_read_config_real_resolve, verbatim (including its A-f range and its missing anchors).
REAL_RE = re.compile(
    r"(\d+\.\d+\.\d+\.\d+|[A-Za-z0-9.-]+|\[[0-9A-fa-f:]+\])"
    r"(->(\d+\.\d+\.\d+\.\d+|[A-Za-z0-9.-]+|\[[0-9A-fa-f:]+\]))?"
    r"(:(\d+|[A-Za-z0-9_-]+))?\s+(.*)"
)


@dataclass
class _Virtual:
    """A virtual section as ldirectord holds it before ld_setup fills in defaults (-1 = unset)."""

    family: int
    line: int
    file: str
    host: str | None = None
    port_text: str | None = None
    fwmark: int | None = None
    protocol: str = "tcp"
    service: str | None = None
    checktype: str = "negotiate"
    num_connects: int = 0
    checkcommand: str | None = None
    checktimeout: int = -1
    negotiatetimeout: int = -1
    checkcount: int = -1
    failurecount: int = -1
    checkinterval: int | None = None
    checkinterval_line: int = 0
    scheduler: str = "wrr"
    persistent: int | None = None
    persistent_line: int = 0
    netmask: str | None = None
    netmask_line: int = 0
    schedflags: str | None = None
    schedflags_line: int = 0
    ops: bool = False
    quiescent: str | None = None
    request: str | None = None
    receive: str | None = None
    httpmethod: str = "GET"
    virtualhost: str | None = None
    checkport: int | None = None
    login: str | None = None
    passwd: str | None = None
    database: str | None = None
    secret: str | None = None
    servicename: str | None = None
    fallback: tuple | None = None  # (text, line)
    reals: list = field(default_factory=list)  # [(text, line)]
    checktype_line: int = 0
    service_line: int = 0


@dataclass(frozen=True)
class _Directive:
    """How ldirectord reads one directive of a virtual section (see VIRTUAL_DIRECTIVES)."""

    handler: str  # the _Parser method: (virtual, name, value, line, this entry)
    attr: str = ""  # the _Virtual field it fills
    message: str = ""  # ldirectord's error for a bad value ({value!r}: stripped, {raw!r}: as written)
    quoting: str = "plain"  # plain | quoted (unquoted is an unknown command, as in ldirectord) | either
    pattern: str = ""  # what ldirectord's unanchored regex reads out of the value
    allowed: tuple[str, ...] = ()
    convert: Callable[[str], object] = str
    note: str = ""  # a warning whenever it is used


_D = _Directive
# read_config's per-virtual branches, one entry a directive; anything else is a shared mail/stop setting
# (_shared) or an unknown command.
VIRTUAL_DIRECTIVES = {
    "real": _D("_v_family_only", "reals"),
    "real6": _D("_v_family_only", "reals"),
    "fallback": _D("_v_family_only", "fallback"),
    "fallback6": _D("_v_family_only", "fallback"),
    "request": _D(
        "_v_text", "request", "no request string specified", "quoted",
        convert=lambda val: val if val.startswith("/") else "/" + val,
    ),
    "receive": _D("_v_text", "receive", "invalid receive string", "quoted"),
    "checkcommand": _D("_v_text", "checkcommand", "invalid check command", "either", convert=str.strip),
    "login": _D("_v_text", "login", "invalid login string", "quoted"),
    "passwd": _D("_v_text", "passwd", "invalid password", "quoted"),
    "database": _D("_v_text", "database", "invalid database", "quoted"),
    "secret": _D("_v_text", "secret", "invalid secret", "quoted"),
    "checktype": _D(
        "_v_checktype",
        message='checktype must be "connect", "negotiate", "on", "off", "ping", "external", '
        '"external-perl" or a positive number, not {value!r}',
    ),
    "checktimeout": _D("_v_positive", "checktimeout", "invalid check timeout"),
    "connecttimeout": _D("_v_refused", message="connecttimeout directive deprecated in favour of negotiatetimeout"),
    "negotiatetimeout": _D("_v_positive", "negotiatetimeout", "invalid negotiate timeout"),
    "checkcount": _D(
        "_v_positive", "checkcount", "invalid check count",
        note="checkcount option is deprecated and slated for removal.  please see 'failurecount'",
    ),
    "failurecount": _D("_v_positive", "failurecount", "invalid failure count"),
    "checkinterval": _D("_v_checkinterval", message="invalid checkinterval"),
    "checkport": _D("_v_checkport"),
    "scheduler": _D(
        "_v_scheduler", "scheduler", "invalid scheduler, should be only lowercase letters (a-z)",
        pattern=r"([a-z]+)",
    ),
    "persistent": _D("_v_word", "persistent", "invalid persistent timeout", pattern=r"(\d+)", convert=int),
    "schedflags": _D("_v_word", "schedflags", "invalid sched-flags", pattern=r"(\S+)"),
    "netmask": _D("_v_netmask"),
    "protocol": _D("_v_protocol"),
    "ops": _D("_v_yes_no", "ops", "ops must be 'yes' or 'no', not {raw!r}", convert=lambda val: val == "yes"),
    "quiescent": _D("_v_yes_no", "quiescent"),
    "service": _D(
        "_v_word", "service", f"service must be one of {', '.join(LD_SERVICES)}, not {{value!r}}",
        pattern=r"(\w+)", allowed=LD_SERVICES,
    ),
    "httpmethod": _D("_v_httpmethod"),
    "virtualhost": _D("_v_virtualhost"),
    "servicename": _D("_v_set", "servicename", convert=str.strip),
    "load": _D("_v_not_used", message="invalid string for load testing", quoting="quoted", pattern=r"\w+"),
    "fallbackcommand": _D("_v_not_used", message="invalid fallback command", quoting="either", pattern="."),
    "monitorfile": _D("_v_not_used", quoting="either"),
    "comment": _D("_v_not_used"),
}  # fmt: skip
DIRECTIVE_RE = re.compile(r"^(\w+)\s*=")


class _Parser:
    def __init__(self, plan: Plan, filename: str, hosts: HostsMap, sources: Sources | None, depth: int):
        self.plan = plan
        self.file = filename
        self.hosts = hosts
        self.sources = sources
        self.depth = depth
        self.virtuals: list[_Virtual] = []
        self.g = {
            "checktimeout": -1,
            "negotiatetimeout": -1,
            "checkinterval": 10,
            "checkcount": 1,
            "failurecount": 1,
            "quiescent": "no",
            "fork": "no",
            "fallback": None,  # resolved (address, port | None, forwarding)
            "fallback6": None,
        }
        self.executes: list[tuple[str, int]] = []

    # ---- messages ----------------------------------------------------------------------------------

    def warn(self, line: int, text: str) -> None:
        self.plan.warn(self.file, line, text)

    def error(self, line: int, text: str) -> None:
        self.plan.error(self.file, line, text)

    def _partial(self, line: int, name: str, value: str, used: str) -> None:
        """ldirectord read only `used` out of `value`: say what it ignored."""
        if value.strip() != used:
            self.warn(
                line, f"{name}: ldirectord reads only {used!r} from {value.strip()!r}; the rest is ignored"
            )

    # ---- file structure ----------------------------------------------------------------------------

    def run(self, text: str) -> None:
        lines = split_lines(text)
        i = 0
        while i < len(lines):
            raw, number = lines[i], i + 1
            i += 1
            match = VIRTUAL_RE.match(raw)
            if match:
                # The section ends at the first line that is not indented; that line is read again here.
                i = self._section(match, number, lines, i)
                continue
            if re.match(r"^\s*$", raw) or re.match(r"^\s*#", raw):
                continue
            self._global(raw, number)
        self._finish()

    def _section(self, match: re.Match, number: int, lines: list[str], i: int) -> int:
        family = 6 if match.group(1) else 4
        v = _Virtual(family=family, line=number, file=self.file)
        self._virtual_address(v, match.group(2), number)
        while i < len(lines):
            raw = lines[i]
            if re.match(r"^\s*#", raw):
                i += 1
                continue
            body = re.sub(r"#.*", "", raw).replace("\t", "    ")
            indented = re.match(r"^ {4,}(.+)", body)
            if not indented:
                break
            self._virtual_directive(v, indented.group(1), i + 1)
            i += 1
        if v.host is not None or v.fwmark is not None:
            self.virtuals.append(v)
        return i

    # ---- virtual= --------------------------------------------------------------------------------

    def _virtual_address(self, v: _Virtual, value: str, line: int) -> None:
        match = None
        if v.family == 4 and (match := V4_PORT_RE.match(value)):
            v.host, v.port_text = match.group(1), match.group(2)
        elif match := HOST_PORT_RE.match(value):
            v.host, v.port_text = match.group(1), match.group(2)
        elif match := FWMARK_RE.match(value):
            v.fwmark = int(match.group(1))
            v.protocol, v.service = "fwm", "none"
        elif (match := V6_PORT_RE.match(value)) and v.family == 4:
            self.error(line, 'cannot specify an IPv6 address here. please use "virtual6" instead.')
            return
        elif match := V6_PORT_RE.match(value):
            try:
                ipaddress.IPv6Address(match.group(1))
            except ValueError:
                self.error(line, "invalid ipv6 address for virtual server")
                return
            v.host, v.port_text = f"[{match.group(1)}]", match.group(2)
        else:
            self.error(line, f"invalid address for virtual server: {value.strip()!r}")
            return
        if v.fwmark is not None and value.strip() != match.group(0):
            self.warn(line, f"virtual: ldirectord reads {value.strip()!r} as firewall mark {v.fwmark}")
        else:
            self._partial(line, "virtual", value, match.group(0))
        if v.family == 6 and v.host and not v.host.startswith("[") and value.count(":") > 1:
            self.warn(line, "virtual6: an IPv6 address must be written in brackets, e.g. [2001:db8::1]:80")
        if v.port_text is not None and re.search(r":(53|domain)$", f"{v.host}:{v.port_text}"):
            v.protocol = "udp"

    def _virtual_directive(self, v: _Virtual, cmd: str, line: int) -> None:
        """One indented line of a virtual section, dispatched on its name through VIRTUAL_DIRECTIVES."""
        m = DIRECTIVE_RE.match(cmd)
        directive = VIRTUAL_DIRECTIVES.get(m.group(1)) if m else None
        val = self._directive_value(cmd, m.group(1), directive.quoting, line) if directive else None
        if val is None:  # not a virtual directive (or an unquoted value where ldirectord wants quotes)
            if not self._shared(cmd, line):
                self.error(line, f"Unknown command {cmd.strip()!r}")
            return
        getattr(self, directive.handler)(v, m.group(1), val, line, directive)
        if directive.note:
            self.warn(line, directive.note)

    def _directive_value(self, cmd: str, name: str, quoting: str, line: int) -> str | None:
        """The value as ldirectord's `/^name\\s*=\\s*"(.*)"/` (quoted) or `/^name\\s*=\\s*(.*)/` reads it."""
        if quoting in ("quoted", "either") and (m := re.match(rf'^{name}\s*=\s*"(.*)"', cmd)):
            if rest := cmd[m.end() :].strip():
                self.warn(line, f"{name}: ldirectord ignores {rest!r} after the closing quote")
            return m.group(1)
        if quoting == "quoted":
            return None
        return re.match(rf"^{name}\s*=\s*(.*)", cmd).group(1)

    # Handlers of VIRTUAL_DIRECTIVES: (virtual, directive name, value, line, table entry).

    def _v_text(self, v: _Virtual, name: str, val: str, line: int, d: _Directive) -> None:
        """A value that must not be empty."""
        if not val:
            self.error(line, d.message)
        else:
            setattr(v, d.attr, d.convert(val))

    def _v_set(self, v: _Virtual, name: str, val: str, line: int, d: _Directive) -> None:
        setattr(v, d.attr, d.convert(val))

    def _v_refused(self, v: _Virtual, name: str, val: str, line: int, d: _Directive) -> None:
        self.error(line, d.message)

    def _v_positive(self, v: _Virtual, name: str, val: str, line: int, d: _Directive) -> None:
        setattr(v, d.attr, self._positive(line, name, val, d.message, getattr(v, d.attr)))

    def _v_checkinterval(self, v: _Virtual, name: str, val: str, line: int, d: _Directive) -> None:
        got = self._positive(line, name, val, d.message, -1)
        if got > 0:
            v.checkinterval, v.checkinterval_line = got, line

    def _v_word(self, v: _Virtual, name: str, val: str, line: int, d: _Directive) -> None:
        """The first match of the directive's pattern (ldirectord's unanchored regex), checked against its
        allowed values; the rest of the value is ignored, with a warning."""
        m = re.search(d.pattern, val)
        if not m or (d.allowed and m.group(1) not in d.allowed):
            self.error(line, d.message.format(value=val.strip()))
            return
        self._partial(line, name, val, m.group(1))
        setattr(v, d.attr, d.convert(m.group(1)))
        if hasattr(v, f"{d.attr}_line"):  # where the virtual keeps the line, for messages about the value
            setattr(v, f"{d.attr}_line", line)

    def _v_family_only(self, v: _Virtual, name: str, val: str, line: int, d: _Directive) -> None:
        """real= / fallback= in a virtual= section, real6= / fallback6= in a virtual6= one."""
        if (v.family == 4) == name.endswith("6"):
            want = name.rstrip("6") + ("" if v.family == 4 else "6")
            self.error(line, f'cannot specify "{name}" here.  please use "{want}" instead')
        elif d.attr == "reals":
            v.reals.append((val, line))
        else:
            v.fallback = (val, line)

    def _v_checktype(self, v: _Virtual, name: str, val: str, line: int, d: _Directive) -> None:
        digits = re.search(r"(\d+)", val)
        word = re.search(r"([\w-]+)", val)
        if digits:
            v.checktype, v.num_connects = "combined", int(digits.group(1))
            self._partial(line, name, val, digits.group(1))
        elif word and word.group(1) in LD_CHECKTYPES:
            v.checktype = word.group(1)
            self._partial(line, name, val, word.group(1))
        else:
            self.error(line, d.message.format(value=val.strip()))
            return
        v.checktype_line = line

    def _v_checkport(self, v: _Virtual, name: str, val: str, line: int, d: _Directive) -> None:
        digits = re.search(r"(\d+)", val)
        if not digits:
            self.error(line, "invalid port")
        elif not 0 < int(digits.group(1)) < 65536:
            self.error(line, "checkport must be in range 1..65536")
        else:
            v.checkport = int(digits.group(1))
            self._partial(line, name, val, digits.group(1))

    def _v_scheduler(self, v: _Virtual, name: str, val: str, line: int, d: _Directive) -> None:
        m = re.search(r"([a-z]+)", val)
        if m and m.group(1) not in SCHEDULERS:
            self._partial(line, name, val, m.group(1))
            # ldirectord passes any [a-z]+ on; ipvsadm then fails to add the service.
            self.error(line, f"unknown scheduler {m.group(1)!r}: the kernel has {', '.join(SCHEDULERS)}")
        else:
            self._v_word(v, name, val, line, d)

    def _v_netmask(self, v: _Virtual, name: str, val: str, line: int, d: _Directive) -> None:
        if v.family == 6:
            if not re.match(r"^\d+$", val) or not 1 <= int(val) <= 128:
                self.error(line, "invalid netmask: a prefix length between 1 and 128 is required")
                return
        elif not re.match(r"^\d+\.\d+\.\d+\.\d+$", val):
            self.error(line, f"invalid netmask: dotted quad notation is required, not {val!r}")
            return
        v.netmask, v.netmask_line = val, line

    def _v_protocol(self, v: _Virtual, name: str, val: str, line: int, d: _Directive) -> None:
        m = re.search(r"(\w+)", val)
        if not m:
            self.error(line, "invalid protocol")
        elif v.protocol == "fwm":
            if m.group(1) != "fwm":
                self.error(line, "protocol must be fwm if the virtual service is a fwmark (a number)")
        elif m.group(1) in ("tcp", "udp"):
            v.protocol = m.group(1)
            self._partial(line, name, val, m.group(1))
        else:
            self.error(line, "protocol must be tcp or udp if the virtual service is an address and port")

    def _v_yes_no(self, v: _Virtual, name: str, val: str, line: int, d: _Directive) -> None:
        if val not in YES_NO:
            self.error(line, d.message.format(raw=val) if d.message else self._yes_no_message(name, val))
        else:
            setattr(v, d.attr, d.convert(val))

    def _v_httpmethod(self, v: _Virtual, name: str, val: str, line: int, d: _Directive) -> None:
        m = re.search(r"(\w+)", val)
        if not m or m.group(1).upper() not in ("GET", "HEAD"):
            self.error(line, "httpmethod must be GET or HEAD")
        else:
            v.httpmethod = m.group(1).upper()

    def _v_virtualhost(self, v: _Virtual, name: str, val: str, line: int, d: _Directive) -> None:
        v.virtualhost = re.match(r'"?([^"]*)"?', val).group(1)
        if re.search(r"\s", v.virtualhost.strip()):
            self.warn(line, f"virtualhost {v.virtualhost!r} contains spaces: ldirectord sends it as it is")

    def _v_not_used(self, v: _Virtual, name: str, val: str, line: int, d: _Directive) -> None:
        """Accepted and reported as not used; `message` (if any) is ldirectord's error for a bad value."""
        if d.pattern and not re.search(d.pattern, val):
            self.error(line, d.message)
        else:
            self._not_used(line, name)

    # ---- global directives -------------------------------------------------------------------------

    def _global(self, raw: str, line: int) -> None:  # noqa: C901 - one branch a directive
        def value(name: str, quoted: bool = False) -> str | None:
            pattern = rf'^{name}\s*=\s*"(.*)"' if quoted else rf"^{name}\s*=\s*(.*)"
            m = re.match(pattern, raw)
            return m.group(1) if m else None

        g = self.g
        if (val := value("checktimeout")) is not None:
            g["checktimeout"] = self._positive(line, "checktimeout", val, "invalid check timeout value", -1)
        elif value("connecttimeout") is not None:
            self.error(line, "connecttimeout directive deprecated in favour of negotiatetimeout")
        elif (val := value("negotiatetimeout")) is not None:
            g["negotiatetimeout"] = self._positive(
                line, "negotiatetimeout", val, "invalid negotiate timeout value", -1
            )
        elif (val := value("checkinterval")) is not None:
            g["checkinterval"] = self._positive(
                line, "checkinterval", val, "invalid check interval value", g["checkinterval"]
            )
        elif (val := value("checkcount")) is not None:
            g["checkcount"] = self._positive(line, "checkcount", val, "invalid check count value", 1)
            self.warn(
                line, "checkcount option is deprecated and slated for removal.  please see 'failurecount'"
            )
        elif (val := value("failurecount")) is not None:
            g["failurecount"] = self._positive(line, "failurecount", val, "invalid failure count value", 1)
        elif m := re.match(r"^fallback(6)?\s*=\s*(.*)", raw):
            # Resolved now, as ldirectord does, so a bad global fallback is reported where it is written.
            family = 6 if m.group(1) else 4
            g["fallback6" if m.group(1) else "fallback"] = self._fallback(
                m.group(2), line, None, family, "tcp"
            )
        elif (val := value("fallbackcommand")) is not None:
            if not val:
                self.error(line, "invalid fallback command")
            else:
                self._not_used(line, "fallbackcommand")
        elif (val := value("autoreload")) is not None:
            self._yes_no_not_used(line, "autoreload", val)
        elif value("callback", True) is not None:
            self._not_used(line, "callback")
        elif value("logfile", True) is not None:
            self._not_used(line, "logfile")
        elif (val := value("execute")) is not None:
            self.executes.append((val.strip().strip('"'), line))
        elif (val := value("fork")) is not None:
            if val not in YES_NO:
                self.error(line, self._yes_no_message("fork", val))
            else:
                g["fork"] = val
        elif re.match(r"^supervised", raw):
            if (val := value("supervised")) is not None and val in YES_NO:
                self._not_used(line, "supervised")
            elif re.match(r"^supervised\s*$", raw):
                self.warn(line, "please update your config not to use a bare supervised directive")
            else:
                self.error(line, "supervised must be 'yes' or 'no'")
        elif (val := value("quiescent")) is not None:
            if val not in YES_NO:
                self.error(line, self._yes_no_message("quiescent", val))
            else:
                g["quiescent"] = val
        elif (val := value("readdquiescent")) is not None:
            self._yes_no_not_used(line, "readdquiescent", val)
        elif self._shared(raw, line):
            pass
        elif (val := value("emailalertfrom")) is not None:
            if not val:
                self.error(line, "no email from address specified")
            else:
                self._not_used(line, "emailalertfrom")
        elif (val := value("maintenancedir")) is not None:
            if not val:
                self.error(line, "maintenance directory not specified")
            else:
                self._not_used(line, "maintenancedir")
        elif value("timeout") is not None:
            self.error(line, "timeout directive deprecated in favour of checktimeout and negotiatetimeout")
        elif re.match(r"^\s+\S", raw):
            self.error(
                line,
                f"Unknown command {raw.strip()!r}: an indented line outside a virtual section "
                "(a blank line, or a line indented by fewer than 4 spaces, ends the section)",
            )
        else:
            self.error(line, f"Unknown command {raw.strip()!r}")

    # ---- value helpers -----------------------------------------------------------------------------

    def _shared(self, text: str, line: int) -> bool:
        """Mail and stop settings, read alike globally and per virtual; True when `text` was one."""
        if m := re.match(r"^emailalert\s*=\s*(.*)", text):
            if not m.group(1).strip('"'):
                self.error(line, "no email address specified")
            else:
                self._not_used(line, "emailalert")
        elif m := re.match(r"^emailalertfreq\s*=\s*(\d*)", text):
            if not m.group(1):
                self.error(line, "invalid email alert frequency")
            else:
                self._not_used(line, "emailalertfreq")
        elif m := re.match(r"^emailalertstatus\s*=\s*(.*)", text):
            if self._email_status(line, m.group(1)):
                self._not_used(line, "emailalertstatus")
        elif m := re.match(r"^cleanstop\s*=\s*(.*)", text):
            self._yes_no_not_used(line, "cleanstop", m.group(1))
        elif m := re.match(r"^smtp\s*=\s*(.*)", text):
            if not re.match(r"^([0-9A-Za-z._+-]+)", m.group(1)):
                self.error(line, "invalid SMTP server address")
            else:
                self._not_used(line, "smtp")
        else:
            return False
        return True

    def _positive(self, line: int, name: str, val: str, message: str, keep: int) -> int:
        """ldirectord's `$1 =~ /(\\d+)/ && $1`: the first number in the value, and not 0."""
        m = re.search(r"(\d+)", val)
        if not m or int(m.group(1)) == 0:
            self.error(line, f"{message}: {val.strip()!r}")
            return keep
        self._partial(line, name, val, m.group(1))
        return int(m.group(1))

    def _nonempty(self, line: int, val: str, message: str) -> str | None:
        if not val:
            self.error(line, message)
            return None
        return val

    def _yes_no_message(self, name: str, val: str) -> str:
        hint = ""
        if re.match(r"(yes|no)\b", val.strip()):
            hint = " (ldirectord compares the whole value, so trailing text or blanks make it invalid)"
        return f"{name} must be 'yes' or 'no', not {val!r}{hint}"

    def _yes_no_not_used(self, line: int, name: str, val: str) -> None:
        if val not in YES_NO:
            self.error(line, self._yes_no_message(name, val))
        else:
            self._not_used(line, name)

    def _not_used(self, line: int, name: str) -> None:
        self.warn(line, f"{name} accepted but not used by Ultra Monkey Web ({NOT_USED[name]})")

    def _email_status(self, line: int, val: str) -> bool:
        words = re.split(r"\s*,\s*", val)
        for word in words:
            if word not in ("none", "all", "starting", "stopping", "running", "reloading"):
                self.error(line, f'invalid email alert status at: "{word}"')
                return False
            if word != "none" and "none" in words:
                self.error(line, f'invalid email alert status: "{word}" specified with "none"')
                return False
        return True

    # ---- resolution (after the whole section is read, as ldirectord delays it) ---------------------

    def _fallback(self, text: str, line: int, v: _Virtual | None, family: int, protocol: str):
        """parse_fallback + _ld_read_config_fallback_resolve -> (address, port|None, forwarding) or None."""
        m = re.search(r"(\S+)(\s+(\S+))?\s*$", text)
        hostport, forward = (m.group(1), m.group(3)) if m else (text, None)
        pm = re.search(r"(:(\d+|[A-Za-z0-9_-]+))?$", hostport)
        port_text = pm.group(2)
        host = hostport[: pm.start()] if pm.group(0) else hostport
        if forward and forward not in ("gate", "masq", "ipip"):
            self.error(line, f"forward method must be gate, masq or ipip, not {forward!r}")
            return None
        address = self.hosts.resolve(host, family)
        if address is None:
            self.error(line, self._resolve_message(host, family, "fallback server"))
            return None
        port = None
        if port_text is not None:
            port = service_port(port_text)
            if port is None:
                self.error(line, f"invalid port for fallback server: {port_text!r}")
                return None
        return address, port, forward or "gate"

    def _resolve_message(self, host: str, family: int, what: str) -> str:
        return (
            f"invalid IPv{family} address or could not resolve {host!r} for the {what}: only literal "
            f"addresses and names in the {self.hosts.origin} are accepted (DNS is never queried)"
        )

    def _reals(self, v: _Virtual, service: ServicePlan) -> None:
        seen: dict[tuple, int] = {}
        for text, line in v.reals:
            m = REAL_RE.search(text)
            if not m:
                hint = (
                    ""
                    if re.search(r"\S\s+\S", text)
                    else " (the forwarding method gate, masq or ipip is missing)"
                )
                self.error(line, f"invalid address for real server (wrong format): {text.strip()!r}{hint}")
                continue
            first, last, port_text, flags = m.group(1), m.group(3), m.group(5), m.group(6)
            if m.start() > 0:
                self.warn(line, f"real: ldirectord skips {text[: m.start()]!r} before the address")
            address = self.hosts.resolve(first, v.family)
            if address is None:
                self.error(line, self._resolve_message(first, v.family, "real server"))
                continue
            port = service_port(port_text) if port_text is not None else 0
            if port is None:
                self.error(line, f"invalid port ({port_text}) for real server (could not resolve port)")
                continue
            options = self._real_flags(line, flags)
            if options is None:
                continue
            addresses = [address]
            if last is not None:
                addresses = self._range(line, address, last, v.family)
                if addresses is None:
                    continue
            for one in addresses:
                real = self._real_port(v, service, one, port, options, line)
                key = (real.address, real.port)
                if key in seen:
                    self.warn(
                        line,
                        f"real server {real.address}:{real.port} is already listed at line {seen[key]}; "
                        "this one is ignored",
                    )
                    continue
                seen[key] = line
                service.reals.append(real)

    def _real_flags(self, line: int, flags: str) -> dict | None:
        """add_real_server: `gate|masq|ipip [weight] ["request", "receive"] [l:N] [u:N]`."""
        m = re.match(r"(\w+)(.*)", flags)
        if not m or m.group(1) not in ("gate", "masq", "ipip"):
            self.error(line, f"forward method must be gate, masq or ipip, not {flags.strip()!r}")
            return None
        options = {"forwarding": m.group(1), "weight": 1, "l_threshold": 0, "u_threshold": 0}
        rest = m.group(2)
        if m := re.match(r"\s+(\d+)(.*)", rest):
            options["weight"], rest = int(m.group(1)), m.group(2)
        if m := re.match(r'\s+"(.*)"[, ]\s*"(.*)"(.*)', rest):
            self.warn(
                line,
                f"per-real request/receive ({m.group(1)!r}, {m.group(2)!r}) is not supported: "
                "the virtual service's request and receive are used",
            )
            rest = m.group(3)
        if m := re.match(r"\s+l:(\d+)(.*)", rest):
            options["l_threshold"], rest = int(m.group(1)), m.group(2)
        if m := re.match(r"\s+u:(\d+)(.*)", rest):
            options["u_threshold"], rest = int(m.group(1)), m.group(2)
        if re.search(r"\S", rest):
            self.error(line, f'Invalid real server line, around "{rest.strip()}"')
            return None
        if options["weight"] > 65535:
            self.error(line, f"weight {options['weight']} is out of range (0-65535): ipvsadm refuses it")
            return None
        return options

    def _range(self, line: int, first: str, last_name: str, family: int) -> list[str] | None:
        if family == 6:
            self.error(line, "Address range for IPv6 is not supported yet")
            return None
        last = self.hosts.resolve(last_name, family)
        if last is None:
            self.error(line, self._resolve_message(last_name, family, "end of the real server range"))
            return None
        a, b = int(ipaddress.IPv4Address(first)), int(ipaddress.IPv4Address(last))
        if a > b:
            self.error(line, f"Invalid Range: {first}-{last}: the first address must not be above the last")
            return None
        if b - a + 1 > MAX_REALS_PER_RANGE:
            self.error(
                line, f"range {first}->{last} has {b - a + 1} addresses; at most {MAX_REALS_PER_RANGE}"
            )
            return None
        return [str(ipaddress.IPv4Address(n)) for n in range(a, b + 1)]

    def _real_port(self, v, service: ServicePlan, address: str, port: int, options: dict, line: int):
        configured = port
        if service.protocol != "fwmark":
            if options["forwarding"] in ("gate", "ipip") and port not in (0, service.port):
                self.warn(
                    line,
                    f"real server {address}:{port} uses {options['forwarding']}: the kernel gives it the "
                    f"virtual port {service.port}",
                )
            if options["forwarding"] in ("gate", "ipip") or port == 0:
                if port == 0 and options["forwarding"] == "masq":
                    self.warn(
                        line,
                        f"real server {address} has no port: ldirectord adds it with port 0, which the kernel "
                        f"serves on the virtual port; imported as port {service.port}",
                    )
                port = service.port
        real = RealPlan(address=address, port=port, file=self.file, line=line, **options)
        real.configured_port = configured  # ld_checkport reads it (see _check_ports)
        return real

    def _check_ports(self, v: _Virtual, s: ServicePlan) -> None:
        """ld_checkport: ldirectord checks a real server on checkport, else on its configured port, else on
        the service's port (ld_service_to_port, e.g. 80 for http). Where that is not the port traffic goes to
        (a gate real written with another port, a real without a port) the real keeps it as its check_port,
        so the import checks what ldirectord checked; the warning names both ports and the setting."""
        if s.checkport or s.checktype in ("ping", "external", "on", "off"):
            return
        service = v.service if v.service is not None else PORT_SERVICE.get(s.port or 0, "none")
        for real in s.reals:
            configured = getattr(real, "configured_port", real.port)
            port = configured or LD_SERVICE_PORTS.get(service, 0)
            if port and port != real.port:
                real.check_port = port
                self.warn(
                    real.line,
                    f"real server {real.address}: ldirectord checks it on port {port}, traffic goes to port "
                    f"{real.port}; checked on {port} as ldirectord does (the service setting 'check the "
                    f"traffic port' moves the check to {real.port})",
                )

    # ---- ld_setup: from ldirectord's view to the plan ----------------------------------------------

    def _finish(self) -> None:
        seen: dict[tuple, int] = {}
        for v in self.virtuals:
            service = self._service(v)
            if service is None:
                continue
            key = service.key
            if key in seen:
                self.error(v.line, f"duplicate virtual server {service.label} (first at line {seen[key]})")
                continue
            seen[key] = v.line
            self._reals(v, service)
            self._check_ports(v, service)
            self.plan.services.append(service)
        self.plan.settings.setdefault(self.file, {}).update(
            {
                k: v
                for k, v in self.g.items()
                if k not in ("fallback", "fallback6") and v != -1 and not (k == "checkcount" and v == 1)
            }
        )

    def _service(self, v: _Virtual) -> ServicePlan | None:
        s = ServicePlan(file=self.file, line=v.line, family=v.family, scheduler=v.scheduler)
        if v.fwmark is not None:
            if v.fwmark == 0:
                self.error(v.line, "a firewall mark must be at least 1")
                return None
            s.protocol, s.fwmark = "fwmark", v.fwmark
        else:
            address = self.hosts.resolve(v.host, v.family)
            if address is None:
                self.error(v.line, self._resolve_message(v.host, v.family, "virtual service"))
                return None
            port = service_port(v.port_text)
            if port is None:
                self.error(v.line, f"invalid port {v.port_text!r} for the virtual service")
                return None
            if port == 0:
                self.error(v.line, "port 0 is not supported for a virtual service (use a firewall mark)")
                return None
            s.protocol, s.address, s.port = v.protocol, address, port
        self._persistence(v, s)
        self._flags(v, s)
        self._check(v, s)
        self._timing(v, s)
        if v.servicename:
            s.name = v.servicename[:100]
        self._apply_fallback(v, s)
        return s

    def _persistence(self, v: _Virtual, s: ServicePlan) -> None:
        if v.persistent is not None:
            if v.persistent == 0:
                self.error(v.persistent_line, "persistent=0 is refused by ipvsadm (the timeout must be >= 1)")
            s.persistence = v.persistent
            full = "128" if v.family == 6 else "255.255.255.255"
            if v.netmask and v.netmask != full:
                s.netmask = v.netmask
        elif v.netmask:
            self.warn(v.netmask_line, "netmask without persistent: ldirectord ignores it")

    def _flags(self, v: _Virtual, s: ServicePlan) -> None:
        flags = []
        if v.schedflags:
            flags = [f for f in v.schedflags.split(",") if f]
            for flag in flags:
                if flag not in ("sh-fallback", "sh-port", "mh-fallback", "mh-port"):
                    self.error(v.schedflags_line, f"unknown scheduler flag {flag!r}: ipvsadm refuses it")
        if v.ops:
            if s.protocol == "udp":
                flags.append("ops")
            else:
                self.warn(v.line, "ops=yes only applies to UDP services: ldirectord ignores it here")
        s.sched_flags = flags

    def _check(self, v: _Virtual, s: ServicePlan) -> None:
        service = v.service
        if service is None:
            service = PORT_SERVICE.get(s.port or 0, "none")
        checktype = v.checktype
        if checktype == "combined":
            if v.num_connects == 0:
                self.warn(v.checktype_line, "checktype=0 negotiates on every check: imported as negotiate")
                checktype = "negotiate"
            else:
                s.check_every = v.num_connects
                checktype = "negotiate"
        if checktype == "external-perl":
            self.warn(v.checktype_line, "checktype=external-perl is run as an external program under perl")
            checktype = "external"
            s.external_program = f"perl {v.checkcommand or '/bin/true'}"
        elif checktype == "external":
            s.external_program = v.checkcommand or "/bin/true"
        elif v.checkcommand:
            s.external_program = v.checkcommand
        line = v.service_line or v.checktype_line or v.line
        if service == "submission":
            service = "smtp"  # ldirectord checks both with check_smtp
        elif service == "ldaps":
            self.warn(line, "service=ldaps is checked as ldap (ldirectord runs the same LDAP check)")
            service = "ldap"
        elif service == "oracle":
            if checktype == "negotiate":
                self.warn(line, "service=oracle has no negotiate check here: imported as a connect check")
                checktype, s.check_every = "connect", 0
            service = "none"
        s.checktype, s.check_service = checktype, service
        s.request = v.request or ""
        s.receive = v.receive or ""
        s.httpmethod = v.httpmethod
        s.virtualhost = (v.virtualhost or "").strip()
        s.checkport = v.checkport
        s.login, s.passwd = v.login or "", v.passwd or ""
        s.database, s.secret = v.database or "", v.secret or ""
        if v.checkcount > 0:
            s.retries = v.checkcount
        elif self.g["checkcount"] > 1:
            s.retries = self.g["checkcount"]

    def _timing(self, v: _Virtual, s: ServicePlan) -> None:
        g = self.g
        checktimeout = next(
            (
                t
                for t in (v.checktimeout, v.negotiatetimeout, g["checktimeout"], g["negotiatetimeout"])
                if t > 0
            ),
            5,
        )
        negotiate = next(
            (
                t
                for t in (v.negotiatetimeout, v.checktimeout, g["negotiatetimeout"], g["checktimeout"])
                if t > 0
            ),
            30,
        )
        s.checktimeout, s.negotiatetimeout = float(checktimeout), float(negotiate)
        interval = g["checkinterval"]
        if v.checkinterval is not None:
            if g["fork"] == "yes":
                interval = v.checkinterval
            else:
                self.warn(v.checkinterval_line, "checkinterval in a virtual service is ignored when fork=no")
        s.checkinterval = float(interval)
        s.failurecount = v.failurecount if v.failurecount > 0 else g["failurecount"]
        s.quiescent = (v.quiescent or g["quiescent"]) == "yes"

    def _apply_fallback(self, v: _Virtual, s: ServicePlan) -> None:
        protocol = s.protocol if s.protocol != "fwmark" else "tcp"
        if v.fallback is not None:
            text, line = v.fallback
            got = self._fallback(text, line, v, v.family, protocol)
            if got is None:
                return
            address, port, forwarding = got
            if port is None:
                port = s.port  # parse_fallback: the virtual's port
        else:
            got = self.g["fallback6" if v.family == 6 else "fallback"]
            if got is None:
                return
            if s.protocol == "fwmark":
                self.warn(
                    v.line, "the global fallback does not apply to a firewall-mark service; set one here"
                )
                return
            address, port, forwarding = got
            port = port or s.port
        s.fallback_address, s.fallback_port, s.fallback_forwarding = address, port or None, forwarding

    # ---- execute= ----------------------------------------------------------------------------------

    def follow_executes(self) -> None:
        for name, line in self.executes:
            if self.sources is None:
                self.warn(line, f"execute={name}: that configuration was not read (no files to read it from)")
                continue
            if len(self.plan.files) >= MAX_FILES:
                self.error(line, f"execute={name}: more than {MAX_FILES} configurations")
                continue
            if self.depth + 1 > MAX_INCLUDE_DEPTH:
                self.error(line, f"execute={name}: configurations execute each other too deeply")
                continue
            try:
                shown, text = self.sources.read(name, self.file)
            except OSError as exc:
                self.error(line, f"execute={name}: cannot read it: {exc}")
                continue
            if shown in self.plan.files:
                self.warn(line, f"execute={name}: already read, not read again")
                continue
            self.warn(line, f"execute={name}: a second ldirectord instance; its services are imported too")
            parse_into(self.plan, text, shown, self.hosts, self.sources, self.depth + 1)


def parse_into(
    plan: Plan, text: str, filename: str, hosts: HostsMap, sources: Sources | None, depth: int = 0
) -> None:
    plan.files.append(filename)
    parser = _Parser(plan, filename, hosts, sources, depth)
    parser.run(text)
    parser.follow_executes()
    if depth == 0:
        # Two instances managing the same kernel service would fight over it.
        seen: dict[tuple, ServicePlan] = {}
        for s in plan.services:
            if s.key in seen:
                plan.error(s.file, s.line, f"{s.label} is also defined at {seen[s.key].where}")
            seen.setdefault(s.key, s)


def parse(
    text: str,
    *,
    filename: str = "ldirectord.cf",
    hosts: HostsMap | None = None,
    sources: Sources | None = None,
) -> Plan:
    """Read an ldirectord.cf text into a Plan (errors and warnings carry file:line)."""
    plan = Plan(format=FORMAT, source=filename)
    parse_into(plan, text, filename, hosts or HostsMap(), sources)
    return plan.finish()
