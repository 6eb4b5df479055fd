"""Director pairs on VRRP: keepalived's configuration from the desired state, and what keepalived tells us.

Why keepalived: VRRP (RFC 3768 / RFC 5798) as keepalived implements it is what LVS shops already run for this
job; it elects on priorities alone (no clocks in its adverts, so two directors whose clocks drift apart still
agree), sends gratuitous ARP and unsolicited neighbour advertisements for the VIPs of a new MASTER, and
interoperates with the routers and monitoring around it. The agent supervises one `keepalived --vrrp` per
paired director (keepalived.py); this module is the pure part:

* `Config` is the `failover` part of the desired state, validated;
* `render()` writes the whole keepalived.conf from it - one `vrrp_instance`, unicast to the peer;
* `parse_notify()` reads a line of keepalived's notify FIFO (`INSTANCE "umw" MASTER 150`), and `reason()`
  picks, from keepalived's own log, why the last transition happened.

What goes into the config, and why:

* The VIPs are all `virtual_ipaddress_excluded`: keepalived adds and removes them with the role, announces
  them (gratuitous ARP for IPv4, unsolicited NA for IPv6), but they are not in the adverts. An advert whose
  address list differs from ours is dropped by keepalived, so listing the VIPs there would make a VIP change
  that reached one director before the other (its agent down, say) a split brain. The adverts carry one
  *marker* address instead, derived from the virtual router id and the same on both sides: 127.255.0.<vrid>
  on `lo` (IPv4 pairs), fd00:756d:7700::<vrid> on `lo` (IPv6 pairs). It is harmless, and shows the MASTER
  in `ip addr show lo`.
* VRRPv2 with `auth_type PASS` (the first 8 characters of the pair secret: a guard against a misconfigured
  neighbour, not against an attacker; VRRP has no more) for IPv4 pairs with a whole-second advert
  interval; VRRPv3 (RFC 5798, no authentication, centisecond intervals) otherwise. `check_unicast_src`
  makes keepalived accept adverts only from the peer address.
* `state BACKUP` on both sides: a (re)started keepalived listens before it claims anything; `nopreempt`
  when the pair does not preempt.
* `garp_master_delay 1` / `garp_master_repeat 3`: announce again a second after a takeover, in case the
  first frames met a busy neighbour.
* `track_script` on the agent's liveness (optional, on by default): the agent touches a file every second;
  when it is more than `ALIVE_STALE` seconds old three checks running, this director goes FAULT and the
  peer serves - a frozen or dead agent no longer acts on health checks. An agent restart (a few seconds)
  stays well inside it: keepalived outlives its agent, and the new agent adopts it.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shlex
from dataclasses import dataclass

INIT, BACKUP, MASTER, FAULT, STOP = "INIT", "BACKUP", "MASTER", "FAULT", "STOP"
STATES = (INIT, BACKUP, MASTER, FAULT, STOP)
INSTANCE = "umw"  # the vrrp_instance name; one per director
DEFAULT_PRIORITY = 100
DEFAULT_INTERVAL = 1.0
DEFAULT_VRID = 51
ALIVE_STALE = (
    30  # seconds without the agent touching its liveness file (an agent restart takes a few) -> fails
)
SECRET_CHARS = re.compile(r"^[A-Za-z0-9_.~+=/-]+$")  # no whitespace, quotes or comment characters
SAFE_PATH = re.compile(r"^/[A-Za-z0-9_.,+=@/-]+$")
IFNAME = re.compile(r"^[A-Za-z0-9_.@:-]{1,15}$")


@dataclass(frozen=True)
class Config:
    """The `failover` part of the desired state (director/desired.py), validated."""

    local_address: str
    peer_address: str
    secret: str = ""
    priority: int = DEFAULT_PRIORITY
    interval: float = DEFAULT_INTERVAL
    preempt: bool = True
    vrid: int = DEFAULT_VRID
    sync_daemon: bool = True  # IPVS connection sync between the pair (the agent's netlink daemons)
    sync_id: int = 0
    track_agent: bool = True

    @classmethod
    def from_dict(cls, d: dict) -> Config:
        """Unknown keys (the home-made protocol's `port`, say) are ignored: an old saved state still loads."""
        known = {k: v for k, v in dict(d).items() if k in cls.__dataclass_fields__}
        try:
            cfg = cls(**known)
            local = ipaddress.ip_address(cfg.local_address)
            peer = ipaddress.ip_address(cfg.peer_address)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"failover: {exc}") from exc
        if local.version != peer.version:
            raise ValueError("failover: local and peer address must be of the same family")
        if local == peer:
            raise ValueError("failover: the peer address is our own")
        if not 1 <= int(cfg.priority) <= 254:
            raise ValueError("failover: priority must be 1-254 (255 is VRRP's address owner)")
        if not 1 <= int(cfg.vrid) <= 255:
            raise ValueError("failover: virtual router id must be 1-255")
        interval = round(float(cfg.interval), 2)  # VRRPv3 counts centiseconds
        if not 0.01 <= interval <= 40.95:
            raise ValueError("failover: advert interval must be 0.01-40.95 s")
        if not 0 <= int(cfg.sync_id) <= 255:
            raise ValueError("failover: sync_id must be 0-255")
        out = cls(
            local_address=str(local),
            peer_address=str(peer),
            secret=str(cfg.secret or ""),
            priority=int(cfg.priority),
            interval=interval,
            preempt=bool(cfg.preempt),
            vrid=int(cfg.vrid),
            sync_daemon=bool(cfg.sync_daemon),
            sync_id=int(cfg.sync_id),
            track_agent=bool(cfg.track_agent),
        )
        if out.version == 2:
            if len(out.secret) < 8:
                raise ValueError("failover: the pair secret needs at least 8 characters (VRRPv2 auth_pass)")
            if not SECRET_CHARS.match(out.secret):
                raise ValueError("failover: the pair secret may only hold letters, digits and _.~+=/-")
        return out

    @property
    def family(self) -> int:
        return ipaddress.ip_address(self.local_address).version

    @property
    def version(self) -> int:
        """VRRPv2 (authentication, whole seconds) where it can carry the pair, else VRRPv3."""
        return 2 if self.family == 4 and self.interval == int(self.interval) else 3

    @property
    def marker(self) -> str:
        """The one address the adverts carry (see the module docstring)."""
        return f"127.255.0.{self.vrid}/32" if self.family == 4 else f"fd00:756d:7700::{self.vrid:x}/128"

    @property
    def master_down(self) -> float:
        """RFC 5798's Master_Down_Interval: 3 adverts missed plus a skew that lets the higher priority go first."""
        return 3 * self.interval + (256 - self.priority) / 256 * self.interval


