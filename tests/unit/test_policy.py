"""The table rules: admin state and health decide presence and weight of each real server."""

from hypothesis import given
from hypothesis import strategies as st

from director.desired import CheckSpec, RealSpec, ServiceSpec
from director.ipvs.model import service_from_spec
from director.policy import kernel_reals, quorum_up

RS1 = RealSpec("192.168.1.4", 80, weight=3)
RS2 = RealSpec("192.168.1.5", 80, weight=2)
SORRY = RealSpec("192.168.1.9", 80)


def _svc(*reals, quiescent=True, fallback=None, **check):
    return ServiceSpec(
        "tcp",
        "172.16.10.52",
        80,
        check=CheckSpec(quiescent=quiescent, **check),
        reals=reals,
        fallback=fallback,
    )


def _table(spec, health=None, quorum=None):
    return {r.address: w for r, w in kernel_reals(spec, health or {}, quorum)}


def test_it_uses_the_configured_weight_for_healthy_and_unchecked_servers():
    assert _table(_svc(RS1, RS2), {RS1.key: True}) == {"192.168.1.4": 3, "192.168.1.5": 2}


def test_it_sets_weight_zero_for_a_draining_server():
    drained = RealSpec("192.168.1.4", 80, weight=3, admin_state="draining")
    assert _table(_svc(drained, RS2)) == {"192.168.1.4": 0, "192.168.1.5": 2}


def test_it_removes_a_server_in_maintenance():
    maint = RealSpec("192.168.1.4", 80, admin_state="maintenance")
    assert _table(_svc(maint, RS2)) == {"192.168.1.5": 2}


def test_it_quiesces_a_failed_server_when_quiescent():
    assert _table(_svc(RS1, RS2), {RS1.key: False}) == {"192.168.1.4": 0, "192.168.1.5": 2}


def test_it_removes_a_failed_server_when_not_quiescent():
    assert _table(_svc(RS1, RS2, quiescent=False), {RS1.key: False}) == {"192.168.1.5": 2}


def test_it_adds_the_fallback_only_while_nothing_can_serve():
    spec = _svc(RS1, RS2, fallback=SORRY)
    assert "192.168.1.9" not in _table(spec, {RS1.key: False})
    assert _table(spec, {RS1.key: False, RS2.key: False}) == {
        "192.168.1.4": 0,
        "192.168.1.5": 0,
        "192.168.1.9": 1,
    }


def test_it_keeps_a_drained_server_at_zero_even_when_its_check_recovers():
    drained = RealSpec("192.168.1.4", 80, weight=3, admin_state="draining")
    assert _table(_svc(drained), {drained.key: True}) == {"192.168.1.4": 0}


def test_it_counts_a_passing_weight_zero_server_as_up_under_the_ldirectord_rule():
    idle = RealSpec("192.168.1.4", 80, weight=0)
    assert _table(_svc(idle, fallback=SORRY), {idle.key: True}) == {"192.168.1.4": 0}


def test_it_loses_keepalived_quorum_with_a_live_weight_of_zero_and_swaps_in_the_sorry_server():
    idle = RealSpec("192.168.1.4", 80, weight=0)
    spec = _svc(idle, RS2, fallback=SORRY, fallback_rule="keepalived", quiescent=False)
    # RS2 failed and is removed; the live idle server is replaced by the sorry server
    assert _table(spec, {idle.key: True, RS2.key: False}) == {"192.168.1.9": 1}


def test_it_keeps_quiesced_failed_servers_next_to_the_sorry_server():
    spec = _svc(RS1, RS2, fallback=SORRY, fallback_rule="keepalived", quorum=3)
    # live weight 2 (RS2) < quorum 3: RS2 (live) goes, RS1 (failed, quiescent) stays at 0
    assert _table(spec, {RS1.key: False, RS2.key: True}) == {"192.168.1.4": 0, "192.168.1.9": 1}
    assert _table(spec, {}) == {"192.168.1.4": 3, "192.168.1.5": 2}  # live weight 5


def test_it_changes_nothing_on_keepalived_quorum_loss_without_a_sorry_server():
    spec = _svc(RS1, RS2, fallback_rule="keepalived", quorum=10)
    assert _table(spec, {RS1.key: False}) == {"192.168.1.4": 0, "192.168.1.5": 2}


