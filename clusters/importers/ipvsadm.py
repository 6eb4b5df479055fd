"""`ipvsadm -S` / `ipvsadm -R` text -> Plan.

The save format is a list of ipvsadm command lines (`-A -t 10.0.0.1:80 -s wrr -p 300`, `-a -t ... -r ...
-m -w 1`). We read it the way ipvsadm's option parser does, with its defaults: scheduler wlc, forwarding
gate (direct routing), weight 1, `-p` without a value = 300 s, netmask 255.255.255.255 (IPv6: 128), a real
server without a port takes the virtual port, and gate/ipip real servers always get the virtual port
(ipvsadm's process_options forces it). Lines pasted from a shell script (`ipvsadm -A ...`), `-C`, `-E`, `-e`,
`-D`, `-d` and popt-style bundles (`-at`) are understood too, so a hand-written restore script imports as the
kernel would end up after running it.

An IPVS table has no health checks: services are imported with checktype=on (real servers always in), and
the preview says so once.
"""

from __future__ import annotations

import ipaddress
import re
import shlex

from .plan import SCHEDULERS, HostsMap, Plan, RealPlan, ServicePlan, service_port, split_lines

FORMAT = "ipvsadm"
DEFAULT_PERSISTENCE = 300

COMMANDS = {
    "-A": "add-service", "--add-service": "add-service", "-E": "edit-service", "--edit-service": "edit-service",
    "-D": "delete-service", "--delete-service": "delete-service", "-C": "clear", "--clear": "clear",
    "-a": "add-server", "--add-server": "add-server", "-e": "edit-server", "--edit-server": "edit-server",
    "-d": "delete-server", "--delete-server": "delete-server", "-R": "restore", "--restore": "restore",
    "-S": "save", "--save": "save", "--set": "set", "--start-daemon": "daemon", "--stop-daemon": "daemon",
    "-L": "list", "-l": "list", "--list": "list", "-Z": "zero", "--zero": "zero",
}  # fmt: skip
WITH_VALUE = {
    "-t": "tcp", "--tcp-service": "tcp", "-u": "udp", "--udp-service": "udp", "--sctp-service": "sctp",
    "-f": "fwmark", "--fwmark-service": "fwmark", "-s": "scheduler", "--scheduler": "scheduler",
    "-M": "netmask", "--netmask": "netmask", "-r": "real", "--real-server": "real", "-w": "weight",
    "--weight": "weight", "-x": "u_threshold", "--u-threshold": "u_threshold", "-y": "l_threshold",
    "--l-threshold": "l_threshold", "-b": "sched_flags", "--sched-flags": "sched_flags", "--pe": "pe",
    "--tun-type": "tun", "--tun-port": "tun", "--mcast-interface": "daemon", "--syncid": "daemon",
}  # fmt: skip
FLAGS = {
    "-g": "gate", "--gatewaying": "gate", "-m": "masq", "--masquerading": "masq", "-i": "ipip",
    "--ipip": "ipip", "-6": "ipv6", "--ipv6": "ipv6", "-o": "ops", "--ops": "ops", "-n": "numeric",
    "--numeric": "numeric", "--tun-nocsum": "tun", "--tun-csum": "tun", "--tun-remcsum": "tun",
}  # fmt: skip
SHORT_WITH_VALUE = set("tufsMrwxyb")
SHORT_FLAGS = set("gmi6on")
SHORT_COMMANDS = set("AEDCaedRSLlZ")
_number = re.compile(r"[0-9]{1,20}").fullmatch  # not str.isdigit(): it takes "²", which int() refuses
_PLAIN = re.compile(r"[^'\"\\#]*")  # no quotes, escapes or comments: plain whitespace splitting is the same


class _Line:
    """One ipvsadm invocation, its options read into a dict."""

    def __init__(self, number: int):
        self.number = number
        self.command: str | None = None
        self.opts: dict[str, str | bool] = {}


