"""The one desired-state validator: every contract field has a rule, and what it refuses it names."""

from __future__ import annotations

import dataclasses

import pytest

from director import schema
from director.desired import CheckSpec, DesiredState, RealSpec, ServiceSpec


@pytest.mark.parametrize("cls", [DesiredState, ServiceSpec, RealSpec, CheckSpec, schema.vrrp.Config])
def test_every_field_of_the_contract_has_a_rule(cls):
    """A new CheckSpec (or any contract) field must say its ranges here, not just its type."""
    assert {f.name for f in dataclasses.fields(cls)} == set(schema.RULES[cls])


def good(**changes) -> dict:
    doc = {
        "director": "lab1",
        "revision": 3,
        "wan_interface": "wan",
        "vips": ["172.16.10.52/32", "2001:db8::52/128"],
        "masquerade": ["192.168.1.0/24"],
        "services": [
            {
                "protocol": "tcp",
                "address": "172.16.10.52",
                "port": 80,
                "check": {"service": "http", "virtualhost": "www.example.com", "expected_status": [200]},
                "reals": [{"address": "192.168.1.4", "port": 80}],
                "fallback": {"address": "192.168.1.9", "port": 80},
            },
            {"protocol": "fwmark", "fwmark": 7, "family": 4, "reals": [{"address": "192.168.1.5"}]},
        ],
        "failover": {"local_address": "100.64.0.2", "peer_address": "100.64.0.3", "secret": "pair-secret-1"},
    }
    doc.update(changes)
    return doc


def test_it_accepts_a_full_state_and_builds_the_contract_objects():
    state = schema.parse(good())
    assert isinstance(state, DesiredState) and state.services[0].reals[0] == RealSpec("192.168.1.4", 80)
    assert state.services[0].check.expected_status == (200,) and state.services[1].fwmark == 7


@pytest.mark.parametrize(
    "change, message",
    [
        ({"director": "lab1;rm"}, "director: not a valid director name"),
        ({"revision": True}, "revision: must be an integer, not bool"),
        ({"revision": 0}, "revision: must be 1..9007199254740992, not 0"),
        ({"vips": ["0.0.0.0/0"]}, "vips[0]: 0.0.0.0 cannot be a VIP"),
        ({"vips": ["10.0.0.1/4"]}, "vips[0]: prefix length must be 8..32"),
        ({"masquerade": ["0.0.0.0/1"]}, "masquerade[0]: 0.0.0.0/1 is too wide to masquerade"),
        ({"wan_interface": "eth0; reboot"}, "wan_interface: not a valid interface name"),
        ({"services": {"a": 1}}, "services: must be a list, not dict"),
        (
            {"services": [{"protocol": "tcp", "address": "1.2.3.4", "port": 70000}]},
            "services[0].port: must be 0..65535",
        ),
        (
            {"services": [{"protocol": "tcp", "port": 80}]},
            "services[0].address: a tcp service needs an address",
        ),
        (
            {"services": [{"protocol": "tcp", "address": "1.2.3.4", "reals": [{"address": "ff02::1"}]}]},
            "services[0].reals[0].address: ff02::1 cannot be an address",
        ),
        (
            {"services": [{"protocol": "tcp", "address": "1.2.3.4", "scheduler": "evil"}]},
            "scheduler: must be one of",
        ),
        (
            {
                "services": [
                    {"protocol": "tcp", "address": "1.2.3.4", "check": {"checkinterval": float("nan")}}
                ]
            },
            "must be a finite number",
        ),
        (
            {"services": [{"protocol": "tcp", "address": "1.2.3.4", "check": {"request": "x" * 5000}}]},
            "longer than 4096",
        ),
        (
            {
                "services": [
                    {"protocol": "tcp", "address": "1.2.3.4", "check": {"virtualhost": "a\r\nX-Evil: 1"}}
                ]
            },
            "virtualhost: must be printable ASCII",
        ),
        (
            {"services": [{"protocol": "tcp", "address": "1.2.3.4", "bogus": 1}]},
            "services[0]: unknown field(s) bogus",
        ),
        (
            {
                "failover": {
                    "local_address": "100.64.0.2",
                    "peer_address": "100.64.0.2",
                    "secret": "pair-secret-1",
                }
            },
            "failover: failover: the peer address is our own",
        ),
        (
            {"failover": {"local_address": "100.64.0.2", "peer_address": "100.64.0.3", "priority": 255}},
            "failover.priority: must be 1..254",
        ),
    ],
)
def test_it_names_what_it_refuses(change, message):
    with pytest.raises(schema.Invalid) as exc:
        schema.parse(good(**change))
    assert message in str(exc.value)


def test_it_never_raises_anything_but_invalid():
    for doc in (None, [], "x", 1, {"director": []}, {"director": "a", "revision": 1, "services": [None]}):
        with pytest.raises(schema.Invalid):
            schema.parse(doc)


def test_external_programs_only_from_a_root_owned_directory(tmp_path):
    checks = tmp_path / "checks"
    checks.mkdir(mode=0o755)
    program = checks / "check_web"
    program.write_text("#!/bin/sh\nexit 0\n")
    program.chmod(0o755)
    assert schema.external_program(f"{program} --strict", str(checks)) == str(program)
    for command, message in (
        ("/bin/sh -c 'curl x|sh'", "is not in the allowed directory"),
        ("check_web", "must be an absolute path"),
        (f"{checks}/../checks/../../etc/passwd", "is not in the allowed directory"),
        (f"{checks}/missing", "No such file"),
    ):
        with pytest.raises(schema.Invalid, match=message):
            schema.external_program(command, str(checks))
    program.chmod(0o777)
    with pytest.raises(schema.Invalid, match="not writable by group or others"):
        schema.external_program(str(program), str(checks))
    (checks / "link").symlink_to("/bin/sh")
    with pytest.raises(schema.Invalid, match="is not in the allowed directory"):
        schema.external_program(f"{checks}/link", str(checks))


def test_it_serialises_a_state_exactly_as_asdict_did():
    """DesiredState.to_dict skips asdict's deep copies (issue 17: 0.3 s at 37,000 reals), not any content:
    same keys, values and container types, and fresh containers (changing the dict leaves the state be)."""
    state = schema.parse(good())
    out = state.to_dict()
    assert out == dataclasses.asdict(state)
    assert type(out["services"]) is tuple and type(out["services"][0]["check"]["expected_status"]) is tuple
    out["failover"]["secret"] = "changed"
    assert state.failover["secret"] == "pair-secret-1"
    assert schema.parse(out | {"failover": state.failover}) == state
