"""keepalived.conf -> Plan: the virtual_server / real_server blocks and their checkers.

keepalived's configuration is a tree of `keyword args { ... }` blocks; `#` and `!` start comments, braces are
words of their own and `include <glob>` splices other files in (relative names are taken relative to the
including file). We build that tree (file:line on every node), then map what IPVS needs onto our model:

* virtual_server IP PORT | fwmark N | group NAME (a virtual_server_group is expanded into one service per
  member, with a warning saying so);
* delay_loop -> checkinterval, lb_algo/lvs_sched -> scheduler (keepalived default wlc), lb_kind/lvs_method
  NAT|DR|TUN -> forwarding (default NAT), persistence_timeout / persistence_granularity, protocol, quorum,
  hysteresis, sorry_server -> fallback, sh-port/sh-fallback/mh-port/mh-fallback/ops -> scheduler flags;
* real_server: weight, inhibit_on_failure -> the real's own quiescent, uthreshold/lthreshold, per-real
  lvs_method; alpha (virtual_server) -> start down;
* keepalived's semantics where they differ from ldirectord's: the sorry server follows the quorum on the
  live weight with hysteresis (fallback rule keepalived), HTTP_GET follows no redirect, and TCP_CHECK on a
  UDP service does a TCP handshake;
* checkers: HTTP_GET/SSL_GET -> negotiate http/https (url path -> request, status_code -> expected status,
  digest reported as not checked), TCP_CHECK -> connect, MISC_CHECK -> external, SMTP_CHECK -> negotiate
  smtp, DNS_CHECK -> negotiate dns, PING_CHECK -> ping; connect_timeout, retry/nb_get_retry,
  delay_before_retry, connect_port -> checkport. No checker at all means always up (checktype=on).

Our check settings live on the virtual service, keepalived's on each real server: the first real server's
checker is used and any real server whose checker differs is reported. VRRP, global_defs and the other
daemon-wide blocks are reported as not imported, with their line numbers.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from .plan import (
    MAX_FILES,
    MAX_INCLUDE_DEPTH,
    SCHEDULERS,
    HostsMap,
    Plan,
    RealPlan,
    ServicePlan,
    Sources,
    split_lines,
)

FORMAT = "keepalived"
LB_KIND = {"NAT": "masq", "DR": "gate", "TUN": "ipip"}
NOT_IMPORTED = {
    "global_defs": "daemon settings",
    "vrrp_instance": "VRRP comes from the director pair settings (the agents run keepalived), not from an import",
    "vrrp_sync_group": "VRRP comes from the director pair settings (the agents run keepalived), not from an import",
    "vrrp_script": "VRRP tracking scripts are not imported",
    "vrrp_track_process": "VRRP tracking is not imported",
    "track_file": "VRRP tracking is not imported",
    "static_ipaddress": "addresses are managed per director",
    "static_routes": "routes are not managed",
    "static_rules": "routing rules are not managed",
    "linkbeat_interfaces": "not used",
    "garp_group": "VRRP is not imported",
    "bfd_instance": "BFD is not imported",
    "net_namespace": "not used",
}
CHECKERS = ("HTTP_GET", "SSL_GET", "TCP_CHECK", "MISC_CHECK", "SMTP_CHECK", "DNS_CHECK", "PING_CHECK")
UNSUPPORTED_CHECKERS = ("UDP_CHECK", "FILE_CHECK", "BFD_CHECK")
NOT_USED_VS = ("ha_suspend", "omega", "quorum_up", "quorum_down", "smtp_alert", "notify_up",
               "notify_down", "sorry_server_inhibit", "warmup")  # fmt: skip


@dataclass
class Node:
    keyword: str
    args: list[str]
    file: str
    line: int
    children: list[Node] | None = None

    def find(self, keyword: str) -> Node | None:
        return next((c for c in self.children or () if c.keyword == keyword), None)

    def all(self, *keywords: str) -> list[Node]:
        return [c for c in self.children or () if c.keyword in keywords]


@dataclass
class _Check:
    """One checker, reduced to our model's check fields (for comparison between real servers)."""

    values: dict = field(default_factory=dict)
    node: Node | None = None


# ---- reading the tree ---------------------------------------------------------------------------------


