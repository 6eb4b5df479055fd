"""Virtual IP addresses on the director's WAN interface.

`ensure()` adds the desired VIPs that are missing and removes the ones *we* added earlier that are no longer
desired. Addresses we did not add are never touched, even when they look like VIPs. Ours are marked in the
kernel itself, so the mark survives an agent restart and is visible to the operator:

* every address we add carries the address protocol ``IFA_PROTO = 0x55`` (``ip -d addr`` shows
  ``proto 0x55``; kernel >= 5.18);
* IPv4 addresses also get the label ``<ifname>:umw`` (``ip addr`` shows it), which older kernels keep too.

IPv6 VIPs are added with ``nodad`` so they are usable at once (a VIP must not wait for duplicate address
detection).
"""

from __future__ import annotations

import contextlib
import ipaddress

UMW_ADDR_PROTO = 0x55
LABEL_SUFFIX = ":umw"
IFA_F_NODAD = 0x02


def label_for(ifname: str) -> str | None:
    label = f"{ifname}{LABEL_SUFFIX}"
    return label if len(label) <= 15 else None  # IFNAMSIZ - 1


def parse_vip(text: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    """'172.16.10.52/24' -> interface; a bare address means a host route (/32, /128)."""
    return ipaddress.ip_interface(text.strip())


def _current(ipr, index: int) -> list[dict]:
    out = []
    for msg in ipr.get_addr(index=index):
        address = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
        if not address:
            continue
        out.append(
            {
                "address": str(ipaddress.ip_address(address)),
                "prefixlen": msg["prefixlen"],
                "label": msg.get_attr("IFA_LABEL") or "",
                "proto": msg.get_attr("IFA_PROTO") or 0,
            }
        )
    return out


def is_ours(entry: dict, ifname: str) -> bool:
    return entry["proto"] == UMW_ADDR_PROTO or (
        label_for(ifname) is not None and entry["label"] == label_for(ifname)
    )


def plan(ifname: str, vips: list[str], current: list[dict]) -> tuple[list, list[dict]]:
    """(interfaces to add, current entries to remove). Pure: see ensure()."""
    wanted = {}
    for text in vips:
        iface = parse_vip(text)
        wanted.setdefault(str(iface.ip), iface)
    present = {entry["address"] for entry in current}
    add = [iface for address, iface in wanted.items() if address not in present]
    remove = [e for e in current if is_ours(e, ifname) and e["address"] not in wanted]
    return add, remove


def ensure(ifname: str, vips: list[str], netns: str | None = None) -> dict:
    """Make `ifname` carry `vips` ("addr/prefix" strings); returns {"added": [...], "removed": [...]}."""
    from pyroute2 import IPRoute

    with IPRoute(netns=netns) if netns else IPRoute() as ipr:
        links = ipr.link_lookup(ifname=ifname)
        if not links:
            raise ValueError(f"no interface {ifname!r}")
        index = links[0]
        add, remove = plan(ifname, list(vips), _current(ipr, index))
        added, removed = [], []
        for iface in add:
            kwargs = {
                "index": index,
                "address": str(iface.ip),
                "prefixlen": iface.network.prefixlen,
                "proto": UMW_ADDR_PROTO,
            }
            if iface.version == 4:
                if label_for(ifname):
                    kwargs["label"] = label_for(ifname)
            else:
                kwargs["flags"] = IFA_F_NODAD
            ipr.addr("add", **kwargs)
            added.append(str(iface))
        for entry in remove:
            ipr.addr("del", index=index, address=entry["address"], prefixlen=entry["prefixlen"])
            removed.append(f"{entry['address']}/{entry['prefixlen']}")
        return {"added": added, "removed": removed}


def list_vips(ifname: str, netns: str | None = None) -> list[str]:
    """The addresses on `ifname` we added ("addr/prefix")."""
    from pyroute2 import IPRoute

    with IPRoute(netns=netns) if netns else IPRoute() as ipr:
        links = ipr.link_lookup(ifname=ifname)
        if not links:
            return []
        return [f"{e['address']}/{e['prefixlen']}" for e in _current(ipr, links[0]) if is_ours(e, ifname)]


@contextlib.contextmanager
def _session(netns: str | None):
    """A netlink session in `netns`, its socket opened from this thread inside the namespace: pyroute2's own
    netns= helper process costs seconds in a loaded UML guest, and these calls sit on a takeover's path."""
    from pyroute2 import IPRoute

    from .sysctl import in_netns

    with in_netns(netns):
        ipr = IPRoute()
    try:
        yield ipr
    finally:
        ipr.close()


def interface_of(address: str, netns: str | None = None) -> str | None:
    """The interface holding `address` (a pair's own address: keepalived sends its adverts there), or None."""
    wanted = str(ipaddress.ip_address(address))
    with _session(netns) as ipr:
        for msg in ipr.get_addr():
            found = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
            if found and str(ipaddress.ip_address(found)) == wanted:
                return ipr.get_links(msg["index"])[0].get_attr("IFLA_IFNAME")
    return None


def present(ifname: str, address: str, netns: str | None = None) -> bool:
    """Is `address` ("addr" or "addr/prefix") on `ifname`, whoever added it?"""
    wanted = str(parse_vip(address).ip)
    with _session(netns) as ipr:
        links = ipr.link_lookup(ifname=ifname)
        return bool(links) and any(e["address"] == wanted for e in _current(ipr, links[0]))


def drop(addresses: dict[str, list[str]], netns: str | None = None) -> list[str]:
    """Remove {ifname: [addresses]} whoever added them (what a killed keepalived left behind), in one netlink
    session; returns the ones that were there."""
    removed = []
    with _session(netns) as ipr:
        for ifname, texts in addresses.items():
            wanted = {str(parse_vip(a).ip) for a in texts}
            links = ipr.link_lookup(ifname=ifname)
            for entry in _current(ipr, links[0]) if links else ():
                if entry["address"] in wanted:
                    ipr.addr("del", index=links[0], address=entry["address"], prefixlen=entry["prefixlen"])
                    removed.append(f"{entry['address']}/{entry['prefixlen']}")
    return removed
