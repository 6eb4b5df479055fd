"""Export then import gives the same plan, for every format, over the corpus (no database involved)."""

import pytest

from clusters.exporters import export, ordered
from clusters.importers import parse
from tests.configs import parse_file

CORPUS = {
    "ldirectord": ["ldirectord-ultramonkey.cf", "ldirectord-full.cf", "ldirectord-every-directive.cf"],
    "keepalived": ["keepalived-full.conf"],
    "ipvsadm": ["ipvsadm-save.rules", "ipvsadm-script.sh"],
}
CASES = [(fmt, name) for fmt, names in CORPUS.items() for name in names]


def model(services):
    return [
        (s.model_values(), sorted(tuple(r.model_values().items()) for r in s.reals))
        for s in ordered(services)
    ]


@pytest.mark.parametrize("fmt, name", CASES)
def test_it_round_trips_the_corpus_in_its_own_format(fmt, name):
    first = parse_file(name)
    assert first.ok, first.errors
    text = export(first.services, fmt)
    second = parse(text, fmt)
    assert second.ok, [str(m) for m in second.errors]
    assert model(second.services) == model(first.services)


@pytest.mark.parametrize("fmt, name", CASES)
def test_it_keeps_the_ipvs_table_through_every_format(fmt, name):
    first = parse_file(name)
    table = export(first.services, "ipvsadm")
    for other in ("ldirectord", "keepalived"):
        services = [s for s in first.services if not (other == "ldirectord" and s.protocol == "sctp")]
        again = parse(export(services, other), other)
        assert again.ok, [str(m) for m in again.errors]
        expected = export(services, "ipvsadm")
        assert export(again.services, "ipvsadm") == expected, other
    assert table
