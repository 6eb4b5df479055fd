"""VIPs, masquerade and ip_forward on a real kernel (inside the lab guest)."""

from __future__ import annotations

import socket
import threading

import pytest

from director import netfilter, sysctl, vip
from director.sysctl import in_netns

from .conftest import sh, wait_for

pytestmark = pytest.mark.kernel


def addresses(ifname: str = "wan") -> str:
    return sh("ip", "-o", "addr", "show", "dev", ifname)


def test_vip_ensure_adds_and_removes_only_its_own_addresses():
    wanted = ["172.16.10.152/24", "172.16.10.153/24", "2001:db8:10::52/64"]
    sh("ip", "addr", "add", "172.16.10.60/24", "dev", "wan")  # someone else's address
    try:
        out = vip.ensure("wan", wanted)
        assert sorted(out["added"]) == wanted
        text = addresses()
        assert "inet 172.16.10.152/24" in text and "wan:umw" in text
        assert "inet6 2001:db8:10::52/64" in text
        assert sorted(vip.list_vips("wan")) == wanted
        assert vip.ensure("wan", wanted) == {"added": [], "removed": []}
        out = vip.ensure("wan", ["172.16.10.152/24"])
        assert sorted(out["removed"]) == ["172.16.10.153/24", "2001:db8:10::52/64"]
        text = addresses()
        assert "172.16.10.153" not in text and "2001:db8:10::52" not in text
        assert "172.16.10.60/24" in text and "172.16.10.2/24" in text  # never touched
        vip.ensure("wan", [])
        text = addresses()
        assert "172.16.10.152" not in text and "172.16.10.60/24" in text
    finally:
        sh("ip", "addr", "del", "172.16.10.60/24", "dev", "wan", check=False)
        vip.ensure("wan", [])


def test_a_vip_answers_from_the_client_namespace(wire):
    vip.ensure("wan", ["172.16.10.152/24"])
    try:
        listener = socket.create_server(("172.16.10.152", 7000))
        with listener, in_netns("client"):
            conn = socket.create_connection(("172.16.10.152", 7000), timeout=5)
        conn.close()
    finally:
        vip.ensure("wan", [])


def rules() -> str:
    return netfilter.list_table() or netfilter.list_legacy()


def test_masquerade_is_installed_replaced_and_removed():
    try:
        backend = netfilter.ensure_masquerade("wan", ["192.168.1.0/24"])
        text = rules()
        assert "192.168.1.0/24" in text and "masquerade" in text.lower(), (backend, text)
        netfilter.ensure_masquerade("wan", ["192.168.1.0/24", "10.9.0.0/16"])
        text = rules()
        assert "192.168.1.0/24" in text and "10.9.0.0/16" in text
        netfilter.ensure_masquerade("wan", ["10.9.0.0/16"])
        assert "192.168.1.0/24" not in rules()
        if backend == "nft":
            assert sh("nft", "list", "tables").count("ultramonkey") == 1
        else:
            assert sh("iptables-legacy", "-t", "nat", "-S", "POSTROUTING").count("UMW-POSTROUTING") == 1
    finally:
        netfilter.ensure_masquerade("wan", [])
    assert "masquerade" not in rules().lower()


def test_masquerade_is_replaced_atomically_while_being_read():
    netfilter.ensure_masquerade("wan", ["192.168.1.0/24"])
    seen_without = []
    stop = threading.Event()

    def reader():
        for _ in range(200):
            if stop.is_set():
                return
            if "192.168.1.0/24" not in rules():
                seen_without.append(True)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(6):
            netfilter.ensure_masquerade("wan", ["192.168.1.0/24", f"10.{i}.0.0/16"])
    finally:
        stop.set()
        thread.join(60)
        netfilter.ensure_masquerade("wan", [])
    assert seen_without == []


def test_masquerade_rewrites_a_real_servers_outgoing_connection():
    """rs1 connects to the client network; the client sees the director's WAN address."""
    netfilter.ensure_masquerade("wan", ["192.168.1.0/24"])
    try:
        with in_netns("client"):
            listener = socket.create_server(("172.16.10.100", 7001))
        listener.settimeout(5)
        with listener:
            with in_netns("rs1"):
                out = socket.create_connection(("172.16.10.100", 7001), timeout=5)
            conn, peer = listener.accept()
            conn.close()
            out.close()
        assert peer[0] == "172.16.10.2"
    finally:
        netfilter.ensure_masquerade("wan", [])


def test_ip_forward_is_switched_and_restored():
    assert sysctl.get_ip_forward()
    try:
        sysctl.set_ip_forward(False)
        assert not sysctl.get_ip_forward()
        assert sh("sysctl", "-n", "net.ipv4.ip_forward").strip() == "0"
    finally:
        sysctl.set_ip_forward(True)
    assert wait_for(sysctl.get_ip_forward, timeout=2)


def test_sysctl_and_conntable_follow_a_network_namespace():
    def seen_by_ip_netns() -> bool:
        return sh("ip", "netns", "exec", "client", "sysctl", "-n", "net.ipv4.ip_forward").strip() == "1"

    before = seen_by_ip_netns()
    assert sysctl.get_ip_forward(netns="client") is before
    try:
        sysctl.set_ip_forward(not before, netns="client")
        assert sysctl.get_ip_forward(netns="client") is (not before)
        assert seen_by_ip_netns() is (not before)
        assert sysctl.get_ip_forward() is True  # the director's own switch did not move
    finally:
        sysctl.set_ip_forward(before, netns="client")
    assert seen_by_ip_netns() is before
    from director import conntable

    assert conntable.query(netns="client", max_age=0)["total"] == 0
