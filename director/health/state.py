"""Pure state machines: one real server's health (retries, failurecount, rise) and a service's quorum.

No I/O and no clock here, so every rule is a plain unit test. The engine feeds in attempt outcomes and
acts on what comes back; a transition is reported only when the state actually changes (seesaw's
"notify on change only"), so the agent never re-applies a weight for a server that merely stayed up.

Rules, per real server:

- A *round* is up to `retries` attempts (keepalived's retry + delay_before_retry): the first success ends
  the round as a success; only when every attempt failed is the round a failure.
- An UP server goes DOWN after `failurecount` consecutive failed rounds (ldirectord's soft failures).
- A DOWN server comes UP after `rise` consecutive successful rounds (hysteresis against flapping).
- The very first round decides the initial state either way (UNKNOWN -> UP or DOWN at once), so the
  agent learns where it stands one interval after a (re)start instead of after failurecount intervals.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Step:
    """What the engine should do after an attempt.

    retry: the round is not over; try again after delay_before_retry.
    changed: the round ended with a state change; `up` is the new state.
    """

    retry: bool
    changed: bool
    up: bool | None


class RealHealth:
    """Health of one real server as seen by one virtual service's checks."""

    __slots__ = ("failurecount", "rise", "retries", "up", "fails", "successes", "attempt")

    def __init__(self, failurecount: int = 1, rise: int = 1, retries: int = 1, up: bool | None = None):
        self.failurecount = max(1, int(failurecount))
        self.rise = max(1, int(rise))
        self.retries = max(1, int(retries))
        self.up = up
        self.fails = 0  # consecutive failed rounds while up
        self.successes = 0  # consecutive successful rounds while down
        self.attempt = 0  # failed attempts in the current round

    def observe(self, ok: bool) -> Step:
        """Feed one attempt's outcome."""
        if not ok:
            self.attempt += 1
            if self.attempt < self.retries:
                return Step(True, False, self.up)
        self.attempt = 0
        return self.end_round(ok)

    def end_round(self, ok: bool) -> Step:
        """Apply a finished round (the engine calls `observe`; this is public for tests and tooling)."""
        previous = self.up
        if self.up is None:
            self.up = ok
        elif self.up:
            self.successes = 0
            self.fails = 0 if ok else self.fails + 1
            if self.fails >= self.failurecount:
                self.up, self.fails = False, 0
        else:
            self.fails = 0
            self.successes = self.successes + 1 if ok else 0
            if self.successes >= self.rise:
                self.up, self.successes = True, 0
        return Step(False, self.up != previous, self.up)


class Quorum:
    """keepalived's quorum with hysteresis for one virtual service.

    The service is "up" once healthy >= quorum + hysteresis and stays up until healthy < quorum -
    hysteresis; `update` returns the new verdict only when it flips.
    """

    __slots__ = ("quorum", "hysteresis", "met")

    def __init__(self, quorum: int = 1, hysteresis: int = 0):
        self.quorum = max(0, int(quorum))
        self.hysteresis = max(0, int(hysteresis))
        self.met: bool | None = None

    def update(self, healthy: int) -> bool | None:
        previous = self.met
        if self.met is None:
            self.met = healthy >= self.quorum
        elif self.met and healthy < self.quorum - self.hysteresis:
            self.met = False
        elif not self.met and healthy >= self.quorum + self.hysteresis:
            self.met = True
        return self.met if self.met != previous else None
