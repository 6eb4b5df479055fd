"""ServicePlans -> keepalived.conf virtual_server blocks (no VRRP: the pair agents write their own, director/vrrp.py).

keepalived keeps checks per real server, so each real server gets the service's checker. Our check types map
onto keepalived's checkers (negotiate http/https -> HTTP_GET/SSL_GET, smtp -> SMTP_CHECK, dns -> DNS_CHECK,
connect -> TCP_CHECK, ping -> PING_CHECK, external -> MISC_CHECK, on -> no checker); what keepalived cannot
check (a receive pattern, negotiate checks of other protocols, checktype=off) is written as a TCP_CHECK or
left out, with a comment saying so.
"""

from __future__ import annotations

from clusters.importers.plan import ServicePlan

KIND = {"masq": "NAT", "gate": "DR", "ipip": "TUN"}


def _num(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)


def _checker(s: ServicePlan, indent: str) -> list[str]:
    i2, i3 = indent + "    ", indent + "        "
    negotiate = s.checktype == "negotiate"
    if s.checktype == "on":
        return []
    if s.checktype == "off":
        return [f"{indent}# checktype=off (never in rotation) cannot be expressed: no checker written"]
    out: list[str] = []
    timeout = s.checktimeout
    if negotiate and s.check_service in ("http", "https", "http_proxy"):
        name = "SSL_GET" if s.check_service == "https" else "HTTP_GET"
        out.append(f"{indent}{name} {{")
        out.append(f"{i2}url {{")
        out.append(f"{i3}path {s.request or '/'}")
        if s.receive:
            out.append(f'{i3}regex "{s.receive}"')
        for code in filter(None, s.expected_status.split(",")):
            out.append(f"{i3}status_code {code.strip()}")
        out.append(f"{i2}}}")
        if s.virtualhost:
            out.append(f"{i2}virtualhost {s.virtualhost}")
        timeout = s.negotiatetimeout
    elif negotiate and s.check_service == "smtp":
        out.append(f"{indent}SMTP_CHECK {{")
        timeout = s.negotiatetimeout
    elif negotiate and s.check_service == "dns":
        out.append(f"{indent}DNS_CHECK {{")
        if s.request:
            out.append(f"{i2}name {s.request}")
        timeout = s.negotiatetimeout
    elif s.checktype == "ping":
        out.append(f"{indent}PING_CHECK {{")
    elif s.checktype == "external":
        out.append(f"{indent}MISC_CHECK {{")
        out.append(f'{i2}misc_path "{s.external_program}"')
        out.append(f"{i2}misc_timeout {_num(s.checktimeout)}")
        out.append(f"{i2}retry {s.retries}")
        out.append(f"{i2}delay_before_retry {_num(s.delay_before_retry)}")
        out.append(f"{indent}}}")
        return out
    else:
        if negotiate and s.check_service != "none":
            out.append(f"{indent}# {s.check_service} negotiate check: keepalived only connects (TCP_CHECK)")
        out.append(f"{indent}TCP_CHECK {{")
    if s.receive and not (negotiate and s.check_service in ("http", "https", "http_proxy")):
        out.insert(0, f"{indent}# receive pattern {s.receive!r} cannot be checked by keepalived here")
    if s.checkport:
        out.append(f"{i2}connect_port {s.checkport}")
    out.append(f"{i2}connect_timeout {_num(timeout)}")
    out.append(f"{i2}retry {s.retries}")
    out.append(f"{i2}delay_before_retry {_num(s.delay_before_retry)}")
    out.append(f"{indent}}}")
    return out


def _block(s: ServicePlan) -> list[str]:
    from . import ordered_reals

    if s.protocol == "fwmark":
        head = f"virtual_server fwmark {s.fwmark} {{"
    else:
        head = f"virtual_server {s.address} {s.port} {{"
    reals = ordered_reals(s)
    kind = KIND[reals[0].forwarding] if reals else "NAT"
    out = [head]
    if s.name:
        out.append(f"    # {s.name}")
    if s.protocol == "fwmark" and s.family == 6:
        out.append("    ip_family inet6")
    out.append(f"    delay_loop {_num(s.checkinterval)}")
    out.append(f"    lb_algo {s.scheduler}")
    out.append(f"    lb_kind {kind}")
    for flag in s.sched_flags:
        out.append(f"    {flag}")
    if s.persistence:
        out.append(f"    persistence_timeout {s.persistence}")
        if s.netmask:
            out.append(f"    persistence_granularity {s.netmask}")
    if s.protocol != "fwmark":
        out.append(f"    protocol {s.protocol.upper()}")
    if s.quorum != 1:
        out.append(f"    quorum {s.quorum}")
    if s.hysteresis:
        out.append(f"    hysteresis {s.hysteresis}")
    if s.start_down:
        out.append("    alpha")
    if s.fallback_address:
        port = f" {s.fallback_port}" if s.fallback_port else ""
        out.append(f"    sorry_server {s.fallback_address}{port}")
        if KIND[s.fallback_forwarding] != kind:
            out.append(f"    sorry_server_lvs_method {KIND[s.fallback_forwarding]}")
    lost = []
    if s.failurecount != 1:
        lost.append(f"failurecount={s.failurecount}")
    if s.rise != 1:
        lost.append(f"rise={s.rise}")
    if s.check_every:
        lost.append(f"checktype={s.check_every} (connect, negotiate every Nth)")
    if s.fallback_address and s.fallback_rule != "keepalived":
        lost.append(f"fallback rule {s.fallback_rule}")
    if s.redirects and s.check_service in ("http", "https"):
        lost.append(f"{s.redirects} redirects followed")
    if s.protocol == "udp" and s.checktype == "connect" and not s.tcp_on_udp:
        lost.append("UDP connect check as a ping")
    if lost:
        out.append("    # not expressible in keepalived.conf: " + ", ".join(lost))
    for r in reals:
        port = f" {r.port}" if r.port else ""
        out.append(f"    real_server {r.address}{port} {{")
        out.append(f"        weight {r.weight}")
        if KIND[r.forwarding] != kind:
            out.append(f"        lvs_method {KIND[r.forwarding]}")
        if s.quiescent if r.quiescent is None else r.quiescent:
            out.append("        inhibit_on_failure")
        if r.u_threshold:
            out.append(f"        uthreshold {r.u_threshold}")
        if r.l_threshold:
            out.append(f"        lthreshold {r.l_threshold}")
        out.extend(_checker(s, "        "))
        out.append("    }")
    out.append("}")
    out.append("")
    return out


def render(services: list[ServicePlan], *, title: str = "") -> str:
    out = [f"# {title or 'keepalived.conf'}: virtual servers, written by Ultra Monkey Web", ""]
    for s in services:
        out.extend(_block(s))
    return "\n".join(out)
