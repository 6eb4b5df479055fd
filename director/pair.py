"""The pair part of the agent: keepalived's VRRP decides which director of a pair holds the VIPs.

Why keepalived and not our own protocol: see vrrp.py. This part renders keepalived's configuration from the
desired state (vrrp.render), keeps one `keepalived --vrrp` running on it (keepalived.py: SIGHUP on change,
restart if it dies, adoption after an agent crash, clean stop) and reports what keepalived tells it. It offers
the agent the same small surface as before:

* `update(state)` - the desired state (a pair when its `failover` part is set, else a lone director);
* `stop()` - leave the pair: keepalived stops, sends a priority-0 advert, and the peer takes over at once;
* `active_vips(state)` / `sync_wanted(state)` - what the host should hold now, read under the agent's lock;
* `snapshot()` - the `ha` part of the stats snapshot (director/keys.py documents it), or None.

Who owns what in a pair: keepalived adds and removes the VIPs (and announces them: gratuitous ARP, unsolicited
NA), so `active_vips()` is empty for a paired director - the host then only removes VIPs *it* added while the
director was alone (vip.py marks its own), never keepalived's. The IPVS table is programmed on both directors
by the host, as for a lone director. IPVS connection sync stays with the agent's netlink sync daemons
(host.ensure_sync: master and backup daemon on both directors), not keepalived's lvs_sync_daemon: they run
whatever the role, so a takeover switches nothing, and they were proven before keepalived came.

Every transition is an event with keepalived's own reason ("Receive advertisement timeout", "Master received
advert from 100.64.0.2 with higher priority 150, ours 100", "VRRP_Script(umw_agent) failed"), and the agent
reports none of it through Redis on the takeover path: failover needs no central side.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from . import keepalived, vip, vrrp
from .desired import DesiredState
from .host import Sync

log = logging.getLogger(__name__)


class Pair:
    """The agent's side of a director pair: one supervised keepalived while the desired state names a peer."""

    def __init__(
        self,
        name: str,
        netns: str | None,
        lock: threading.RLock,
        *,
        directory: str,
        program: Callable[[], dict],
        emit: Callable[..., None],
        flush: Callable[[], None],
        daemons: Callable[[], dict] = dict,
    ):
        self.name = name
        self.netns = netns
        self.lock = lock
        self.directory = directory  # keepalived's files, under the agent's state directory
        self.program = program
        self.emit = emit
        self.flush = flush
        self.daemons = daemons  # the IPVS sync daemons running now (host.wire.daemons)
        self.role = vrrp.INIT  # only changed under `lock`
        self.config: vrrp.Config | None = None
        self.since: float | None = None  # wall time of the last transition
        self.reason = ""
        self.ka: keepalived.Keepalived | None = None
        self._vips: tuple[str, ...] = ()  # what keepalived was told to hold (dropped if it dies)
        self._wan = ""

    # -- what the host holds ---------------------------------------------------------------------------------
    def active_vips(self, state: DesiredState) -> tuple[str, ...]:
        """The VIPs the host itself holds: all of them for a lone director, none in a pair (keepalived's)."""
        return () if state.failover else state.vips

    def sync_wanted(self, state: DesiredState) -> Sync | None:
        """(interface, sync id) of the pair's connection sync, or None (no pair, sync off, no WAN interface)."""
        if not state.failover or not state.wan_interface:
            return None
        config = vrrp.Config.from_dict(state.failover)
        return (state.wan_interface, config.sync_id) if config.sync_daemon else None

    # -- life cycle ------------------------------------------------------------------------------------------
    def update(self, state: DesiredState | None) -> None:
        """Start, reload or stop keepalived for this desired state. Never under the agent's lock: stopping
        waits for keepalived, and its notices take the lock."""
        wanted = state.failover if state else None
        if not wanted:
            if self.ka is not None or self.config is not None:
                self.stop()
                with self.lock:
                    self.program()  # a lone director again: the host puts its VIPs up
            return
        config = vrrp.Config.from_dict(wanted)
        wan = state.wan_interface
        try:
            ifname = vip.interface_of(config.local_address, netns=self.netns) or wan
            if self.ka is None:
                self.ka = keepalived.Keepalived(
                    self.directory,
                    self._on_notice,
                    self._on_exit,
                    netns=self.netns,
                    track_agent=config.track_agent,
                )
            self.ka.track_agent = config.track_agent
            text = vrrp.render(self.name, config, ifname, wan or ifname, state.vips, self.ka.paths)
            self.config, self._vips, self._wan = config, tuple(state.vips), wan or ifname
            done = self.ka.configure(text)
        except (OSError, RuntimeError, ValueError) as exc:
            with self.lock:
                self._transition(vrrp.FAULT, f"keepalived not running: {exc}")
            self.emit("agent", f"failover: keepalived could not be started: {exc}", level="error")
            self.flush()
            return
        if done.startswith("adopted") and self.role == vrrp.INIT:
            # an earlier agent left keepalived running: its marker address on lo says whether it is MASTER
            master = vip.present("lo", config.marker, netns=self.netns)
            with self.lock:
                self._transition(
                    vrrp.MASTER if master else vrrp.BACKUP, "keepalived adopted after an agent restart"
                )
        if done != "unchanged":
            self.emit(
                "agent",
                f"failover: keepalived {done} (pid {self.ka.pid}), VRRPv{config.version} "
                f"vrid {config.vrid} priority {config.priority} to {config.peer_address}",
                data={"keepalived": done, "pid": self.ka.pid},
            )
            self.flush()

    def stop(self) -> None:
        """Leave the pair: keepalived resigns (priority 0) and removes its addresses; the peer takes over."""
        ka = self.ka
        self.ka, self.config = None, None
        if ka is None:
            return
        was = self.role
        ka.stop()
        with self.lock:
            self.role, self.since, self.reason = vrrp.INIT, time.time(), "left the pair"
        if was == vrrp.MASTER:
            self.emit("agent", "failover: left the pair, VIPs released", data={"ha": "resigned"})

    # -- what keepalived tells us ----------------------------------------------------------------------------
    def _transition(self, state: str, reason: str) -> None:
        """Caller holds the lock."""
        self.role, self.since, self.reason = state, time.time(), reason

    def _on_notice(self, notice: vrrp.Notice, reason: str) -> None:
        """Watch-thread callback: a transition keepalived made (it already moved the addresses)."""
        if notice.state == self.role:
            return
        with self.lock:
            self._transition(notice.state, reason)
        if notice.state == vrrp.STOP:
            return  # stop() reports leaving the pair
        level = {vrrp.MASTER: "warning", vrrp.FAULT: "error"}.get(notice.state, "info")
        self.emit(
            "agent",
            f"failover: {notice.state}" + (f": {reason}" if reason else ""),
            level=level,
            data={"ha": notice.state, "reason": reason, "priority": notice.priority},
        )
        log.warning("failover: %s: %s", notice.state, reason)
        self.flush()

    def _on_exit(self, text: str) -> None:
        """Watch-thread callback: keepalived died. A killed keepalived leaves its addresses behind; the peer
        takes them over, so they go now (not when keepalived is back), or both directors would answer."""
        dropped: list[str] = []
        leftovers = {self._wan: list(self._vips)} if self._wan else {}
        if self.config is not None:
            leftovers.setdefault("lo", []).append(self.config.marker)
        try:
            dropped = vip.drop(leftovers, netns=self.netns)
        except Exception as exc:  # reported; keepalived's restart removes them too (BACKUP at start)
            text += f"; leftover VIPs not removed: {exc}"
        with self.lock:
            self._transition(vrrp.FAULT, text)
        self.emit(
            "agent",
            f"failover: FAULT: {text}" + (f"; dropped {', '.join(dropped)}" if dropped else ""),
            level="error",
            data={"ha": vrrp.FAULT, "reason": text, "dropped": dropped},
        )
        self.flush()

    # -- reporting -------------------------------------------------------------------------------------------
    def snapshot(self) -> dict | None:
        """This director's side of the pair for the dashboard; None for a lone director."""
        config, ka = self.config, self.ka
        if config is None:
            return None
        try:
            daemons = self.daemons()
        except Exception:
            daemons = {}
        return {
            "state": self.role,
            "priority": config.priority,
            "peer": config.peer_address,
            "since": self.since,
            "reason": self.reason,
            "vrid": config.vrid,
            "version": config.version,
            "interval": config.interval,
            "preempt": config.preempt,
            "master_down": round(config.master_down, 3),
            "keepalived": {
                "pid": ka.pid if ka else None,
                "restarts": ka.restarts if ka else 0,
                "last_exit": ka.last_exit if ka else "",
            },
            "sync": {role: role in daemons for role in ("master", "backup")} if config.sync_daemon else None,
        }
