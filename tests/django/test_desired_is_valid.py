"""What the central side sends is what the agent's validator accepts: the demo and imported configurations
(every directive the importers know) pass director/schema.py unchanged."""

import dataclasses

import pytest

from clusters.desired import desired_state
from clusters.importers.apply import apply_plan
from clusters.models import Director
from director import schema
from tests.configs import parse_file

pytestmark = pytest.mark.django_db


def test_the_demo_state_passes_the_agents_validator(demo):
    desired = desired_state(demo).to_dict()
    desired["revision"] = 1
    assert schema.parse(desired) == schema.parse(desired)


@pytest.mark.parametrize(
    "name", ["ldirectord-ultramonkey.cf", "ldirectord-full.cf", "keepalived-full.conf", "ipvsadm-save.rules"]
)
def test_an_imported_configuration_passes_the_agents_validator(name, tmp_path, monkeypatch):
    director = Director.objects.create(name="lb1", masquerade=False)
    result = apply_plan(parse_file(name), director)  # the system itself: no permission check
    assert result.ok, result.errors
    desired = desired_state(director).to_dict()
    desired["revision"] = 1
    # external checks: as on a director whose allowed directory holds the programs the config names
    monkeypatch.setattr(schema, "external_program", lambda command, allowed, path="": command)
    state = schema.parse(desired, external_dir=str(tmp_path))
    assert len(state.services) == director.services.filter(enabled=True).count()


def test_it_reads_reals_in_the_contract_order():
    """desired.py builds RealSpecs positionally from values_list(REAL_FIELDS): the order must be RealSpec's."""
    from clusters.desired import REAL_FIELDS
    from director.desired import RealSpec

    assert REAL_FIELDS == tuple(f.name for f in dataclasses.fields(RealSpec))
