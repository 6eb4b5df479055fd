"""The check contract has one source: every CheckSpec field has its model field and plan field, same default."""

from __future__ import annotations

from dataclasses import fields

import pytest

from clusters import checkfields
from clusters.desired import desired_state
from clusters.importers.plan import ServicePlan
from clusters.models import Director, VirtualService
from director.desired import CheckSpec


@pytest.mark.parametrize("spec_field", [f.name for f in fields(CheckSpec)])
def test_it_has_a_model_field_and_a_plan_field_for_every_check_setting(spec_field):
    name = checkfields.model_name(spec_field)
    model_field = VirtualService._meta.get_field(name)  # FieldDoesNotExist names the missing one
    plan_defaults = {f.name: f.default for f in fields(ServicePlan)}
    assert name in plan_defaults, f"ServicePlan has no {name} for CheckSpec.{spec_field}"
    spec_default = CheckSpec.__dataclass_fields__[spec_field].default
    if spec_field == "expected_status":
        spec_default = checkfields.status_text(spec_default)
    model_default = None if model_field.null and not model_field.has_default() else model_field.get_default()
    assert model_default == spec_default, f"VirtualService.{name} defaults to {model_default!r}"
    assert plan_defaults[name] == spec_default


def test_it_renames_only_what_the_map_names():
    assert set(checkfields.MODEL_FIELDS) - set(checkfields.SPEC_FIELDS) == {
        "check_service",
        "external_program",
    }


# Every check setting away from its default, under the model's names and under the agent's.
MODEL_VALUES = {
    "checktype": "connect", "check_service": "https", "request": "/alive", "receive": "ok",
    "httpmethod": "HEAD", "virtualhost": "www.example.com", "checkport": 8443, "checkinterval": 2.5,
    "checktimeout": 1.5, "negotiatetimeout": 3.0, "failurecount": 4, "quiescent": False,
    "expected_status": "200,204", "retries": 3, "delay_before_retry": 0.5, "rise": 2, "quorum": 2,
    "hysteresis": 1, "external_program": "/bin/check", "login": "u", "passwd": "p", "database": "db",
    "secret": "s", "verify_tls": True, "redirects": 0, "tcp_on_udp": True, "fallback_rule": "keepalived",
    "check_traffic_port": True, "start_down": True,
}  # fmt: skip
SPEC = CheckSpec(
    checktype="connect", service="https", request="/alive", receive="ok", httpmethod="HEAD",
    virtualhost="www.example.com", checkport=8443, checkinterval=2.5, checktimeout=1.5, negotiatetimeout=3.0,
    failurecount=4, quiescent=False, expected_status=(200, 204), retries=3, delay_before_retry=0.5, rise=2,
    quorum=2, hysteresis=1, external="/bin/check", login="u", passwd="p", database="db", secret="s",
    verify_tls=True, redirects=0, tcp_on_udp=True, fallback_rule="keepalived", check_traffic_port=True,
    start_down=True,
)  # fmt: skip


def test_it_sends_every_check_setting_of_a_service_to_the_agent(db):
    director = Director.objects.create(name="d1", masquerade=False)
    VirtualService.objects.create(director=director, address="172.16.10.52", port=443, **MODEL_VALUES)
    (service,) = desired_state(director).services
    assert service.check == SPEC
    assert CheckSpec.from_dict(desired_state(director).to_dict()["services"][0]["check"]) == SPEC


def test_it_sends_checktype_n_as_the_number(db):
    director = Director.objects.create(name="d1", masquerade=False)
    VirtualService.objects.create(
        director=director, address="172.16.10.52", port=80, checktype="negotiate", check_every=3
    )
    assert desired_state(director).services[0].check.checktype == "3"


def test_it_builds_the_same_check_from_a_plan_as_from_the_service_it_becomes():
    plan = ServicePlan(address="172.16.10.52", port=443, **MODEL_VALUES)
    assert checkfields.check_spec(plan) == SPEC