class _Parser:
    def __init__(self, plan: Plan, filename: str, hosts: HostsMap):
        self.plan = plan
        self.file = filename
        self.hosts = hosts
        self.services: dict[tuple, ServicePlan] = {}
        # (address, port) -> RealPlan per service key: finding a real server is a lookup, not a scan
        self.reals: dict[tuple, dict[tuple, RealPlan]] = {}
        self.addresses: dict[tuple, tuple] = {}  # _address() answers, each text parsed once

    def error(self, line: int, text: str) -> None:
        self.plan.error(self.file, line, text)

    def warn(self, line: int, text: str) -> None:
        self.plan.warn(self.file, line, text)

    def run(self, text: str) -> None:
        for index, raw in enumerate(split_lines(text)):
            number = index + 1
            stripped = raw.strip()
            if not stripped or stripped.startswith("#"):
                continue
            try:
                # shlex only where it changes something: it costs ~0.1 ms a line, seconds on a big table
                words = (
                    stripped.split() if _PLAIN.fullmatch(stripped) else shlex.split(stripped, comments=True)
                )
            except ValueError as exc:
                self.error(number, f"cannot split the line into words: {exc}")
                continue
            if words and words[0].rsplit("/", 1)[-1] == "ipvsadm":
                words = words[1:]
            if not words:
                continue
            line = self._options(words, number)
            if line is not None:
                self._run(line)
        self.plan.services.extend(self.services.values())
        if self.plan.services:
            self.warn(0, "an IPVS table has no health checks: services are imported with checktype=on")

    def _expand(self, words: list[str], number: int) -> list[str] | None:
        """popt bundles (`-at`) and `--opt=value` into separate words."""
        out: list[str] = []
        for word in words:
            if word.startswith("--") and "=" in word:
                out.extend(word.split("=", 1))
            elif re.fullmatch(r"-[A-Za-z6]{2,}", word):
                for i, char in enumerate(word[1:]):
                    if char not in SHORT_WITH_VALUE | SHORT_FLAGS | SHORT_COMMANDS | {"p"}:
                        self.error(number, f"unknown option -{char} in {word}")
                        return None
                    out.append("-" + char)
                    if char in SHORT_WITH_VALUE and i < len(word) - 2:
                        out.append(word[i + 2 :])
                        break
            else:
                out.append(word)
        return out

    def _options(self, words: list[str], number: int) -> _Line | None:
        words = self._expand(words, number)
        if words is None:
            return None
        line = _Line(number)
        i = 0
        while i < len(words):
            word = words[i]
            i += 1
            if word in COMMANDS:
                if line.command is not None:
                    self.error(number, f"two commands on one line: {line.command} and {COMMANDS[word]}")
                    return None
                line.command = COMMANDS[word]
            elif word in ("-p", "--persistent"):
                if i < len(words) and _number(words[i]):
                    line.opts["persistent"] = words[i]
                    i += 1
                else:
                    line.opts["persistent"] = str(DEFAULT_PERSISTENCE)
            elif word in WITH_VALUE:
                if i >= len(words):
                    self.error(number, f"option {word} needs a value")
                    return None
                line.opts[WITH_VALUE[word]] = words[i]
                if WITH_VALUE[word] in ("tcp", "udp", "sctp", "fwmark"):
                    line.opts["kind"] = WITH_VALUE[word]
                i += 1
            elif word in FLAGS:
                if FLAGS[word] in ("gate", "masq", "ipip"):
                    line.opts["forwarding"] = FLAGS[word]
                else:
                    line.opts[FLAGS[word]] = True
            else:
                self.error(number, f"unknown option or stray value {word!r}")
                return None
        if line.command is None:
            self.error(number, "no command (-A, -a, -E, -e, -D, -d or -C) on this line")
            return None
        return line

    # ---- commands ----------------------------------------------------------------------------------

    def _run(self, line: _Line) -> None:
        n = line.number
        command = line.command
        if command == "clear":
            if self.services:
                self.warn(n, f"-C clears the {len(self.services)} services defined above")
            self.services.clear()
            self.reals.clear()
            return
        if command in ("set", "daemon", "zero", "list", "save", "restore"):
            self.warn(n, f"{command} is not part of the table: ignored")
            return
        if "tun" in line.opts or "pe" in line.opts:
            self.warn(n, "tunnel options and persistence engines are not imported")
        key_service = self._service_of(line)
        if key_service is None:
            return
        key, service = key_service
        if command in ("add-service", "edit-service"):
            existing = self.services.get(key)
            if command == "add-service" and existing is not None:
                self.error(
                    n, f"{service.label} is already defined at line {existing.line} (ipvsadm: File exists)"
                )
                return
            if command == "edit-service" and existing is None:
                self.error(n, f"-E on {service.label}, which is not defined (ipvsadm: No such service)")
                return
            if existing is not None:
                service.reals, service.line = existing.reals, existing.line
            if self._service_options(line, service):
                self.services[key] = service
                self.reals.setdefault(key, {})
        elif command == "delete-service":
            self.reals.pop(key, None)
            if self.services.pop(key, None) is None:
                self.error(n, f"-D on {service.label}, which is not defined (ipvsadm: No such service)")
        else:
            target = self.services.get(key)
            if target is None:
                self.error(n, f"{service.label} is not defined above this line (ipvsadm: No such service)")
                return
            self._server(line, target, self.reals[key])

    def _service_of(self, line: _Line) -> tuple[tuple, ServicePlan] | None:
        n = line.number
        kind = line.opts.get("kind")
        if kind is None:
            self.error(n, "no virtual service (-t, -u, --sctp-service or -f) on this line")
            return None
        text = str(line.opts[kind])
        service = ServicePlan(file=self.file, line=n, checktype="on")
        if kind == "fwmark":
            if not _number(text) or not 1 <= int(text) <= 2**32 - 1:
                self.error(n, f"illegal fwmark {text!r}")
                return None
            service.protocol, service.fwmark = "fwmark", int(text)
            service.family = 6 if line.opts.get("ipv6") else 4
        else:
            if line.opts.get("ipv6"):
                self.error(n, "-6 only goes with -f (a firewall-mark service)")
                return None
            parsed = self._address(text, n, "virtual service", need_port=True)
            if parsed is None:
                return None
            service.protocol = kind
            service.address, service.port, service.family = parsed
        return service.key, service

    def _address(self, text: str, n: int, what: str, need_port: bool = False, family: int | None = None):
        """`1.2.3.4[:port]`, `[2001:db8::1][:port]` or a local host name -> (address, port|None, family)."""
        key = (text, what, need_port, family)
        if key not in self.addresses:
            parsed = self._parse_address(text, n, what, need_port, family)
            if parsed is None:
                return None  # errors are not cached: each line with it gets its own
            self.addresses[key] = parsed
        return self.addresses[key]

    def _parse_address(self, text: str, n: int, what: str, need_port: bool, family: int | None):
        m = re.fullmatch(r"\[([^\]]+)\](?::([^:]+))?", text) or re.fullmatch(
            r"([^:\[\]]+)(?::([^:]+))?", text
        )
        if m is None:
            try:  # a bare IPv6 address without a port
                address = ipaddress.IPv6Address(text)
            except ValueError:
                self.error(n, f"illegal {what} address[:port] {text!r}")
                return None
            host, port_text = str(address), None
        else:
            host, port_text = m.group(1), m.group(2)
        address = None
        for fam in (family,) if family else (4, 6):
            address = self.hosts.resolve(host, fam)
            if address:
                break
        if address is None:
            self.error(
                n,
                f"cannot resolve {host!r} for the {what}: only literal addresses and names in the "
                f"{self.hosts.origin} are accepted (DNS is never queried)",
            )
            return None
        port = None
        if port_text is not None:
            port = service_port(port_text)
            if port is None:
                self.error(n, f"illegal port {port_text!r} for the {what}")
                return None
        if need_port and not port:
            self.error(n, f"the {what} {text!r} needs a port from 1 to 65535")
            return None
        return address, port, 6 if ":" in address else 4  # resolve() answered a canonical address

    def _service_options(self, line: _Line, s: ServicePlan) -> bool:
        n, opts = line.number, line.opts
        scheduler = str(opts.get("scheduler", "wlc"))
        if scheduler not in SCHEDULERS:
            self.error(n, f"unknown scheduler {scheduler!r}: the kernel has {', '.join(SCHEDULERS)}")
            return False
        s.scheduler = scheduler
        flags = [f for f in str(opts.get("sched_flags", "")).split(",") if f]
        for flag in flags:
            if flag not in ("sh-fallback", "sh-port", "mh-fallback", "mh-port", "flag-1", "flag-2", "flag-3"):
                self.error(n, f"unknown scheduler flag {flag!r}")
                return False
        s.sched_flags = [
            {"flag-1": f"{scheduler}-fallback", "flag-2": f"{scheduler}-port"}.get(f, f) for f in flags
        ]
        if "flag-3" in s.sched_flags:
            self.warn(n, "scheduler flag flag-3 has no meaning for the kernel's schedulers: ignored")
            s.sched_flags.remove("flag-3")
        if opts.get("ops"):
            s.sched_flags.append("ops")
        if "persistent" in opts:
            timeout = int(str(opts["persistent"]))
            if timeout < 1:
                self.error(n, "illegal timeout for persistent service (at least 1 second)")
                return False
            s.persistence = timeout
        if "netmask" in opts:
            mask = str(opts["netmask"])
            full = "128" if s.family == 6 else "255.255.255.255"
            if s.family == 6 and not (_number(mask) and 1 <= int(mask) <= 128):
                self.error(n, f"illegal ipv6 netmask {mask!r}")
                return False
            if s.family == 4:
                try:
                    ipaddress.IPv4Network(f"0.0.0.0/{mask}")
                except ValueError:
                    self.error(n, f"illegal virtual server persistent mask {mask!r}")
                    return False
            s.netmask = "" if mask == full or not s.persistence else mask
        return True

    def _server(self, line: _Line, service: ServicePlan, index: dict[tuple, RealPlan]) -> None:
        n, opts = line.number, line.opts
        if "real" not in opts:
            self.error(n, "no real server (-r) on this line")
            return
        parsed = self._address(str(opts["real"]), n, "real server")
        if parsed is None:
            return
        address, port, _family = parsed
        forwarding = str(opts.get("forwarding", "gate"))
        if service.protocol != "fwmark":
            if port is None or forwarding in ("gate", "ipip"):
                port = service.port
        port = port or 0
        existing = index.get((address, port))
        if line.command == "delete-server":
            if existing is None:
                self.error(n, f"-d on {address}:{port}, which is not in {service.label}")
            else:
                service.reals.remove(existing)
                del index[(address, port)]
            return
        if line.command == "add-server" and existing is not None:
            self.error(n, f"{address}:{port} is already in {service.label} (line {existing.line})")
            return
        if line.command == "edit-server" and existing is None:
            self.error(n, f"-e on {address}:{port}, which is not in {service.label}")
            return
        values = {}
        for name, low, high in (
            ("weight", 0, 65535),
            ("u_threshold", 0, 2**31 - 1),
            ("l_threshold", 0, 2**31 - 1),
        ):
            if name in opts:
                text = str(opts[name])
                if not _number(text) or not low <= int(text) <= high:
                    self.error(n, f"illegal {name.replace('_', '-')} {text!r} ({low}-{high})")
                    return
                values[name] = int(text)
        if existing is not None:  # -e keeps what it does not name, as the kernel does
            existing.forwarding = str(opts.get("forwarding", existing.forwarding))
            for name, number in values.items():
                setattr(existing, name, number)
            return
        real = RealPlan(address=address, port=port, forwarding=forwarding, file=self.file, line=n, **values)
        service.reals.append(real)
        index[(address, port)] = real


def parse(text: str, *, filename: str = "ipvsadm.rules", hosts: HostsMap | None = None, sources=None) -> Plan:
    """Read `ipvsadm -S` output (or an ipvsadm -R script) into a Plan."""
    plan = Plan(format=FORMAT, source=filename, files=[filename])
    _Parser(plan, filename, hosts or HostsMap()).run(text)
    return plan.finish()
