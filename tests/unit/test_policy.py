"""The table rules: admin state and health decide presence and weight of each real server."""

from director.desired import CheckSpec, RealSpec, ServiceSpec
from director.policy import kernel_reals

RS1 = RealSpec("192.168.1.4", 80, weight=3)
RS2 = RealSpec("192.168.1.5", 80, weight=2)
SORRY = RealSpec("192.168.1.9", 80)


def _svc(*reals, quiescent=True, fallback=None):
    return ServiceSpec(
        "tcp", "172.16.10.52", 80, check=CheckSpec(quiescent=quiescent), reals=reals, fallback=fallback
    )


def _table(spec, health=None):
    return {r.address: w for r, w in kernel_reals(spec, health or {})}


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