@dataclass(frozen=True)
class Paths:
    """keepalived's files, all under the agent's state directory (never /etc/keepalived or /run/keepalived)."""

    directory: str

    def __post_init__(self):
        if not SAFE_PATH.match(os.path.join(self.directory, "x")):
            raise ValueError(
                f"failover: state directory {self.directory!r} must be an absolute path of letters, digits"
                " and _.,+=@/- (keepalived's configuration cannot quote others)"
            )

    def _p(self, name: str) -> str:
        return os.path.join(self.directory, name)

    conf = property(lambda self: self._p("keepalived.conf"))
    pid = property(lambda self: self._p("keepalived.pid"))
    vrrp_pid = property(lambda self: self._p("vrrp.pid"))
    fifo = property(lambda self: self._p("notify.fifo"))
    log = property(lambda self: self._p("keepalived.log"))
    alive = property(lambda self: self._p("agent.alive"))
    alive_check = property(lambda self: self._p("agent-alive.sh"))


def alive_script(paths: Paths) -> str:
    """The track script: succeeds while the agent touched its liveness file in the last ALIVE_STALE seconds."""
    return (
        "#!/bin/sh\n"
        "# written by the Ultra Monkey director agent: is the agent alive (its liveness file recent)?\n"
        f"f={paths.alive}\n"
        f'[ -f "$f" ] && [ $(( $(date +%s) - $(stat -c %Y "$f") )) -lt {ALIVE_STALE} ]\n'
    )


def _vip_lines(vips, interface: str) -> list[str]:
    out, seen = [], set()
    for text in vips:
        iface = ipaddress.ip_interface(str(text).strip())
        if iface.ip in seen:
            continue
        seen.add(iface.ip)
        out.append(f"    {iface.ip}/{iface.network.prefixlen} dev {interface}")
    return out


