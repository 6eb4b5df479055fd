"""Director -> ldirectord.cf, keepalived.conf (virtual_server blocks) and `ipvsadm -S` text.

Exporters read the same neutral `ServicePlan`s the importers produce (see clusters/importers/plan.py), so
"export, then import, gives the same model" is a property of two pure functions and is tested without a
database; `fromdb.services_of(director)` is the only part that reads the ORM. Only enabled services are
exported (a disabled one is not in the kernel either), in ipvsadm's sorted order so that two exports of the
same configuration are byte-identical.
"""

from __future__ import annotations

import ipaddress

from clusters.importers.plan import ServicePlan

FORMATS = ("ldirectord", "keepalived", "ipvsadm")
PROTOCOL_NUMBER = {"tcp": 6, "udp": 17, "sctp": 132}
FILENAMES = {"ldirectord": "ldirectord.cf", "keepalived": "keepalived.conf", "ipvsadm": "ipvsadm.rules"}


def ordered(services: list[ServicePlan]) -> list[ServicePlan]:
    """Enabled services in `ipvsadm -S` order (libipvs ipvs_cmp_services): mark, family, protocol, address, port."""

    def key(s: ServicePlan):
        if s.protocol == "fwmark":
            return (s.fwmark or 0, s.family, 0, 0, 0)
        return (0, s.family, PROTOCOL_NUMBER[s.protocol], int(ipaddress.ip_address(s.address)), s.port or 0)

    return sorted((s for s in services if s.enabled), key=key)


def ordered_reals(service: ServicePlan):
    return sorted(
        service.reals,
        key=lambda r: (ipaddress.ip_address(r.address).version, int(ipaddress.ip_address(r.address)), r.port),
    )


def export(services: list[ServicePlan], fmt: str, *, title: str = "") -> str:
    """Render `services` in format `fmt` (one of FORMATS)."""
    from . import ipvsadm, keepalived, ldirectord

    renderers = {"ldirectord": ldirectord.render, "keepalived": keepalived.render, "ipvsadm": ipvsadm.render}
    if fmt not in renderers:
        raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    return renderers[fmt](ordered(services), title=title)
