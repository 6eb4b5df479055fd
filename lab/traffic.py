"""Lab traffic generator: a steady trickle of HTTP and TCP connections from the guest's client namespace.

Run inside a lab guest (as root) so the live stats on the dashboard move. Bounded in rate and duration;
it only ever talks to the lab VIP inside the guest.

usage: python lab/traffic.py [--vip 172.16.10.52] [--rate 10] [--duration 86400]
"""

from __future__ import annotations

import argparse
import random
import socket
import time

from pyroute2.netns import popns, pushns


def connect(vip: str, port: int, netns: str, timeout: float = 2.0) -> socket.socket:
    """Create the socket inside `netns` (only the socket; the process stays where it is)."""
    pushns(netns)
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    finally:
        popns()
    s.settimeout(timeout)
    s.connect((vip, port))
    return s


def one_http(vip: str, netns: str) -> None:
    with connect(vip, 80, netns) as s:
        s.sendall(b"GET /index.html HTTP/1.0\r\nHost: lab\r\n\r\n")
        while s.recv(4096):
            pass


def one_tcp(vip: str, netns: str) -> None:
    with connect(vip, 5500, netns) as s:
        s.sendall(b"hello\n")
        s.recv(4096)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vip", default="172.16.10.52")
    ap.add_argument("--netns", default="client")
    ap.add_argument("--rate", type=float, default=10.0, help="connections per second (max 200)")
    ap.add_argument("--sessions", type=int, default=6, help="long-lived connections kept open (max 100)")
    ap.add_argument("--duration", type=float, default=86400.0, help="seconds before exiting (max 7 days)")
    args = ap.parse_args()
    rate = min(max(args.rate, 0.1), 200.0)
    end = time.monotonic() + min(args.duration, 7 * 86400)
    n = 0
    held: list[tuple[socket.socket, float]] = []  # long-lived sessions: ActiveConn, and drains take time
    while time.monotonic() < end:
        t0 = time.monotonic()
        try:
            (one_tcp if n % 5 == 4 else one_http)(args.vip, args.netns)
        except OSError:
            pass  # nothing listening yet, or a real server down: keep the trickle going
        n += 1
        held = keep_sessions(held, args.vip, args.netns, args.sessions, t0)
        time.sleep(max(0.0, 1.0 / rate - (time.monotonic() - t0)))


def keep_sessions(held: list, vip: str, netns: str, want: int, now: float) -> list:
    """Close sessions whose time is up, open new ones (20-120 s each) so `want` stay established."""
    alive = []
    for s, until in held:
        if until < now:
            s.close()
        else:
            alive.append((s, until))
    if len(alive) < min(want, 100):
        try:
            s = connect(vip, 5500 if random.random() < 0.5 else 80, netns)
            alive.append((s, now + random.uniform(20, 120)))
        except OSError:
            pass
    return alive


if __name__ == "__main__":
    main()
