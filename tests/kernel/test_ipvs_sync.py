"""The IPVS connection sync daemons through our own netlink codec and socket (ipvs/codec.py, wire.py), checked
with ipvsadm."""

from __future__ import annotations

import pytest

from director.ipvs.wire import Wire, WireError

from .conftest import sh

pytestmark = pytest.mark.kernel


@pytest.fixture
def sync_wire():
    w = Wire()
    yield w
    for role in w.daemons():
        w.stop_daemon(role)
    assert w.daemons() == {}
    w.close()


def test_it_starts_lists_and_stops_both_sync_daemons(sync_wire):
    assert sync_wire.daemons() == {}
    sync_wire.start_daemon("master", "wan", 5)
    sync_wire.start_daemon("backup", "wan", 5)
    assert sync_wire.daemons() == {
        "master": {"ifname": "wan", "sync_id": 5},
        "backup": {"ifname": "wan", "sync_id": 5},
    }
    out = sh("ipvsadm", "-L", "--daemon")
    assert (
        "master sync daemon (mcast=wan, syncid=5" in out and "backup sync daemon (mcast=wan, syncid=5" in out
    )
    with pytest.raises(WireError):  # one daemon of each kind per network namespace
        sync_wire.start_daemon("master", "wan", 6)
    sync_wire.stop_daemon("master")
    assert list(sync_wire.daemons()) == ["backup"]
