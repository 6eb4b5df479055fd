"""director/vrrp.py: keepalived's configuration from the desired state (exact text), notify lines, reasons."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from director import vrrp

PAIR = {
    "local_address": "100.64.0.2",
    "peer_address": "100.64.0.3",
    "secret": "s3cr3t-pair-key",
    "priority": 150,
}
PATHS = vrrp.Paths("/var/lib/ultramonkey/keepalived")

EXPECTED_V2 = """\
# Written by the Ultra Monkey director agent from its desired state (director/vrrp.py):
# edits here are overwritten. keepalived runs VRRP only (--vrrp) under the agent.
global_defs {
  router_id umw-lab1
  notify_fifo /var/lib/ultramonkey/keepalived/notify.fifo
  enable_script_security
}
vrrp_script umw_agent {
  script /var/lib/ultramonkey/keepalived/agent-alive.sh
  interval 2
  timeout 2
  fall 3
  rise 1
}
vrrp_instance umw {
  state BACKUP
  interface eth1
  version 2
  virtual_router_id 51
  priority 150
  advert_int 1
  unicast_src_ip 100.64.0.2
  unicast_peer {
    100.64.0.3
  }
  check_unicast_src
  authentication {
    auth_type PASS
    auth_pass s3cr3t-p
  }
  garp_master_delay 1
  garp_master_repeat 3
  virtual_ipaddress {
    127.255.0.51/32 dev lo
  }
  virtual_ipaddress_excluded {
    172.16.10.52/24 dev eth0
    2001:db8::52/64 dev eth0
  }
  track_script {
    umw_agent
  }
}
"""

EXPECTED_V3_NOPREEMPT = """\
# Written by the Ultra Monkey director agent from its desired state (director/vrrp.py):
# edits here are overwritten. keepalived runs VRRP only (--vrrp) under the agent.
global_defs {
  router_id umw-lab2
  notify_fifo /var/lib/ultramonkey/keepalived/notify.fifo
  enable_script_security
}
vrrp_instance umw {
  state BACKUP
  interface eth0
  version 3
  virtual_router_id 7
  priority 100
  advert_int 0.25
  nopreempt
  unicast_src_ip 2001:db8::3
  unicast_peer {
    2001:db8::2
  }
  check_unicast_src
  garp_master_delay 1
  garp_master_repeat 3
  virtual_ipaddress {
    fd00:756d:7700::7/128 dev lo
  }
  virtual_ipaddress_excluded {
    2001:db8::52/64 dev eth0
  }
}
"""


def test_it_renders_an_ipv4_pair_as_vrrpv2_with_pass_authentication_and_every_vip_excluded():
    config = vrrp.Config.from_dict(PAIR)
    text = vrrp.render(
        "lab1", config, "eth1", "eth0", ["172.16.10.52/24", "2001:db8::52/64", "172.16.10.52"], PATHS
    )
    assert text == EXPECTED_V2


def test_it_renders_an_ipv6_or_subsecond_pair_as_vrrpv3_without_authentication():
    config = vrrp.Config.from_dict(
        {
            "local_address": "2001:db8::3",
            "peer_address": "2001:db8::2",
            "priority": 100,
            "interval": 0.25,
            "preempt": False,
            "vrid": 7,
            "track_agent": False,
        }
    )
    assert vrrp.render("lab2", config, "eth0", "eth0", ["2001:db8::52/64"], PATHS) == EXPECTED_V3_NOPREEMPT
    v4_fast = vrrp.Config.from_dict({**PAIR, "interval": 0.5, "secret": ""})
    assert v4_fast.version == 3 and "authentication" not in vrrp.render("lab1", v4_fast, "e", "e", [], PATHS)


def test_it_leaves_out_the_excluded_block_when_there_is_no_vip():
    text = vrrp.render("lab1", vrrp.Config.from_dict(PAIR), "eth0", "eth0", [], PATHS)
    assert "virtual_ipaddress_excluded" not in text and "127.255.0.51/32 dev lo" in text


def test_it_ignores_the_home_made_protocols_settings_in_an_old_saved_state():
    old = {**PAIR, "port": 5405, "interval": 1.0, "preempt": True}
    assert vrrp.Config.from_dict(old) == vrrp.Config.from_dict(PAIR)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"peer_address": "2001:db8::1"}, "same family"),
        ({"peer_address": "100.64.0.2"}, "our own"),
        ({"priority": 255}, "priority must be 1-254"),
        ({"priority": 0}, "priority must be 1-254"),
        ({"vrid": 0}, "virtual router id must be 1-255"),
        ({"vrid": 256}, "virtual router id must be 1-255"),
        ({"interval": 41}, "advert interval"),
        ({"interval": 0.001}, "advert interval"),
        ({"secret": "short"}, "at least 8 characters"),
        ({"secret": "has space in it"}, "may only hold"),
        ({"secret": 'quote"12345'}, "may only hold"),
        ({"local_address": "not-an-ip"}, "failover:"),
        ({"sync_id": 300}, "sync_id"),
    ],
)
def test_it_rejects_a_bad_pair_with_a_specific_message(change, message):
    with pytest.raises(ValueError, match=message):
        vrrp.Config.from_dict({**PAIR, **change})


def test_it_rejects_names_and_paths_keepalived_cannot_read_safely():
    config = vrrp.Config.from_dict(PAIR)
    with pytest.raises(ValueError, match="bad interface"):
        vrrp.render("lab1", config, "eth0 }", "eth0", [], PATHS)
    with pytest.raises(ValueError, match="bad director name"):
        vrrp.render("lab 1", config, "eth0", "eth0", [], PATHS)
    with pytest.raises(ValueError, match="state directory"):
        vrrp.Paths("/var/lib/my state")
    with pytest.raises(ValueError, match="state directory"):
        vrrp.Paths("relative/dir")


def test_it_computes_rfc5798s_master_down_interval():
    config = vrrp.Config.from_dict({**PAIR, "priority": 100, "interval": 1.0})
    assert config.master_down == pytest.approx(3 + 156 / 256)


@given(
    vrid=st.integers(1, 255),
    priority=st.integers(1, 254),
    centis=st.integers(1, 4095),
    preempt=st.booleans(),
    v6=st.booleans(),
)
def test_it_renders_every_valid_pair_with_balanced_braces_and_the_same_marker_on_both_sides(
    vrid, priority, centis, preempt, v6
):
    a, b = ("2001:db8::2", "2001:db8::3") if v6 else ("10.0.0.2", "10.0.0.3")
    common = {"vrid": vrid, "interval": centis / 100, "preempt": preempt, "secret": "abcdefgh-secret"}
    one = vrrp.Config.from_dict({**common, "local_address": a, "peer_address": b, "priority": priority})
    two = vrrp.Config.from_dict({**common, "local_address": b, "peer_address": a, "priority": 100})
    text_one = vrrp.render("d1", one, "eth0", "eth0", ["10.1.1.1/32", "2001:db8:1::1/128"], PATHS)
    text_two = vrrp.render("d2", two, "eth0", "eth0", ["10.1.1.1/32"], PATHS)
    for text in (text_one, text_two):
        assert text.count("{") == text.count("}")
    marker = lambda text: text.split("virtual_ipaddress {\n", 1)[1].split("\n", 1)[0]  # noqa: E731
    assert marker(text_one) == marker(text_two)  # different VIP lists never split the election
    assert ipaddress.ip_interface(marker(text_one).split()[0]).version == (6 if v6 else 4)
    assert (one.version == 2) == (not v6 and centis % 100 == 0)


def test_it_reads_instance_lines_of_the_notify_fifo_and_nothing_else():
    assert vrrp.parse_notify('INSTANCE "umw" MASTER 150\n') == vrrp.Notice("MASTER", 150)
    assert vrrp.parse_notify('INSTANCE "umw" FAULT 0') == vrrp.Notice("FAULT", 0)
    for line in ('INSTANCE "other" MASTER 150', 'GROUP "umw" MASTER 150', 'INSTANCE "umw" WEIRD 1', "", '"'):
        assert vrrp.parse_notify(line) is None


LOG = """\
Tue Dec  1 11:58:19 2026: (umw) Entering BACKUP STATE (init)
Tue Dec  1 11:58:26 2026: (umw) Backup received priority 0 advertisement
Tue Dec  1 11:58:26 2026: (umw) Receive advertisement timeout
Tue Dec  1 11:58:26 2026: (umw) Entering MASTER STATE
Tue Dec  1 11:58:26 2026: (umw) setting VIPs.
Tue Dec  1 11:58:26 2026: Sending gratuitous ARP on kb0 for 10.9.0.200
Keepalived_vrrp[903]: (umw) Master received advert from 10.9.0.1 with higher priority 150, ours 100
Keepalived_vrrp[903]: (umw) Entering BACKUP STATE
Keepalived_vrrp[903]: (umw) removing VIPs.
Keepalived_vrrp[903]: Script `umw_agent` now returning 1
Keepalived_vrrp[903]: VRRP_Script(umw_agent) failed (exited with status 1)
Keepalived_vrrp[903]: (umw) Entering FAULT STATE
""".splitlines()


def test_it_takes_the_reason_of_a_transition_from_keepalived_s_own_log():
    assert (
        vrrp.reason(LOG, "MASTER")
        == "Backup received priority 0 advertisement; Receive advertisement timeout"
    )
    silent = [
        "(umw) Entering BACKUP STATE",
        "(umw) Receive advertisement timeout",
        "(umw) Entering MASTER STATE",
    ]
    assert vrrp.reason(silent, "MASTER") == "Receive advertisement timeout"  # nothing from before BACKUP
    assert (
        vrrp.reason(LOG, "BACKUP")
        == "Master received advert from 10.9.0.1 with higher priority 150, ours 100"
    )
    assert vrrp.reason(LOG, "FAULT") == (
        "Script `umw_agent` now returning 1; VRRP_Script(umw_agent) failed (exited with status 1)"
    )
    assert vrrp.reason(LOG[:1], "BACKUP") == "keepalived started"
    assert vrrp.reason(LOG, "STOP") == ""
