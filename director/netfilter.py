"""Masquerade for the LAN subnets out of the WAN interface, in an nftables table of our own.

We own ``table ip ultramonkey`` (and ``table ip6 ultramonkey`` for IPv6 subnets) and nothing else: no other
table or chain is ever touched. Every change is one ``nft -f -`` transaction that creates the table if it is
missing, deletes it and declares it again with the full rule set - the kernel applies all of it or none of
it, so there is never a moment without the rules (or with half of them). The result::

    table ip ultramonkey {
        chain postrouting {
            type nat hook postrouting priority srcnat; policy accept;
            ip saddr 192.168.1.0/24 oifname "wan" masquerade
        }
    }

Inputs are validated (``ipaddress``, an interface-name pattern) before they get near nft, and nft is run
without a shell.

Kernels built without nftables' ip/ip6 families (Debian's user-mode-linux 6.1 - the lab - has
``# CONFIG_NF_TABLES_IPV4 is not set``) answer "Operation not supported". There we fall back to
iptables-legacy (``iptables`` package) with a chain of our own, ``UMW-POSTROUTING`` in the nat table, reached
by one jump from POSTROUTING; ``iptables-legacy-restore --noflush`` declares (= flushes) and refills only our
chain and commits the nat table in one piece, so that replacement is atomic as well.
"""

from __future__ import annotations

import ipaddress
import re
import subprocess

TABLE = "ultramonkey"
IFNAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,14}")
NFT = "nft"
TIMEOUT = 20


class NetfilterError(RuntimeError):
    pass


def _check_ifname(ifname: str) -> str:
    if not isinstance(ifname, str) or not IFNAME_RE.fullmatch(ifname):
        raise ValueError(f"invalid interface name {ifname!r}")
    return ifname


def _networks(subnets) -> tuple[list, list]:
    v4, v6 = [], []
    for text in subnets:
        net = ipaddress.ip_network(str(text).strip(), strict=False)
        (v4 if net.version == 4 else v6).append(net)
    dedup = lambda nets: sorted(set(nets), key=lambda n: (n.network_address, n.prefixlen))  # noqa: E731
    return dedup(v4), dedup(v6)


def _table(family: str, ifname: str, nets: list) -> list[str]:
    saddr = "ip saddr" if family == "ip" else "ip6 saddr"
    lines = [
        f"table {family} {TABLE} {{}}",  # create if missing, so the delete cannot fail
        f"delete table {family} {TABLE}",
    ]
    if nets:
        lines += [
            f"table {family} {TABLE} {{",
            "  chain postrouting {",
            "    type nat hook postrouting priority srcnat; policy accept;",
            *(f'    {saddr} {net} oifname "{ifname}" masquerade' for net in nets),
            "  }",
            "}",
        ]
    return lines


def render(ifname: str, subnets) -> str:
    """The nft script for `subnets` masqueraded out of `ifname` (empty subnets: our tables removed)."""
    _check_ifname(ifname)
    v4, v6 = _networks(subnets)
    return "\n".join(_table("ip", ifname, v4) + _table("ip6", ifname, v6)) + "\n"


def _nft(script: str, netns: str | None = None, args: tuple = ("-f", "-")) -> str:
    proc = _run([NFT, *args], netns, stdin=script)
    if proc.returncode != 0:
        raise NetfilterError(f"nft failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def _nft_unsupported(exc: Exception) -> bool:
    return isinstance(exc, FileNotFoundError) or "Operation not supported" in str(exc)


def ensure_masquerade(ifname: str, subnets, netns: str | None = None) -> str:
    """Atomically replace our rules: masquerade `subnets` out of `ifname`; no subnets -> rules removed.

    Returns the backend used: "nft", or "iptables-legacy" where the kernel has no nftables ip family.
    """
    script = render(ifname, list(subnets))  # validates before anything runs
    try:
        _nft(script, netns)
        return "nft"
    except (NetfilterError, FileNotFoundError) as exc:
        if not _nft_unsupported(exc):
            raise
    v4, v6 = _networks(subnets)
    _legacy("iptables", ifname, v4, netns)
    _legacy("ip6tables", ifname, v6, netns)
    return "iptables-legacy"


def remove(netns: str | None = None) -> None:
    """Delete our rules (if present)."""
    ensure_masquerade("lo", [], netns)


# -- iptables-legacy fallback --------------------------------------------------------------------------------
CHAIN = "UMW-POSTROUTING"


def _run(cmd: list[str], netns: str | None, stdin: str | None = None) -> subprocess.CompletedProcess:
    if netns:
        if not IFNAME_RE.fullmatch(netns):
            raise ValueError(f"invalid netns name {netns!r}")
        cmd = ["ip", "netns", "exec", netns, *cmd]
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=TIMEOUT)


def _legacy_has_jump(tool: str, netns: str | None) -> bool:
    try:
        proc = _run([f"{tool}-legacy", "-w", "5", "-t", "nat", "-C", "POSTROUTING", "-j", CHAIN], netns)
    except FileNotFoundError:
        return False
    return proc.returncode == 0


def render_legacy(ifname: str, nets: list, has_jump: bool) -> str:
    """iptables-restore --noflush input for the nat table (pure; see ensure_masquerade)."""
    _check_ifname(ifname)
    lines = ["*nat", f":{CHAIN} - [0:0]"]
    if nets:
        if not has_jump:
            lines.append(f"-A POSTROUTING -j {CHAIN}")
        lines += [f"-A {CHAIN} -s {net} -o {ifname} -j MASQUERADE" for net in nets]
    else:
        if has_jump:
            lines.append(f"-D POSTROUTING -j {CHAIN}")
        lines.append(f"-X {CHAIN}")
    return "\n".join(lines + ["COMMIT"]) + "\n"


def _legacy(tool: str, ifname: str, nets: list, netns: str | None) -> None:
    has_jump = _legacy_has_jump(tool, netns)
    if not nets and not has_jump:
        return  # nothing of ours there
    script = render_legacy(ifname, nets, has_jump)
    try:
        proc = _run([f"{tool}-legacy-restore", "-w", "5", "--noflush"], netns, stdin=script)
    except FileNotFoundError as exc:
        raise NetfilterError(
            f"nftables has no ip family in this kernel and {tool}-legacy-restore is not installed"
        ) from exc
    if proc.returncode != 0:
        raise NetfilterError(f"{tool}-legacy-restore failed ({proc.returncode}): {proc.stderr.strip()}")


def list_legacy(netns: str | None = None, tool: str = "iptables") -> str:
    """`<tool>-legacy -t nat -S` lines that mention our chain ('' when none or not installed)."""
    try:
        proc = _run([f"{tool}-legacy", "-w", "5", "-t", "nat", "-S"], netns)
    except FileNotFoundError:
        return ""
    return "\n".join(line for line in proc.stdout.splitlines() if CHAIN in line)


def list_table(netns: str | None = None, family: str = "ip") -> str:
    """`nft list table <family> ultramonkey` ('' when it does not exist)."""
    if family not in ("ip", "ip6"):
        raise ValueError(family)
    try:
        return _nft("", netns, args=("list", "table", family, TABLE))
    except NetfilterError:
        return ""
