"""manage.py import_config: preview with file:line warnings, --dry-run, refusal with exit status 1."""

import pytest
from django.core.management import CommandError, call_command

from clusters.models import Director, VirtualService
from tests.configs import CONFIGS

pytestmark = pytest.mark.django_db


@pytest.fixture
def director(db):
    return Director.objects.create(name="lb1", masquerade=False)


def _run(*args):
    from io import StringIO

    out = StringIO()
    call_command("import_config", *args, stdout=out)
    return out.getvalue()


def test_it_previews_and_creates(director):
    out = _run(str(CONFIGS / "ldirectord-full.cf"), "--director", "lb1", "--hosts", str(CONFIGS / "hosts"))
    assert "ldirectord configuration from" in out and "+ TCP 172.16.10.52:80" in out
    assert "ldirectord-full.cf:34: scheduler: ldirectord reads only 'rr'" in out
    assert "created 8 virtual services and 18 real servers on lb1" in out
    assert director.services.count() == 8


def test_it_writes_nothing_on_dry_run(director):
    out = _run(str(CONFIGS / "keepalived-full.conf"), "--director", "lb1", "--dry-run")
    assert "dry run: nothing written" in out and "vrrp_instance VI_1 not imported" in out
    assert not VirtualService.objects.exists()


def test_it_refuses_a_bad_file_with_every_error(director):
    with pytest.raises(CommandError) as excinfo:
        _run(str(CONFIGS / "ldirectord-bad.cf"), "--director", "lb1")
    message = str(excinfo.value)
    assert "nothing imported" in message and "ldirectord-bad.cf:5: Invalid real server line" in message
    assert not VirtualService.objects.exists()


def test_it_exits_non_zero_from_the_command_line(director, tmp_path, capsys, monkeypatch):
    from django.core.management import execute_from_command_line
    from django.db import connections

    # run_from_argv closes every connection when it ends, which would end the test's transaction too.
    monkeypatch.setattr(connections, "close_all", lambda: None)

    bad = tmp_path / "bad.rules"
    bad.write_text("-A -t 10.0.0.1:80 -s fastest\n")
    with pytest.raises(SystemExit) as excinfo:
        execute_from_command_line(["manage.py", "import_config", str(bad), "--director", "lb1"])
    assert excinfo.value.code == 1
    assert "bad.rules:1: unknown scheduler 'fastest'" in capsys.readouterr().err
    assert not VirtualService.objects.exists()


def test_it_creates_the_director_when_asked(db):
    out = _run(str(CONFIGS / "ipvsadm-save.rules"), "--director", "fresh", "--create-director")
    assert "created director fresh" in out and Director.objects.get(name="fresh").services.count() == 8


def test_it_refuses_an_unknown_director(db):
    with pytest.raises(CommandError, match="unknown director"):
        _run(str(CONFIGS / "ipvsadm-save.rules"), "--director", "nosuch")
