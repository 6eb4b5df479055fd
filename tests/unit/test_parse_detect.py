"""The format is guessed from statements only one format has."""

import pytest

from clusters.importers import detect_format, parse
from tests.configs import read


@pytest.mark.parametrize(
    "name, fmt",
    [
        ("ldirectord-ultramonkey.cf", "ldirectord"),
        ("ldirectord-extra.cf", "ldirectord"),
        ("keepalived-full.conf", "keepalived"),
        ("keepalived-extra.conf", "keepalived"),
        ("ipvsadm-save.rules", "ipvsadm"),
        ("ipvsadm-script.sh", "ipvsadm"),
    ],
)
def test_it_recognises_each_format(name, fmt):
    assert detect_format(read(name)) == fmt


def test_it_refuses_to_guess_an_unknown_text():
    plan = parse("hello world\n")
    assert not plan.ok and "cannot tell the format" in plan.errors[0].text
