"""Annotations in real files: accepted where ldirectord accepts them (with a warning), refused where it refuses."""

from clusters.importers import ldirectord
from tests.configs import short


def test_it_reads_the_leading_number_of_an_annotated_value_and_warns():
    plan = ldirectord.parse(
        "checktimeout=3 // seconds\nvirtual=10.0.0.1:80 // web\n\treal=10.0.0.2:80 gate\n"
    )
    assert plan.ok and plan.services[0].checktimeout == 3
    assert [line for line, _ in short(plan.warnings)] == [1, 2]
    assert "'3'" in plan.warnings[0].text and "ignored" in plan.warnings[0].text


def test_it_refuses_an_annotated_real_line_like_ldirectord():
    plan = ldirectord.parse("virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate // web1\n")
    assert short(plan.errors) == [(2, 'Invalid real server line, around "// web1"')]


def test_it_refuses_yes_no_values_with_trailing_text_and_says_why():
    plan = ldirectord.parse("quiescent=no # later\n")
    ((line, text),) = short(plan.errors)
    assert line == 1 and "compares the whole value" in text


def test_it_strips_hash_comments_inside_a_virtual_section():
    plan = ldirectord.parse(
        "virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate   # first\n# a comment\n\tscheduler=rr\n"
    )
    assert plan.ok and plan.services[0].scheduler == "rr" and len(plan.services[0].reals) == 1


def test_it_ends_a_section_at_a_blank_line():
    plan = ldirectord.parse("virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\n\tscheduler=rr\n")
    ((line, text),) = short(plan.errors)
    assert line == 4 and "outside a virtual section" in text


def test_it_warns_about_text_after_a_closing_quote():
    plan = ldirectord.parse('virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\treceive="ok" // body\n')
    assert plan.ok and plan.services[0].receive == "ok"
    assert [line for line, _ in short(plan.warnings)] == [3]


def test_it_accepts_four_spaces_as_indentation():
    plan = ldirectord.parse("virtual=10.0.0.1:80\n    real=10.0.0.2:80 gate\n   scheduler=rr\n")
    assert short(plan.errors)[0][0] == 3  # three spaces end the section


def test_it_reads_an_address_without_port_as_a_firewall_mark_like_ldirectord_and_says_so():
    plan = ldirectord.parse("virtual=10.0.0.1\n\treal=10.0.0.2 gate\n")
    assert plan.ok and plan.services[0].label == "FWM 10"
    assert short(plan.warnings) == [(1, "virtual: ldirectord reads '10.0.0.1' as firewall mark 10")]
