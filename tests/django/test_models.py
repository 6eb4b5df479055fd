"""Model validation: bad input is refused with a message naming the field."""

import pytest
from django.core.exceptions import ValidationError

from clusters.models import Director, RealServer, VirtualService

pytestmark = pytest.mark.django_db


@pytest.fixture
def director():
    return Director.objects.create(name="d1", wan_interface="eth0", lan_subnet="192.168.1.0/24")


def _errors(obj) -> dict:
    with pytest.raises(ValidationError) as exc:
        obj.full_clean()
    return exc.value.message_dict


def test_it_rejects_an_invalid_vip(director):
    assert "address" in _errors(VirtualService(director=director, address="300.1.1.1", port=80))


@pytest.mark.parametrize("port", [0, 65536, 70000])
def test_it_rejects_ports_outside_1_to_65535(director, port):
    assert "port" in _errors(VirtualService(director=director, address="10.0.0.1", port=port))


def test_it_rejects_an_unknown_scheduler(director):
    assert "scheduler" in _errors(
        VirtualService(director=director, address="10.0.0.1", port=80, scheduler="fastest")
    )


def test_it_rejects_a_fwmark_service_with_a_port(director):
    errors = _errors(VirtualService(director=director, protocol="fwmark", fwmark=1, port=80))
    assert "no port" in errors["port"][0]


@pytest.mark.parametrize("weight", [-1, 65536])
def test_it_rejects_weights_outside_0_to_65535(director, weight):
    vs = VirtualService.objects.create(director=director, address="10.0.0.1", port=80)
    assert "weight" in _errors(RealServer(service=vs, address="192.168.1.4", port=80, weight=weight))


def test_it_rejects_an_ipv6_real_behind_an_ipv4_masq_service(director):
    vs = VirtualService.objects.create(director=director, address="10.0.0.1", port=80)
    errors = _errors(RealServer(service=vs, address="2001:db8::4", port=80, forwarding="masq"))
    assert "IPv6 real server cannot sit behind an IPv4" in errors["address"][0]


def test_it_allows_mixed_families_through_an_ipip_tunnel(director):
    vs = VirtualService.objects.create(director=director, address="10.0.0.1", port=80)
    RealServer(service=vs, address="2001:db8::4", port=80, forwarding="ipip").full_clean()


def test_it_refuses_a_duplicate_vip_port_protocol_on_one_director(director):
    VirtualService.objects.create(director=director, address="10.0.0.1", port=80)
    errors = _errors(VirtualService(director=director, address="10.0.0.1", port=80))
    assert "already has a virtual service" in str(errors)


def test_it_allows_the_same_vip_port_on_another_protocol(director):
    VirtualService.objects.create(director=director, address="10.0.0.1", port=53, protocol="tcp")
    VirtualService(director=director, address="10.0.0.1", port=53, protocol="udp").full_clean()


def test_it_derives_the_family_from_the_vip(director):
    vs = VirtualService(director=director, address="2001:db8::1", port=443)
    vs.full_clean()
    assert vs.family == 6
    assert vs.label == "TCP [2001:db8::1]:443"


def test_it_rejects_a_bad_interface_name():
    assert "wan_interface" in _errors(Director(name="x", wan_interface="eth0; rm -rf /", masquerade=False))


def test_it_rejects_masquerade_without_a_subnet():
    assert "lan_subnet" in _errors(Director(name="x", wan_interface="eth0", masquerade=True))


def test_it_rejects_an_invalid_receive_regex(director):
    assert "receive" in _errors(
        VirtualService(director=director, address="10.0.0.1", port=80, receive="(unclosed")
    )


def test_it_rejects_sh_flags_on_another_scheduler(director):
    errors = _errors(
        VirtualService(
            director=director, address="10.0.0.1", port=80, scheduler="rr", sched_flags=["sh-port"]
        )
    )
    assert "sched_flags" in errors


def test_it_labels_a_service_as_the_agent_and_the_importer_do(director):
    from director.desired import ServiceSpec

    fwm6 = VirtualService.objects.create(director=director, protocol="fwmark", fwmark=3, family=6)
    v6 = VirtualService.objects.create(director=director, address="2001:db8::52", port=443, family=6)
    assert (str(fwm6), str(v6)) == ("FWM 3 IPv6", "TCP [2001:db8::52]:443")
    assert ServiceSpec("fwmark", fwmark=3, family=6).label == fwm6.label
