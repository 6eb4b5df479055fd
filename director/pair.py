"""The pair part of the agent: which role this director plays in a pair, and so which VIPs it holds.

Why a room of its own: the role decision (today our own protocol, failover.py, in a thread) is the piece that
can be swapped for another one (keepalived's VRRP) without touching how the kernel is programmed (host.py) or
reported (report.py). Whatever decides the role offers the agent the same small surface:

* `update(config)` - the `failover` part of the desired state (a dict, or None for a lone director);
* `stop()` - leave the pair; a MASTER hands over at once;
* `active_vips(state)` / `sync_wanted(state)` - what the host should hold now, read under the agent's lock;
* `snapshot()` - the `ha` part of the stats snapshot (director/keys.py documents it), or None;

and it tells the agent about a role change through the callbacks it was built with: under `lock` it sets
`role` and calls `program(vips_only)` (the agent reprograms the host: only the VIPs on a takeover, everything
when the pair is left), then `emit(kind, message, level=..., data=...)` and `flush()` for the event.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from . import failover
from .desired import DesiredState
from .host import Sync

log = logging.getLogger(__name__)

GARP_REPEATS = (1.0, 2.0)  # seconds after becoming MASTER when the gratuitous ARPs are sent again


class Pair:
    """Runs failover.py's protocol in its own thread while the desired state names a peer."""

    def __init__(
        self,
        name: str,
        netns: str | None,
        lock: threading.RLock,
        *,
        desired: Callable[[], DesiredState | None],
        program: Callable[[bool], dict],
        emit: Callable[..., None],
        flush: Callable[[], None],
    ):
        self.name = name
        self.netns = netns
        self.lock = lock
        self.desired = desired
        self.program = program
        self.emit = emit
        self.flush = flush
        self.role = failover.INIT  # what active_vips() reads; only changed under `lock`
        self.runner: failover.Runner | None = None
        self.config: dict | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._resign = False  # when stopping the thread: hand over to the peer at once
        self._garp_due: list[float] = []

    # -- what the host holds ---------------------------------------------------------------------------------
    def active_vips(self, state: DesiredState) -> tuple[str, ...]:
        """The VIPs to hold now: all of them for a lone director, none unless MASTER for one of a pair."""
        if not state.failover:
            return state.vips
        return state.vips if self.role == failover.MASTER else ()

    def sync_wanted(self, state: DesiredState) -> Sync | None:
        """(interface, sync id) of the pair's connection sync, or None (no pair, sync off, no WAN interface)."""
        if not state.failover or not state.wan_interface:
            return None
        config = failover.Config.from_dict(state.failover)
        return (state.wan_interface, config.sync_id) if config.sync_daemon else None

    # -- life cycle ------------------------------------------------------------------------------------------
    def update(self, wanted: dict | None) -> None:
        """Start, restart or stop the pair thread when the `failover` settings change. Never under the lock:
        stopping joins the thread, and its transitions take the lock."""
        if wanted == self.config:
            return
        self.stop(resign=True)
        self.config = wanted
        if not wanted:
            with self.lock:
                self.role = failover.INIT
                self.program(False)  # a lone director again: its VIPs go up
            return
        config = failover.Config.from_dict(wanted)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, args=(config, self._stop), name="umw-failover", daemon=True
        )
        self._thread.start()

    def stop(self, resign: bool = True) -> None:
        """Leave the pair: a MASTER drops its VIPs and resigns (priority 0) so the peer takes over at once."""
        thread = self._thread
        if thread is None:
            return
        self._resign = resign
        self._stop.set()
        thread.join(timeout=10)
        self._thread = None
        self.runner = None

    def _loop(self, config: failover.Config, stop: threading.Event) -> None:
        """The pair thread: bind (retrying while the address is missing), then run the protocol until stopped."""
        transport = None
        for attempt in range(1_000_000):
            try:
                transport = failover.UdpTransport(config, netns=self.netns)
                break
            except OSError as exc:
                if attempt == 0:
                    self.emit(
                        "agent",
                        f"failover: cannot bind {config.local_address}:{config.port}: {exc}; retrying",
                        level="error",
                    )
                    self.flush()
            if stop.wait(1.0):
                return
        if transport is None:
            return
        runner = failover.Runner(self.name, config, transport, self._on_transition)
        self.runner = runner
        try:
            runner.start()
            while not stop.is_set():
                runner.step(max_wait=0.2)
                self._garp_repeat()
            if self._resign and runner.state == failover.MASTER:
                with self.lock:
                    self.role = failover.BACKUP
                    self.program(False)
                runner.resign()
                self.emit("agent", "failover: left the pair, VIPs released", data={"ha": "resigned"})
        except Exception:
            log.exception("failover thread failed")
        finally:
            transport.close()
            with self.lock:
                self.role = failover.INIT

    # -- role changes ----------------------------------------------------------------------------------------
    def _on_transition(self, role: str, reason: str) -> None:
        """Pair-thread callback: VIPs follow the role, a new MASTER announces them, and it is an event."""
        started = time.monotonic()
        with self.lock:
            self.role = role
            outcome = self.program(True)
            state = self.desired()
            wan = state.wan_interface if state else ""
            vips = list(state.vips) if state else []
        garp = 0
        if role == failover.MASTER and wan:
            garp = self._send_garp(wan, vips)
            self._garp_due = [time.monotonic() + d for d in GARP_REPEATS]
        else:
            self._garp_due = []
        seconds = round(time.monotonic() - started, 4)
        self.emit(
            "agent",
            f"failover: {role}: {reason}",
            level="warning" if role == failover.MASTER else "info",
            data={"ha": role, "reason": reason, "garp": garp, "seconds": seconds, **outcome},
        )
        log.warning("failover: %s: %s (%s s)", role, reason, seconds)
        self.flush()

    def _garp_repeat(self) -> None:
        """Gratuitous ARP again shortly after a takeover, in case the first frames met a busy neighbour."""
        if not self._garp_due or time.monotonic() < self._garp_due[0]:
            return
        self._garp_due = self._garp_due[1:]
        state = self.desired()
        if self.role == failover.MASTER and state and state.wan_interface:
            self._send_garp(state.wan_interface, list(state.vips))

    def _send_garp(self, wan: str, vips: list[str]) -> int:
        try:
            return failover.send_garp(wan, vips, netns=self.netns)
        except OSError as exc:
            log.warning("gratuitous ARP on %s failed: %s", wan, exc)
            return 0

    # -- reporting -------------------------------------------------------------------------------------------
    def snapshot(self) -> dict | None:
        """This director's side of the pair for the dashboard; None for a lone director."""
        runner = self.runner
        if not self.config:
            return None
        ago = runner.peer_seen_ago() if runner else None
        return {
            "state": self.role,
            "priority": int(self.config.get("priority", failover.DEFAULT_PRIORITY)),
            "peer_seen": None if ago is None else round(time.time() - ago, 3),
            "peer_seen_ago": None if ago is None else round(ago, 3),
            "peer": self.config.get("peer_address"),
            "rejected": runner.rejected if runner else 0,
        }
