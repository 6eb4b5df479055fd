"""Kernel switches the director needs (net.ipv4.ip_forward, IPv6 forwarding), and netns plumbing.

/proc/sys/net and /proc/net show the network namespace of the *thread* that opens them, so `in_netns()`
switches only the calling thread (setns) and switches back afterwards: the agent can run in the host and
still manage a director namespace (the lab does exactly that).
"""

from __future__ import annotations

import contextlib
import os


@contextlib.contextmanager
def in_netns(netns: str | None):
    """Run the block with the calling thread inside network namespace `netns` (None: stay where we are)."""
    if not netns:
        yield
        return
    from pyroute2 import netns as pr_netns

    saved = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        pr_netns.setns(netns, flags=0)  # flags=0: never create it
        try:
            yield
        finally:
            pr_netns.setns(saved, flags=0)
    finally:
        os.close(saved)


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def set_ip_forward(enabled: bool, netns: str | None = None, ipv6: bool = False) -> None:
    """Write net.ipv4.ip_forward (and net.ipv6.conf.all.forwarding when ipv6=True); only if it differs."""
    paths = ["/proc/sys/net/ipv4/ip_forward"]
    if ipv6:
        paths.append("/proc/sys/net/ipv6/conf/all/forwarding")
    value = "1" if enabled else "0"
    with in_netns(netns):
        for path in paths:
            if _read(path) != value:
                _write(path, value)


def get_ip_forward(netns: str | None = None) -> bool:
    with in_netns(netns):
        return _read("/proc/sys/net/ipv4/ip_forward") == "1"
