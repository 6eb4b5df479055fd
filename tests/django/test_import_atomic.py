"""A bad file creates nothing: parser errors and model validation errors alike, each with file:line."""

import pytest

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
