"""`manage.py setup --password-env VAR`: the compose web service creates the first admin from .env without the
password ever appearing on a command line or in the logs."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

pytestmark = pytest.mark.django_db


def test_it_takes_the_first_admin_password_from_the_environment_and_never_prints_it(monkeypatch):
    monkeypatch.setenv("UMW_ADMIN_PASSWORD", "c0rrect-h0rse-battery")
    out = io.StringIO()
    call_command("setup", "--password-env", "UMW_ADMIN_PASSWORD", stdout=out)
    assert out.getvalue() == "Created admin user 'admin' with the password given.\n"
    assert get_user_model().objects.get(username="admin").check_password("c0rrect-h0rse-battery")


def test_it_leaves_an_existing_admin_alone_on_the_next_start(monkeypatch):
    monkeypatch.setenv("UMW_ADMIN_PASSWORD", "c0rrect-h0rse-battery")
    call_command("setup", "--password-env", "UMW_ADMIN_PASSWORD", stdout=io.StringIO())
    monkeypatch.setenv("UMW_ADMIN_PASSWORD", "an0ther-secret-value")
    out = io.StringIO()
    call_command("setup", "--password-env", "UMW_ADMIN_PASSWORD", stdout=out)
    assert "exists; password unchanged" in out.getvalue()
    assert get_user_model().objects.get(username="admin").check_password("c0rrect-h0rse-battery")


@pytest.mark.parametrize("value", [None, ""])
def test_it_refuses_an_unset_or_empty_password_variable(monkeypatch, value):
    if value is None:
        monkeypatch.delenv("UMW_ADMIN_PASSWORD", raising=False)
    else:
        monkeypatch.setenv("UMW_ADMIN_PASSWORD", value)
    with pytest.raises(
        CommandError, match="--password-env UMW_ADMIN_PASSWORD: that environment variable is not set"
    ):
        call_command("setup", "--password-env", "UMW_ADMIN_PASSWORD", stdout=io.StringIO())