def render(name: str, config: Config, interface: str, vip_interface: str, vips, paths: Paths) -> str:
    """The whole keepalived.conf: `interface` carries the adverts (it holds local_address), `vip_interface`
    the VIPs (the WAN interface). Deterministic, so an unchanged desired state means an unchanged file
    (and no reload)."""
    for label, ifname in (("interface", interface), ("VIP interface", vip_interface)):
        if not IFNAME.match(ifname or ""):
            raise ValueError(f"failover: bad {label} name {ifname!r}")
    if not re.match(r"^[A-Za-z0-9_.-]+$", name):
        raise ValueError(f"failover: bad director name {name!r}")
    lines = [
        "# Written by the Ultra Monkey director agent from its desired state (director/vrrp.py):",
        "# edits here are overwritten. keepalived runs VRRP only (--vrrp) under the agent.",
        "global_defs {",
        f"  router_id umw-{name}",
        f"  notify_fifo {paths.fifo}",
        "  enable_script_security",
        "}",
    ]
    if config.track_agent:
        lines += [
            "vrrp_script umw_agent {",
            f"  script {paths.alive_check}",
            "  interval 2",
            "  timeout 2",
            "  fall 3",
            "  rise 1",
            "}",
        ]
    lines += [
        f"vrrp_instance {INSTANCE} {{",
        "  state BACKUP",
        f"  interface {interface}",
        f"  version {config.version}",
        f"  virtual_router_id {config.vrid}",
        f"  priority {config.priority}",
        f"  advert_int {config.interval:g}",
    ]
    if not config.preempt:
        lines.append("  nopreempt")
    lines += [
        f"  unicast_src_ip {config.local_address}",
        "  unicast_peer {",
        f"    {config.peer_address}",
        "  }",
        "  check_unicast_src",
    ]
    if config.version == 2:
        lines += ["  authentication {", "    auth_type PASS", f"    auth_pass {config.secret[:8]}", "  }"]
    lines += [
        "  garp_master_delay 1",
        "  garp_master_repeat 3",
        "  virtual_ipaddress {",
        f"    {config.marker} dev lo",
        "  }",
    ]
    vip_lines = _vip_lines(vips, vip_interface)
    if vip_lines:
        lines += ["  virtual_ipaddress_excluded {", *vip_lines, "  }"]
    if config.track_agent:
        lines += ["  track_script {", "    umw_agent", "  }"]
    lines.append("}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Notice:
    """One line of keepalived's notify FIFO about our instance."""

    state: str
    priority: int


def parse_notify(line: str) -> Notice | None:
    """`INSTANCE "umw" MASTER 150` -> Notice; None for anything else (groups, other instances, garbage)."""
    try:
        parts = shlex.split(line.strip())
    except ValueError:
        return None
    if len(parts) != 4 or parts[0] != "INSTANCE" or parts[1] != INSTANCE:
        return None
    state, priority = parts[2], parts[3]
    if state not in STATES or not priority.isdigit():
        return None
    return Notice(state, int(priority))


_NOISE = ("Sending", "sending", "setting", "removing", "Entering", "gratuitous", "Neighbour", "sockpool")
_PREFIX = re.compile(r"^(?:\w{3} \w{3} +\d+ [\d:]+ \d{4}: )?(?:Keepalived(?:_vrrp)?\[\d+\]: )?")


def reason(lines: list[str], state: str) -> str:
    """Why keepalived entered `state`: the last (at most two) lines keepalived logged about our instance
    since its previous transition, up to its "Entering <state> STATE" line - e.g. "Receive advertisement
    timeout" (the peer went silent), "Backup received priority 0 advertisement; Receive advertisement timeout"
    (the peer resigned), "Master received advert from 100.64.0.2 with higher priority 150, ours 100"."""
    tag = f"({INSTANCE}) "
    entering = None
    for i in range(len(lines) - 1, -1, -1):
        if f"{tag}Entering {state} STATE" in lines[i]:
            entering = i
            break
    if entering is None:
        return ""
    if "(init)" in lines[entering]:
        return "keepalived started"
    found: list[str] = []
    for line in reversed(lines[max(0, entering - 50) : entering]):
        text = _PREFIX.sub("", line.strip())
        if f"{tag}Entering " in text:
            break  # the previous transition: what came before it explains that one
        if not text or any(word in text for word in _NOISE):
            continue
        if text.startswith((tag, "VRRP_Script(", "Script `", "Netlink reports")):
            text = text.removeprefix(tag)
            if text not in found:
                found.insert(0, text)
    return "; ".join(found[-2:])
