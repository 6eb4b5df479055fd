"""Host-side helpers around IPVS: the nft script for masquerade, VIP bookkeeping (pure parts)."""

import pytest

from director import netfilter, vip


def test_the_masquerade_script_replaces_our_table_in_one_transaction():
    script = netfilter.render("wan", ["192.168.1.0/24", "10.0.0.7/8", "192.168.1.0/24"])
    assert script == (
        "table ip ultramonkey {}\n"
        "delete table ip ultramonkey\n"
        "table ip ultramonkey {\n"
        "  chain postrouting {\n"
        "    type nat hook postrouting priority srcnat; policy accept;\n"
        '    ip saddr 10.0.0.0/8 oifname "wan" masquerade\n'
        '    ip saddr 192.168.1.0/24 oifname "wan" masquerade\n'
        "  }\n"
        "}\n"
        "table ip6 ultramonkey {}\n"
        "delete table ip6 ultramonkey\n"
    )


def test_ipv6_subnets_go_to_an_ip6_table_and_no_subnets_delete_our_tables():
    assert 'ip6 saddr 2001:db8:1::/64 oifname "eth1" masquerade' in netfilter.render(
        "eth1", ["2001:db8:1::/64"]
    )
    assert netfilter.render("wan", []) == (
        "table ip ultramonkey {}\ndelete table ip ultramonkey\ntable ip6 ultramonkey {}\ndelete table ip6 ultramonkey\n"
    )


@pytest.mark.parametrize("ifname", ['wan" ; flush ruleset ; "', "", "a" * 16, "wan\n", "-x"])
def test_it_refuses_interface_names_that_could_escape_the_script(ifname):
    with pytest.raises(ValueError):
        netfilter.render(ifname, ["192.168.1.0/24"])


@pytest.mark.parametrize("subnet", ["192.168.1.0/24; flush ruleset", "not-a-net", "192.168.1.0/33"])
def test_it_refuses_anything_but_networks(subnet):
    with pytest.raises(ValueError):
        netfilter.render("wan", [subnet])


def _addr(address, prefixlen=24, label="wan", proto=0):
    return {"address": address, "prefixlen": prefixlen, "label": label, "proto": proto}


def test_vips_are_added_when_missing_and_only_ours_are_removed():
    current = [
        _addr("172.16.10.2"),  # the director's own address
        _addr("172.16.10.52", label="wan:umw"),  # ours, still desired
        _addr("172.16.10.53", label="wan:umw"),  # ours, no longer desired
        _addr("2001:db8::53", 64, label="", proto=vip.UMW_ADDR_PROTO),  # ours (v6: proto mark)
        _addr("172.16.10.54", label="wan"),  # someone else's
    ]
    add, remove = vip.plan("wan", ["172.16.10.52/24", "172.16.10.55/24", "2001:db8::55/64"], current)
    assert [str(i) for i in add] == ["172.16.10.55/24", "2001:db8::55/64"]
    assert [e["address"] for e in remove] == ["172.16.10.53", "2001:db8::53"]


def test_a_long_interface_name_gets_no_label_and_relies_on_the_proto_mark():
    assert vip.label_for("wan") == "wan:umw"
    assert vip.label_for("enp0s31f6abcd") is None
    assert vip.is_ours(_addr("10.0.0.1", proto=vip.UMW_ADDR_PROTO, label=""), "enp0s31f6abcd")
    assert not vip.is_ours(_addr("10.0.0.1", label="enp0s31f6abcd"), "enp0s31f6abcd")


@pytest.fixture
def private_netns():
    """A throwaway network namespace (root + iproute2 + nft needed; skipped elsewhere)."""
    import os
    import shutil
    import subprocess

    if os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("ip"):
        pytest.skip("needs root, ip and nft")
    name = f"umwt{os.getpid()}"
    if subprocess.run(["ip", "netns", "add", name], capture_output=True, timeout=20).returncode != 0:
        pytest.skip("cannot create a network namespace here")
    try:
        probe = subprocess.run(
            ["ip", "netns", "exec", name, "nft", "add", "table", "ip", "probe"],
            capture_output=True,
            timeout=20,
        )
        if probe.returncode != 0:
            pytest.skip(f"this kernel has no nftables ip family: {probe.stderr.decode().strip()}")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=20)


def test_the_nft_backend_replaces_only_our_table_in_a_real_kernel(private_netns):
    import subprocess

    def ruleset():
        return subprocess.run(
            ["ip", "netns", "exec", private_netns, "nft", "list", "ruleset"],
            capture_output=True,
            text=True,
            timeout=20,
        ).stdout

    assert netfilter.ensure_masquerade("wan", ["192.168.1.0/24"], netns=private_netns) == "nft"
    assert 'ip saddr 192.168.1.0/24 oifname "wan" masquerade' in netfilter.list_table(private_netns)
    netfilter.ensure_masquerade("wan", ["10.1.0.0/16", "2001:db8:1::/64"], netns=private_netns)
    text = ruleset()
    assert "192.168.1.0/24" not in text and "10.1.0.0/16" in text and "2001:db8:1::/64" in text
    assert (
        text.count("table ip ultramonkey") == 1 and "table ip probe" in text
    )  # the other table is untouched
    netfilter.remove(netns=private_netns)
    text = ruleset()
    assert "ultramonkey" not in text and "table ip probe" in text