def _words(raw: str) -> list[str]:
    """keepalived's tokenizer: quotes group, braces stand alone, `#`/`!` at a word start end the line."""
    words: list[str] = []
    i, n = 0, len(raw)
    while i < n:
        c = raw[i]
        if c.isspace():
            i += 1
        elif c in "#!":
            break
        elif c in "{}":
            words.append(c)
            i += 1
        elif c == '"':
            end = raw.find('"', i + 1)
            end = n if end < 0 else end
            words.append(raw[i + 1 : end])
            i = end + 1
        else:
            j = i
            while j < n and not raw[j].isspace() and raw[j] not in '{}"':
                j += 1
            words.append(raw[i:j])
            i = j
    return words


class _Reader:
    def __init__(self, plan: Plan, sources: Sources | None):
        self.plan = plan
        self.sources = sources

    def lines(self, text: str, filename: str, depth: int = 0):
        """(file, line, words) for every non-empty line, with `include` files spliced in."""
        self.plan.files.append(filename)
        for index, raw in enumerate(split_lines(text)):
            words = _words(raw)
            if not words:
                continue
            if words[0] == "include":
                yield from self._include(words, filename, index + 1, depth)
                continue
            yield filename, index + 1, words

    def _include(self, words, filename, line, depth):
        if len(words) < 2:
            self.plan.error(filename, line, "include needs a file name or pattern")
            return
        if self.sources is None:
            self.plan.warn(filename, line, f"include {words[1]}: not read (no files to read it from)")
            return
        if depth + 1 > MAX_INCLUDE_DEPTH:
            self.plan.error(filename, line, f"include {words[1]}: files include each other too deeply")
            return
        names = self.sources.glob(words[1], filename)
        if not names:
            self.plan.warn(filename, line, f"include {words[1]}: no file matches (keepalived skips it too)")
        for name in names:
            if len(self.plan.files) >= MAX_FILES:
                self.plan.error(filename, line, f"include {words[1]}: more than {MAX_FILES} files")
                return
            try:
                shown, text = self.sources.read(name, "")  # glob already resolved it
            except OSError as exc:
                self.plan.error(filename, line, f"include {name}: cannot read it: {exc}")
                continue
            if shown in self.plan.files:
                self.plan.warn(filename, line, f"include {name}: already read, not read again")
                continue
            yield from self.lines(text, shown, depth + 1)

    def tree(self, text: str, filename: str) -> list[Node]:
        root: list[Node] = []
        stack: list[tuple[list[Node], Node | None]] = [(root, None)]
        for file, line, words in self.lines(text, filename):
            buffer: list[str] = []
            for word in words:
                if word == "{":
                    current = stack[-1][0]
                    if buffer:
                        node = Node(buffer[0], buffer[1:], file, line, [])
                        current.append(node)
                    elif current and current[-1].children is None:
                        node = current[-1]  # `{` on the line after its keyword
                        node.children = []
                    else:
                        self.plan.error(file, line, "'{' without a keyword before it")
                        node = Node("?", [], file, line, [])
                    stack.append((node.children, node))
                    buffer = []
                elif word == "}":
                    if buffer:
                        stack[-1][0].append(Node(buffer[0], buffer[1:], file, line))
                        buffer = []
                    if len(stack) == 1:
                        self.plan.error(file, line, "'}' without a block to close")
                    else:
                        stack.pop()
                else:
                    buffer.append(word)
            if buffer:
                stack[-1][0].append(Node(buffer[0], buffer[1:], file, line))
        for _, node in stack[1:]:
            self.plan.error(node.file, node.line, f"{node.keyword}: block is never closed (missing '}}')")
        return root


# ---- interpreting it -------------------------------------------------------------------------------


