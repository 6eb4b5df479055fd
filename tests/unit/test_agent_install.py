"""`pip install ultramonkey-web` on a director: the agent and only what it needs (no Django, no web stack).

Installs the package without extras into a fresh virtualenv, as a sysadmin would (pip and its index, the same
client and cache as scripts/bootstrap.sh), from a copy of the sources so the checkout is left untouched.
"""

from __future__ import annotations

import json
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
WEB_ONLY = {
    "django",
    "django-htmx",
    "django-template-partials",
    "gunicorn",
    "psycopg",
    "whitenoise",
    "dj-database-url",
}


@pytest.fixture(scope="module")
def lean_venv(tmp_path_factory):
    base = tmp_path_factory.mktemp("lean")
    src = base / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for package in ("director", "clusters", "ultramonkey_web"):
        shutil.copytree(ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    proc = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", str(src)], capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return venv


def run(venv, *args, cwd):
    return subprocess.run(
        [str(venv / "bin" / "python"), *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )


def test_it_installs_the_agent_without_django_or_the_web_stack(lean_venv, tmp_path):
    listing = run(lean_venv, "-m", "pip", "list", "--format", "json", cwd=tmp_path)
    installed = {p["name"].lower() for p in json.loads(listing.stdout)}
    assert {"ultramonkey-web", "celery", "redis", "pyroute2"} <= installed
    assert installed & WEB_ONLY == set()
    probe = run(lean_venv, "-c", "import importlib.util as u; print(u.find_spec('django'))", cwd=tmp_path)
    assert probe.stdout.strip() == "None"


def test_it_runs_the_agent_command_from_the_lean_install(lean_venv, tmp_path):
    top = run(lean_venv, "-m", "director", "--help", cwd=tmp_path)
    assert top.returncode == 0 and "run" in top.stdout
    sub = run(lean_venv, "-m", "director", "run", "--help", cwd=tmp_path)
    assert sub.returncode == 0 and "--config CONFIG" in sub.stdout
    where = run(lean_venv, "-c", "import director; print(director.__file__)", cwd=tmp_path)
    assert str(lean_venv) in where.stdout  # the installed package, not the checkout


def test_it_reads_the_shipped_config_and_refuses_a_bad_one_in_the_lean_install(lean_venv, tmp_path):
    bad = tmp_path / "agent.toml"
    bad.write_text((ROOT / "deploy" / "agent.toml").read_text().replace('url = "rediss://', 'url = "http://'))
    proc = run(lean_venv, "-m", "director", "run", "--config", str(bad), cwd=tmp_path)
    assert proc.returncode == 2
    assert f"{bad}: redis.url: 'http://central.example:6379/0': scheme must be one of" in proc.stderr


@pytest.fixture
def unit_root(tmp_path):
    """A root directory for `systemd-analyze --root`: the distribution's units, ours, and executables at the
    paths the unit names (verify checks those exist and are executable; what they run is tested above)."""
    root = tmp_path / "root"
    shutil.copytree("/lib/systemd/system", root / "lib" / "systemd" / "system", symlinks=True)
    (root / "etc" / "systemd" / "system").mkdir(parents=True)
    shutil.copy(ROOT / "deploy" / "ultramonkey-agent.service", root / "etc" / "systemd" / "system")
    for path in ("opt/ultramonkey/bin/python", "sbin/modprobe"):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text("#!/bin/sh\n")
        (root / path).chmod(0o755)
    return root


def analyze(*args):
    tool = shutil.which("systemd-analyze")
    assert tool, "systemd-analyze is missing: run scripts/bootstrap.sh --test (Debian package systemd)"
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=120)


def test_it_ships_a_unit_systemd_accepts_with_every_directive_known(unit_root):
    proc = analyze("verify", f"--root={unit_root}", "ultramonkey-agent.service")
    assert proc.returncode == 0 and proc.stderr == "" and proc.stdout == "", proc.stdout + proc.stderr


def test_it_ships_a_unit_systemd_rates_as_well_confined(unit_root):
    proc = analyze("security", "--offline=true", f"--root={unit_root}", "ultramonkey-agent.service")
    level = re.search(r"Overall exposure level for ultramonkey-agent.service: ([0-9.]+)", proc.stdout)
    assert level and float(level.group(1)) <= 5.0, proc.stdout[
        -2000:
    ]  # "OK"; a root service with no limits is 9.6


def test_it_ships_a_hardened_unit_that_reads_the_config_file():
    unit = (ROOT / "deploy" / "ultramonkey-agent.service").read_text().splitlines()
    settings = dict(line.split("=", 1) for line in unit if "=" in line and not line.startswith("#"))
    assert settings["ExecStart"].endswith("-m director run --config /etc/ultramonkey/agent.toml")
    assert settings["CapabilityBoundingSet"] == "CAP_NET_ADMIN CAP_NET_RAW"
    assert (settings["ProtectSystem"], settings["StateDirectory"]) == ("strict", "ultramonkey")
    assert "ProtectKernelTunables" not in settings  # the agent writes /proc/sys/net/ipv4/ip_forward