def test_it_applies_hysteresis_to_the_live_weight():
    spec = _svc(RS1, RS2, fallback=SORRY, fallback_rule="keepalived", quorum=4, hysteresis=1)
    both, one = {}, {RS1.key: False}  # live weight 5, then 2
    assert quorum_up(spec, both, None) is True
    assert quorum_up(spec, {RS2.key: False}, None) is False  # 3 < 4 + 1: keepalived starts with quorum down
    assert quorum_up(spec, {RS2.key: False}, True) is True  # 3 is not below 4 - 1
    assert quorum_up(spec, one, True) is False  # 2 < 3
    assert quorum_up(spec, {RS2.key: False}, False) is False  # 3 is below 4 + 1
    assert quorum_up(spec, both, False) is True  # 5 >= 5
    assert _table(spec, {RS2.key: False}, quorum=False) == {"192.168.1.5": 0, "192.168.1.9": 1}
    assert _table(spec, {RS2.key: False}, quorum=True) == {"192.168.1.4": 3, "192.168.1.5": 0}


@given(
    weights=st.lists(st.integers(0, 5), min_size=1, max_size=4),
    ups=st.lists(st.booleans(), min_size=4, max_size=4),
    quorum=st.integers(0, 12),
    hysteresis=st.integers(0, 4),
    was=st.sampled_from([None, True, False]),
)
def test_it_decides_quorum_as_keepalived_does(weights, ups, quorum, hysteresis, was):
    reals = tuple(RealSpec(f"192.168.1.{i + 10}", 80, weight=w) for i, w in enumerate(weights))
    spec = _svc(*reals, fallback=SORRY, fallback_rule="keepalived", quorum=quorum, hysteresis=hysteresis)
    health = {r.key: up for r, up in zip(reals, ups, strict=False)}
    live = sum(r.weight for r, up in zip(reals, ups, strict=False) if up)
    got = quorum_up(spec, health, was)
    if live == 0:
        assert got is False
    elif was is None:  # keepalived starts with quorum down below quorum + hysteresis
        assert got is (live >= quorum + hysteresis)
    elif was is True:
        assert got is (live >= quorum - hysteresis)
    elif was is False:
        assert got is (live >= quorum + hysteresis)
    table = _table(spec, health, got)
    assert ("192.168.1.9" in table) is (not got)
    if not got:  # the live ones are gone, failed ones stay quiesced
        assert all(table.get(r.address) in (None, 0) or r.address == "192.168.1.9" for r in reals)


def test_it_uses_a_real_servers_own_inhibit_on_failure_over_the_services():
    quiet = RealSpec("192.168.1.4", 80, weight=3, quiescent=True)
    loud = RealSpec("192.168.1.5", 80, weight=2, quiescent=False)
    spec = _svc(quiet, loud, quiescent=False)
    assert _table(spec, {quiet.key: False, loud.key: False}) == {"192.168.1.4": 0}
    assert _table(_svc(quiet, loud, quiescent=True), {quiet.key: False, loud.key: False}) == {
        "192.168.1.4": 0
    }


def test_it_starts_servers_down_until_checked_with_start_down():
    spec = _svc(RS1, RS2, fallback=SORRY, start_down=True)
    assert _table(spec) == {"192.168.1.4": 0, "192.168.1.5": 0, "192.168.1.9": 1}
    assert _table(spec, {RS1.key: True}) == {"192.168.1.4": 3, "192.168.1.5": 0}


def test_it_gives_a_gate_fallback_the_virtual_port():
    sorry = RealSpec("192.168.1.9", 8080, forwarding="gate")
    spec = _svc(RS1, fallback=sorry)
    (dest,) = [
        d for d in service_from_spec(spec, kernel_reals(spec, {RS1.key: False})).dests if d.weight == 1
    ]
    assert (dest.address, dest.port) == ("192.168.1.9", 80)
    masq = _svc(RS1, fallback=RealSpec("192.168.1.9", 8080))
    assert {d.port for d in service_from_spec(masq, kernel_reals(masq, {RS1.key: False})).dests} == {80, 8080}
    assert CheckSpec().fallback_rule == "ldirectord"


def test_it_adds_nothing_for_checktype_off_as_ldirectord():
    assert _table(_svc(RS1, RS2, fallback=SORRY, checktype="off")) == {}
