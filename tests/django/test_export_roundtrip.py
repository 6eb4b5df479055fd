"""Model -> export -> import -> the same model, for every format, over the corpus."""

import pytest

from clusters.exporters.fromdb import export_director
from clusters.importers import parse
from clusters.importers.apply import apply_plan
from clusters.models import Director
from tests.configs import parse_file

pytestmark = pytest.mark.django_db

CORPUS = {
    "ldirectord": ["ldirectord-ultramonkey.cf", "ldirectord-full.cf", "ldirectord-every-directive.cf"],
    "keepalived": ["keepalived-full.conf"],
    "ipvsadm": ["ipvsadm-save.rules", "ipvsadm-script.sh"],
}
SKIP = {"id", "director", "created", "updated"}


def snapshot(director):
    """Every field of every service and real server, keyed the way the kernel names them."""
    out = {}
    for vs in director.services.prefetch_related("reals"):
        fields = {f.attname: getattr(vs, f.attname) for f in vs._meta.concrete_fields if f.name not in SKIP}
        reals = sorted(
            tuple(
                (f.attname, getattr(rs, f.attname))
                for f in rs._meta.concrete_fields
                if f.name not in SKIP | {"service"}
            )
            for rs in vs.reals.all()
        )
        out[vs.label] = (fields, reals)
    return out


@pytest.mark.parametrize("fmt, name", [(f, n) for f, names in CORPUS.items() for n in names])
def test_it_round_trips_the_model(fmt, name):
    first = Director.objects.create(name="first", masquerade=False)
    assert apply_plan(parse_file(name), first).ok
    _, text = export_director(first, fmt)
    second = Director.objects.create(name="second", masquerade=False)
    result = apply_plan(parse(text, fmt, filename=f"export.{fmt}"), second)
    assert result.ok, [str(m) for m in result.errors]
    assert snapshot(second) == snapshot(first)


def test_it_round_trips_the_demo_director_in_every_format(demo):
    for fmt in CORPUS:
        _, text = export_director(demo, fmt)
        other = Director.objects.create(name=f"copy-{fmt}", masquerade=False)
        assert apply_plan(parse(text, fmt), other).ok
        ours = {label: [r[0] for r in reals] for label, (fields, reals) in snapshot(other).items()}
        assert set(ours) == set(snapshot(demo)), fmt
        if fmt != "ipvsadm":  # an IPVS table has no checks
            assert {k: v[0]["checktype"] for k, v in snapshot(other).items()} == {
                k: v[0]["checktype"] for k, v in snapshot(demo).items()
            }
