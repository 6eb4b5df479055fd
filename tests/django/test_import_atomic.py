"""A bad file creates nothing: parser errors and model validation errors alike, each with file:line."""

import pytest
from django.core.exceptions import ValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clusters.importers.apply import apply_plan
from clusters.models import Event, RealServer, VirtualService
from tests.configs import parse_file

pytestmark = pytest.mark.django_db


@pytest.fixture
def director(db):
    from clusters.models import Director

    return Director.objects.create(name="lb1", masquerade=False)


@pytest.mark.parametrize("name", ["ldirectord-bad.cf", "keepalived-bad.conf", "ipvsadm-bad.rules"])
def test_it_creates_nothing_from_a_malformed_file(director, name):
    result = apply_plan(parse_file(name), director)
    assert not result.ok and all(m.line > 0 for m in result.errors)
    assert (
        not VirtualService.objects.exists() and not RealServer.objects.exists() and not Event.objects.exists()
    )


def test_it_rolls_back_when_a_row_fails_model_validation(director):
    plan = parse_file("ipvsadm-invalid-model.rules")
    assert plan.ok  # ipvsadm syntax is fine; the model knows one-packet scheduling is UDP only
    result = apply_plan(plan, director)
    assert not result.ok
    ((error),) = result.errors
    assert error.file.endswith("ipvsadm-invalid-model.rules") and error.line == 3
    assert "sched_flags" in error.text and "UDP" in error.text
    assert not VirtualService.objects.exists() and not RealServer.objects.exists()


def test_it_reports_real_server_errors_at_the_real_line(director):
    from clusters.importers import ldirectord

    plan = ldirectord.parse("virtual=10.0.0.1:80\n\treal=10.0.0.2:80 masq l:10 u:5\n", filename="x.cf")
    result = apply_plan(plan, director)
    assert [(m.file, m.line) for m in result.errors] == [("x.cf", 2)]
    assert "lower threshold" in result.errors[0].text
    assert not VirtualService.objects.exists()


def _ipvsadm(text: str):
    from clusters.importers import parse

    return parse(text, "ipvsadm", filename="t.rules")


def test_it_refuses_a_file_over_the_documented_limits_with_the_counts(director, monkeypatch):
    from clusters.importers import apply

    monkeypatch.setattr(apply, "MAX_REALS", 3)
    rules = "-A -t 10.0.0.1:80 -s rr\n" + "".join(
        f"-a -t 10.0.0.1:80 -r 192.168.1.{i}:80 -m\n" for i in range(4)
    )
    result = apply_plan(_ipvsadm(rules), director)
    assert [str(m) for m in result.errors] == [
        "t.rules: 4 real servers: an import takes at most 3; split the file"
    ]
    assert not VirtualService.objects.exists()
    monkeypatch.setattr(apply, "MAX_SERVICES", 1)
    result = apply_plan(_ipvsadm("-A -t 10.0.0.1:80\n-A -t 10.0.0.2:80\n"), director)
    assert "2 virtual services: an import takes at most 1" in str(result.errors[0])


def test_it_names_every_bad_row_of_a_bulk_import_and_writes_none(director):
    """Rows are validated in bulk: each bad one is reported at its line, the good ones are not written."""
    VirtualService.objects.create(director=director, address="10.0.0.9", port=80)
    rules = (
        "-A -t 10.0.0.1:80 -s rr\n"
        "-a -t 10.0.0.1:80 -r 192.168.1.4:80 -m\n"
        "-a -t 10.0.0.1:80 -r [2001:db8::4]:80 -m\n"  # an IPv6 real behind an IPv4 VIP with NAT
        "-A -t 10.0.0.9:80 -s rr\n"  # taken on the director already
        "-A -u 10.0.0.2:53 -s rr\n"
        "-a -u 10.0.0.2:53 -r 192.168.1.5:53 -m -x 10 -y 20\n"  # lower threshold above upper
    )
    result = apply_plan(_ipvsadm(rules), director)
    where = sorted((m.line, m.text.split(": ", 2)[1]) for m in result.errors)
    assert [line for line, _ in where] == [3, 4, 6]
    assert "already has a virtual service" in str(result.errors) and "lower threshold" in str(result.errors)
    assert VirtualService.objects.count() == 1 and not RealServer.objects.exists()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    address=st.one_of(st.ip_addresses().map(str), st.text(max_size=20)),
    port=st.integers(-5, 70_000),
    forwarding=st.sampled_from(["masq", "gate", "ipip", "nat", ""]),
    weight=st.integers(-1, 70_000),
    u_threshold=st.integers(0, 2**31),
    l_threshold=st.integers(0, 2**31),
)
def test_it_validates_a_bulk_row_exactly_as_full_clean_does(director, **values):
    """The bulk cleaner (each value once, then clean()) says what the model's full_clean() says."""
    from clusters.importers.apply import REAL_UNSET, _Cleaner

    service = VirtualService.objects.get_or_create(director=director, address="10.0.0.1", port=80)[0]
    bulk, single = RealServer(service=service, **values), RealServer(service=service, **values)
    failed = _Cleaner(RealServer, REAL_UNSET)(bulk)
    try:
        single.full_clean(exclude=REAL_UNSET, validate_unique=False, validate_constraints=False)
        expected = {}
    except ValidationError as exc:
        expected = exc.message_dict
    assert (failed.message_dict if failed else {}) == expected
    assert (bulk.address, bulk.port) == (single.address, single.port)
