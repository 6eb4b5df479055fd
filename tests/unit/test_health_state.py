"""The pure per-real state machine (retries, failurecount, rise) and the per-service quorum."""

from __future__ import annotations

from director.health.state import Quorum, RealHealth


def feed(machine: RealHealth, outcomes: str) -> list[bool | None]:
    """Feed attempts ('+' ok, '-' failed); return the new state after each change, None otherwise."""
    changes = []
    for c in outcomes:
        step = machine.observe(c == "+")
        changes.append(step.up if step.changed else None)
    return changes


def test_it_decides_the_initial_state_on_the_first_round():
    assert feed(RealHealth(failurecount=3), "+") == [True]
    assert feed(RealHealth(failurecount=3), "-") == [False]


def test_it_goes_down_only_after_failurecount_consecutive_failures():
    m = RealHealth(failurecount=3, up=True)
    assert feed(m, "--+--+---") == [None] * 8 + [False]


def test_it_comes_back_only_after_rise_consecutive_successes():
    m = RealHealth(rise=2, up=False)
    assert feed(m, "+-+-++") == [None, None, None, None, None, True]


def test_it_notifies_only_on_change():
    m = RealHealth()
    assert feed(m, "+++---+++") == [True, None, None, False, None, None, True, None, None]


def test_it_retries_within_a_round_before_counting_a_failure():
    m = RealHealth(retries=3, up=True)
    steps = [m.observe(False), m.observe(False)]
    assert all(s.retry and not s.changed for s in steps)
    final = m.observe(False)
    assert not final.retry and final.changed and final.up is False


def test_it_ends_the_round_on_the_first_successful_retry():
    m = RealHealth(retries=3, failurecount=1, up=True)
    assert m.observe(False).retry
    step = m.observe(True)
    assert not step.retry and not step.changed and m.up
    assert m.observe(False).retry  # a fresh round gets all its attempts again


def test_it_keeps_a_flapping_server_down_with_rise_and_failurecount():
    m = RealHealth(failurecount=2, rise=3, up=True)
    changes = feed(m, "+-+-+--+-+-+++")
    assert changes.count(False) == 1 and changes.count(True) == 1
    assert changes.index(False) == 6 and changes.index(True) == 13


def test_it_meets_quorum_with_hysteresis():
    q = Quorum(quorum=3, hysteresis=1)
    assert q.update(3) is True  # first verdict is plain quorum
    assert q.update(2) is None  # 2 >= 3 - 1: still up
    assert q.update(1) is False
    assert q.update(3) is None  # needs 3 + 1 to come back
    assert q.update(4) is True


def test_it_reports_quorum_without_hysteresis():
    q = Quorum(quorum=1)
    assert q.update(0) is False
    assert q.update(1) is True
    assert q.update(2) is None