class _Interpreter:
    def __init__(self, plan: Plan, hosts: HostsMap):
        self.plan = plan
        self.hosts = hosts
        self.groups: dict[str, Node] = {}

    def error(self, node: Node, text: str) -> None:
        self.plan.error(node.file, node.line, text)

    def warn(self, node: Node, text: str) -> None:
        self.plan.warn(node.file, node.line, text)

    def number(self, node: Node, index: int = 0, *, kind=int, low=0, high=2**31 - 1, default=None):
        if len(node.args) <= index:
            if default is not None:
                return default
            self.error(node, f"{node.keyword} needs a value")
            return None
        text = node.args[index]
        try:
            value = kind(text)
        except ValueError:
            self.error(node, f"{node.keyword}: {text!r} is not a number")
            return None
        if not low <= value <= high:
            self.error(node, f"{node.keyword}: {text} is out of range ({low}-{high})")
            return None
        return value

    def run(self, nodes: list[Node]) -> None:
        for node in nodes:
            if node.keyword == "virtual_server_group":
                if node.args:
                    self.groups[node.args[0]] = node
        seen: dict[tuple, ServicePlan] = {}
        for node in nodes:
            if node.keyword == "virtual_server":
                for service in self.virtual_server(node):
                    if service.key in seen:
                        self.error(node, f"{service.label} is already defined at {seen[service.key].where}")
                        continue
                    seen[service.key] = service
                    self.plan.services.append(service)
            elif node.keyword == "virtual_server_group":
                pass
            elif node.keyword in NOT_IMPORTED:
                name = f" {node.args[0]}" if node.args else ""
                self.warn(node, f"{node.keyword}{name} not imported: {NOT_IMPORTED[node.keyword]}")
                self.plan.settings.setdefault("not imported", []).append(
                    f"{node.keyword}{name} ({node.file}:{node.line})"
                )
            else:
                self.warn(node, f"unknown keyword {node.keyword!r} ignored (keepalived ignores it too)")

    # ---- virtual_server ----------------------------------------------------------------------------

    def _endpoints(self, node: Node) -> list[tuple] | None:
        """[(address|None, port|None, fwmark|None)] for `virtual_server ...` (groups expanded)."""
        args = node.args
        if not args:
            self.error(node, "virtual_server needs an address and port, fwmark N or group NAME")
            return None
        if args[0] == "fwmark":
            mark = self.number(node, 1, low=1, high=2**32 - 1)
            return None if mark is None else [(None, None, mark)]
        if args[0] == "group":
            if len(args) < 2 or args[1] not in self.groups:
                self.error(node, f"virtual_server group {args[1] if len(args) > 1 else ''!r} is not defined")
                return None
            group = self.groups[args[1]]
            out: list[tuple] = []
            for member in group.children or ():
                got = self._member(member)
                if got is None:
                    return None
                out.extend(got)
            self.warn(node, f"virtual_server group {args[1]} expanded into {len(out)} services")
            return out
        return self._member(Node(args[0], args[1:], node.file, node.line))

    def _member(self, node: Node) -> list[tuple] | None:
        if node.keyword == "fwmark":
            mark = self.number(node, 0, low=1, high=2**32 - 1)
            return None if mark is None else [(None, None, mark)]
        port = self.number(node, 0, low=1, high=65535)
        if port is None:
            return None
        text = node.keyword
        m = re.fullmatch(r"(\d+\.\d+\.\d+\.)(\d+)-(\d+)", text)
        if m:
            first, last = int(m.group(2)), int(m.group(3))
            if not first <= last <= 255:
                self.error(node, f"bad address range {text}")
                return None
            return [(f"{m.group(1)}{n}", port, None) for n in range(first, last + 1)]
        try:
            address = str(ipaddress.ip_address(text))
        except ValueError:
            self.error(node, f"{text!r} is not an IP address (keepalived takes addresses only)")
            return None
        return [(address, port, None)]

    def virtual_server(self, node: Node) -> list[ServicePlan]:
        endpoints = self._endpoints(node)
        if endpoints is None:
            return []
        base = ServicePlan(
            file=node.file,
            line=node.line,
            scheduler="wlc",
            checkinterval=60.0,
            quiescent=False,
            fallback_rule="keepalived",
            redirects=0,
        )
        base.checktimeout = base.negotiatetimeout = 5.0
        forwarding = "masq"
        family6 = False
        fallback: tuple | None = None
        fallback_forwarding = None
        flags: list[str] = []
        reals: list[Node] = []
        vs_virtualhost = ""
        # keepalived 2 lets a virtual_server set checker defaults (timeouts, retries, inhibit_on_failure).
        check_defaults: dict = {}
        vs_inhibit = False
        for child in node.children or ():
            kw = child.keyword
            if kw == "delay_loop":
                value = self.number(child, kind=float, low=0.1, high=86400)
                if value is not None:
                    base.checkinterval = value
            elif kw in ("lb_algo", "lvs_sched"):
                if child.args and child.args[0] in SCHEDULERS:
                    base.scheduler = child.args[0]
                else:
                    self.error(child, f"{kw}: unknown scheduler {' '.join(child.args)!r}")
            elif kw in ("lb_kind", "lvs_method"):
                forwarding = self._forwarding(child) or forwarding
            elif kw == "persistence_timeout":
                value = self.number(child, low=1, high=2**31 - 1, default=360)
                if value is not None:
                    base.persistence = value
            elif kw == "persistence_granularity":
                base.netmask = child.args[0] if child.args else ""
            elif kw == "protocol":
                protocol = (child.args[0] if child.args else "").lower()
                if protocol in ("tcp", "udp", "sctp"):
                    base.protocol = protocol
                else:
                    self.error(child, f"protocol must be TCP, UDP or SCTP, not {' '.join(child.args)!r}")
            elif kw == "quorum":
                value = self.number(child, low=0, high=32767)
                if value is not None:
                    base.quorum = value
            elif kw == "hysteresis":
                value = self.number(child, low=0, high=32767)
                if value is not None:
                    base.hysteresis = value
            elif kw in ("sh-port", "sh-fallback", "mh-port", "mh-fallback", "ops"):
                flags.append(kw)
            elif kw == "sorry_server":
                fallback = self._sorry(child)
            elif kw == "sorry_server_lvs_method":
                fallback_forwarding = self._forwarding(child)
            elif kw == "ip_family":
                family6 = bool(child.args) and child.args[0] == "inet6"
            elif kw == "virtualhost":
                vs_virtualhost = child.args[0] if child.args else ""
            elif kw == "real_server":
                reals.append(child)
            elif kw == "inhibit_on_failure":
                vs_inhibit = True
            elif kw == "alpha":
                base.start_down = True
            elif self._timing(child, check_defaults):
                pass
            elif kw in NOT_USED_VS:
                self.warn(child, f"{kw} accepted but not used by Ultra Monkey Web")
            else:
                self.warn(child, f"unknown keyword {kw!r} in virtual_server ignored")
        base.sched_flags = flags
        services = []
        for address, port, mark in endpoints:
            s = ServicePlan(**{**base.model_values(), "file": base.file, "line": base.line})
            s.sched_flags = list(flags)
            if mark is not None:
                s.protocol, s.fwmark, s.family = "fwmark", mark, 6 if family6 else 4
            else:
                s.address, s.port = address, port
                s.family = ipaddress.ip_address(address).version
            full = "128" if s.family == 6 else "255.255.255.255"
            if s.netmask == full or not s.persistence:
                s.netmask = ""
            if fallback is not None:
                s.fallback_address, s.fallback_port = fallback
                s.fallback_port = s.fallback_port or s.port
                s.fallback_forwarding = fallback_forwarding or forwarding
            self._reals(s, reals, forwarding, vs_virtualhost, node, check_defaults, vs_inhibit)
            services.append(s)
        return services

    def _forwarding(self, node: Node) -> str | None:
        kind = (node.args[0] if node.args else "").upper()
        if kind not in LB_KIND:
            self.error(node, f"{node.keyword} must be NAT, DR or TUN, not {' '.join(node.args)!r}")
            return None
        return LB_KIND[kind]

    def _sorry(self, node: Node) -> tuple | None:
        if not node.args:
            self.error(node, "sorry_server needs an address")
            return None
        try:
            address = str(ipaddress.ip_address(node.args[0]))
        except ValueError:
            self.error(node, f"sorry_server: {node.args[0]!r} is not an IP address")
            return None
        port = self.number(node, 1, low=1, high=65535) if len(node.args) > 1 else None
        return address, port

    # ---- real_server + checkers --------------------------------------------------------------------

    def _reals(
        self, s, nodes: list[Node], forwarding: str, vhost: str, vs: Node, defaults: dict, inhibit_all: bool
    ):
        first_check: _Check | None = None
        for node in nodes:
            if not node.args:
                self.error(node, "real_server needs an address")
                continue
            try:
                address = str(ipaddress.ip_address(node.args[0]))
            except ValueError:
                self.error(node, f"real_server: {node.args[0]!r} is not an IP address")
                continue
            port = self.number(node, 1, low=0, high=65535) if len(node.args) > 1 else 0
            if port is None:
                continue
            if s.protocol != "fwmark" and not port:
                port = s.port
            elif s.protocol == "fwmark" and port:
                self.warn(
                    node,
                    f"real server {address} {port} of a fwmark service: keepalived clears the port "
                    "(the kernel then forwards to the port each packet came to); imported as port 0",
                )
                port = 0
            real = RealPlan(address=address, port=port, forwarding=forwarding, file=node.file, line=node.line)
            checks: list[_Check] = []
            quiet = inhibit_all
            for child in node.children or ():
                kw = child.keyword
                if kw == "weight":
                    value = self.number(child, low=0, high=65535)
                    if value is not None:
                        real.weight = value
                elif kw == "inhibit_on_failure":
                    quiet = True
                elif kw == "uthreshold":
                    real.u_threshold = self.number(child) or 0
                elif kw == "lthreshold":
                    real.l_threshold = self.number(child) or 0
                elif kw in ("lvs_method", "lb_kind"):
                    real.forwarding = self._forwarding(child) or real.forwarding
                elif kw in CHECKERS:
                    checks.append(self._checker(child, vhost, defaults))
                elif kw in UNSUPPORTED_CHECKERS:
                    self.warn(child, f"{kw} is not supported: this real server's check is not imported")
                elif kw in ("notify_up", "notify_down", "smtp_alert", "delay_loop", "alpha", "virtualhost"):
                    self.warn(child, f"{kw} in real_server accepted but not used by Ultra Monkey Web")
                else:
                    self.warn(child, f"unknown keyword {kw!r} in real_server ignored")
            if len(checks) > 1:
                self.warn(checks[1].node, "only the first checker of a real server is imported")
            check = checks[0] if checks else _Check({"checktype": "on"}, node)
            if first_check is None:
                first_check = check
            elif check.values != first_check.values:
                self.warn(
                    node,
                    f"real server {address}:{port} checks differently from the first one "
                    f"({first_check.node.file}:{first_check.node.line}); the first one's check is used",
                )
            real.quiescent = quiet
            if any((r.address, r.port) == (real.address, real.port) for r in s.reals):
                self.error(node, f"real server {address}:{port} is listed twice in {s.label}")
                continue
            s.reals.append(real)
        if first_check is not None:
            for name, value in first_check.values.items():
                setattr(s, name, value)
            s.tcp_on_udp = s.protocol == "udp" and first_check.node.keyword == "TCP_CHECK"
        else:  # no real server read: nothing to check
            s.checktype = "on"
        # inhibit_on_failure is per real server: the service holds what most say, a real what differs
        s.quiescent = inhibit_all or bool(s.reals) and all(r.quiescent for r in s.reals)
        for real in s.reals:
            if real.quiescent == s.quiescent:
                real.quiescent = None

    def _timing(self, node: Node, values: dict) -> bool:
        """Timeouts, retries and intervals, alike in a checker and (as defaults) in a virtual_server."""
        kw = node.keyword
        if kw in ("connect_timeout", "misc_timeout"):
            value = self.number(node, kind=float, low=0.1, high=3600)
            if value is not None:
                values["checktimeout"] = values["negotiatetimeout"] = value
        elif kw in ("retry", "nb_get_retry"):
            value = self.number(node, low=1, high=32767)
            if value is not None:
                values["retries"] = value
        elif kw == "delay_before_retry":
            value = self.number(node, kind=float, low=0, high=86400)
            if value is not None:
                values["delay_before_retry"] = value
        elif kw == "delay_loop":
            value = self.number(node, kind=float, low=0.1, high=86400)
            if value is not None:
                values["checkinterval"] = value
        else:
            return False
        return True

    def _checker(self, node: Node, vhost: str, defaults: dict) -> _Check:  # noqa: C901 - one branch a keyword
        kind = node.keyword
        values: dict = {"check_service": "none", "check_every": 0, "request": "", "expected_status": ""}
        values["receive"] = ""
        values.update(defaults)
        values["checktype"] = {
            "HTTP_GET": "negotiate", "SSL_GET": "negotiate", "TCP_CHECK": "connect", "MISC_CHECK": "external",
            "SMTP_CHECK": "negotiate", "DNS_CHECK": "negotiate", "PING_CHECK": "ping",
        }[kind]  # fmt: skip
        values["check_service"] = {
            "HTTP_GET": "http",
            "SSL_GET": "https",
            "SMTP_CHECK": "smtp",
            "DNS_CHECK": "dns",
        }.get(kind, "none")
        if vhost and kind in ("HTTP_GET", "SSL_GET"):
            values["virtualhost"] = vhost
        urls = 0
        for child in node.children or ():
            kw = child.keyword
            if self._timing(child, values):
                pass
            elif kw == "connect_port":
                values["checkport"] = self.number(child, low=1, high=65535)
            elif kw == "virtualhost":
                values["virtualhost"] = child.args[0] if child.args else ""
            elif kw == "url":
                urls += 1
                if urls == 1:
                    self._url(child, values)
                else:
                    self.warn(child, "only the first url of a checker is imported")
            elif kw == "misc_path":
                values["external_program"] = " ".join(child.args)
                self.warn(
                    child,
                    "misc_path runs with the virtual and real address and port appended "
                    "(ldirectord's external check convention)",
                )
            elif kw == "misc_dynamic":
                self.warn(child, "misc_dynamic (weight from the exit code) is not supported")
            elif kw == "name" and kind == "DNS_CHECK":
                values["request"] = child.args[0] if child.args else ""
            elif kw == "type" and kind == "DNS_CHECK":
                if child.args and child.args[0].upper() != "A":
                    self.warn(child, f"DNS_CHECK type {child.args[0]} is checked as an A query")
            elif kw == "host" and kind == "SMTP_CHECK":
                port = child.find("connect_port")
                if port is not None:
                    values["checkport"] = self.number(port, low=1, high=65535)
                self.warn(child, "SMTP_CHECK host blocks: only the connect_port is imported")
            elif kw in ("helo_name", "bindto", "bind_port", "connect_ip", "warmup", "fwmark", "user",
                        "tls_compliant", "enable_sni", "protocol", "bind_if", "retry_delay"):  # fmt: skip
                self.warn(child, f"{kind} {kw} accepted but not used by Ultra Monkey Web")
            else:
                self.warn(child, f"unknown keyword {kw!r} in {kind} ignored")
        if kind == "MISC_CHECK" and not values.get("external_program"):
            self.error(node, "MISC_CHECK needs a misc_path")
        return _Check(values, node)

    def _url(self, node: Node, values: dict) -> None:
        codes: list[int] = []
        for child in node.children or ():
            if child.keyword == "path":
                values["request"] = child.args[0] if child.args else "/"
            elif child.keyword == "status_code":
                for arg in child.args:
                    m = re.fullmatch(r"(\d{3})(?:-(\d{3}))?", arg)
                    if not m:
                        self.error(child, f"status_code {arg!r} is not a code or a range of codes")
                        continue
                    low, high = int(m.group(1)), int(m.group(2) or m.group(1))
                    codes.extend(range(low, high + 1))
            elif child.keyword == "regex":
                values["receive"] = " ".join(child.args)
            elif child.keyword == "regex_no_match":
                self.warn(child, "regex_no_match is not supported: the regex must match")
            elif child.keyword == "digest":
                self.warn(child, "digest is not checked: use status_code (or a receive pattern) instead")
            elif child.keyword == "virtualhost":
                values["virtualhost"] = child.args[0] if child.args else ""
            else:
                self.warn(child, f"unknown keyword {child.keyword!r} in url ignored")
        if codes == list(range(200, 300)):
            codes = []  # keepalived's default: any 2xx, which is what an empty list means here
        text = ",".join(str(c) for c in codes)
        if len(text) > 100:
            self.error(node, "status_code lists too many codes (at most 100 characters once expanded)")
            return
        values["expected_status"] = text


def parse(
    text: str,
    *,
    filename: str = "keepalived.conf",
    hosts: HostsMap | None = None,
    sources: Sources | None = None,
) -> Plan:
    """Read a keepalived.conf text into a Plan (errors and warnings carry file:line)."""
    plan = Plan(format=FORMAT, source=filename)
    nodes = _Reader(plan, sources).tree(text, filename)
    _Interpreter(plan, hosts or HostsMap()).run(nodes)
    return plan.finish()
