"""docker-compose.yml's Redis: no default user, and the central user's rules are director/acl.py's."""

import pathlib
import shlex

import yaml

from director import acl

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_it_gives_redis_no_default_user_and_the_central_user_acl_py_rules():
    argv = shlex.split(_compose()["services"]["redis"]["command"][2])
    assert argv[argv.index("--user") + 1 : argv.index("--user") + 3] == ["default", "off"]
    central = argv.index("central")
    assert argv[central + 1 : central + 3] == ["on", ">$$REDIS_PASSWORD"]
    assert tuple(argv[central + 3 :]) == acl.CENTRAL_RULES[1:]  # CENTRAL_RULES[0] is "on"


def test_it_gives_the_agent_its_own_user_and_the_dashboards_public_key():
    services = _compose()["services"]
    agent = services["agent"]
    command = agent["command"][2]
    assert (
        "--redis-password-file /run/redis.pass" in command
        and "--trust /etc/ultramonkey/central.pub" in command
    )
    assert "@" not in agent["environment"]["REDIS_URL"]  # no central password on the director
    assert "trust:/etc/ultramonkey:ro" in agent["volumes"]
    assert "trust:/trust" in services["web"]["volumes"]
