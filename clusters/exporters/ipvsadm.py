"""ServicePlans -> `ipvsadm -S -n` text, restorable with `ipvsadm -R`.

The table is the one ldirectord keeps while every check passes: every real server at its configured weight
(none for checktype=off), no fallback server (it is only added while every real server is down),
thresholds as -x/-y when set. No comments: `ipvsadm -R`
would choke on them.
"""

from __future__ import annotations

from clusters.importers.plan import ServicePlan


def service_option(s: ServicePlan) -> str:
    if s.protocol == "fwmark":
        return f"-f {s.fwmark}" + (" -6" if s.family == 6 else "")
    host = f"[{s.address}]" if s.family == 6 else s.address
    flag = {"tcp": "-t", "udp": "-u", "sctp": "--sctp-service"}[s.protocol]
    return f"{flag} {host}:{s.port}"


FORWARD_FLAG = {"gate": "-g", "masq": "-m", "ipip": "-i"}


def render(services: list[ServicePlan], *, title: str = "") -> str:
    from . import ordered_reals

    out: list[str] = []
    for s in services:
        name = service_option(s)
        line = f"-A {name} -s {s.scheduler}"
        flags = [f for f in s.sched_flags if f != "ops"]
        if flags:
            line += f" -b {','.join(flags)}"
        if s.persistence:
            line += f" -p {s.persistence}"
            if s.netmask:
                line += f" -M {s.netmask}"
        if "ops" in s.sched_flags:
            line += " -o"
        out.append(line)
        # checktype=off: ldirectord never activates the real servers, so the kernel table has none.
        for r in ordered_reals(s) if s.checktype != "off" else ():
            host = f"[{r.address}]" if ":" in r.address else r.address
            line = f"-a {name} -r {host}:{r.port} {FORWARD_FLAG[r.forwarding]} -w {r.weight}"
            if r.u_threshold:
                line += f" -x {r.u_threshold}"
            if r.l_threshold:
                line += f" -y {r.l_threshold}"
            out.append(line)
    return "\n".join(out) + ("\n" if out else "")
