"""One name for a virtual service: the import plan, the agent's spec and the kernel model all print ipvsadm's."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from clusters.importers.plan import ServicePlan
from director.desired import ServiceSpec
from director.ipvs.model import Service
from director.keys import service_label


def test_it_names_services_as_ipvsadm_lists_them():
    assert service_label("tcp", "172.16.10.52", 80) == "TCP 172.16.10.52:80"
    assert service_label("udp", "2001:db8::1", 53, family=6) == "UDP [2001:db8::1]:53"
    assert service_label("fwmark", fwmark=1) == "FWM 1"
    assert service_label("fwmark", fwmark=1, family=6) == "FWM 1 IPv6"


def test_it_brackets_an_ipv6_address_even_when_the_family_was_left_at_its_default():
    assert service_label("tcp", "2001:db8::1", 80) == "TCP [2001:db8::1]:80"


services = st.one_of(
    st.builds(
        lambda proto, ip, port: (proto, str(ip), port, 0, ip.version),
        st.sampled_from(["tcp", "udp", "sctp"]),
        st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)),
        st.integers(0, 65535),
    ),
    st.builds(
        lambda mark, family: ("fwmark", "", 0, mark, family),
        st.integers(1, 2**32 - 1),
        st.sampled_from([4, 6]),
    ),
)


@given(services)
def test_it_gives_a_service_the_same_name_on_every_side(service):
    protocol, address, port, fwmark, family = service
    names = {
        ServicePlan(
            protocol=protocol, address=address or None, port=port, fwmark=fwmark, family=family
        ).label,
        ServiceSpec(protocol, address, port, fwmark, family).label,
        Service(protocol, address, port, fwmark, family).label(),
    }
    assert names == {service_label(protocol, address, port, fwmark, family)}
    if protocol != "fwmark":
        assert str(ipaddress.ip_address(address)) in names.pop()
