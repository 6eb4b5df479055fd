"""The agent's config file (director/config.py) and `python -m director run --config`: flags override the
file, every error names the file and the key, nothing starts on a bad file."""

from __future__ import annotations

import pathlib
import subprocess
import sys
from urllib.parse import urlsplit

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from director import config
from director.__main__ import export, main

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "deploy" / "agent.toml"


def write(tmp_path, text: str) -> str:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return str(path)


def test_it_reads_every_setting_of_the_shipped_example(tmp_path):
    password = tmp_path / "pw"
    password.write_text("s3cret:/@ \n")
    ca = tmp_path / "ca.pem"
    ca.write_text("a CA certificate\n")
    text = (
        SHIPPED.read_text()
        .replace("/etc/ultramonkey/redis-password", str(password))
        .replace("/etc/ultramonkey/redis-ca.pem", str(ca))
    )
    cfg = config.resolve(config.load(write(tmp_path, text)))
    assert cfg == config.AgentConfig(
        name="director1",
        redis_url="rediss://director.director1:s3cret%3A%2F%40@central.example:6379/0",
        state_dir="/var/lib/ultramonkey",
        external_check_dir="/etc/ultramonkey/checks",
        loglevel="INFO",
        trust_file="/etc/ultramonkey/central.pub",
        redis_ca=str(ca),
    )
    assert cfg.redacted_url() == "rediss://director.director1:***@central.example:6379/0"


def test_it_logs_in_as_the_directors_own_redis_user_by_default(tmp_path):
    path = write(tmp_path, 'name = "d1"\n[redis]\nurl = "redis://r.example:6379/0"\npassword = "pw"\n')
    kwargs = redis.connection.parse_url(config.resolve(config.load(path)).redis_url)
    assert (kwargs["username"], kwargs["password"]) == ("director.d1", "pw")


@pytest.mark.parametrize(
    "redis_table, message",
    [
        ('ca_file = "/nonexistent/ca.pem"', "redis.ca_file: cannot read /nonexistent/ca.pem"),
        ('ca_file = "ca.pem"', "redis.ca_file: 'ca.pem' must be an absolute path"),
        ('cert_file = "/etc/hostname"', "redis.key_file: give cert_file and key_file together"),
    ],
)
def test_it_refuses_tls_files_it_cannot_use(tmp_path, redis_table, message):
    path = write(tmp_path, f'name = "d1"\n[redis]\nurl = "rediss://r.example:6379/0"\n{redis_table}\n')
    with pytest.raises(config.ConfigError, match=message):
        config.load(path)


def test_it_puts_the_credentials_where_redis_reads_them(tmp_path):
    path = write(
        tmp_path,
        'name = "d1"\n[redis]\nurl = "rediss://r.example:6380/2"\nusername = "d 1"\npassword = "p@ss:w/rd"\n',
    )
    url = config.resolve(config.load(path)).redis_url
    kwargs = redis.connection.parse_url(url)
    assert (kwargs["username"], kwargs["password"], kwargs["host"], kwargs["port"], kwargs["db"]) == (
        "d 1",
        "p@ss:w/rd",
        "r.example",
        6380,
        2,
    )


def test_it_lets_flags_override_the_file(tmp_path):
    path = write(
        tmp_path, 'name = "d1"\nstate_dir = "/srv/a"\nloglevel = "debug"\n[redis]\nurl = "redis://a:1/0"\n'
    )
    cfg = config.resolve(config.load(path), name="d2", redis_url="unix:///run/r.sock", loglevel="warning")
    assert (cfg.name, cfg.redis_url, cfg.state_dir, cfg.loglevel) == (
        "d2",
        "unix:///run/r.sock",
        "/srv/a",
        "WARNING",
    )


@pytest.mark.parametrize(
    "text, message",
    [
        ('name = "d1"\nstate-dir = "/x"\n', "state-dir: unknown key"),
        ('name = "d 1"\n', "name: 'd 1' is not a director name"),
        ("name = 7\n", "name: must be a string, not an integer"),
        ('name = ""\n', "name: must not be empty"),
        ('name = "d1"\nstate_dir = "var/lib"\n', "state_dir: 'var/lib' must be an absolute path"),
        ('name = "d1"\nexternal_check_dir = ["/x"]\n', "external_check_dir: must be a string, not an array"),
        ('name = "d1"\nloglevel = "LOUD"\n', "loglevel: 'LOUD' is not one of DEBUG, INFO"),
        ('name = "d1"\nredis = "redis://x"\n', "redis: must be a table ([redis]), not str"),
        ('name = "d1"\n[redis]\nurl = "http://x/"\n', "redis.url: 'http://x/': scheme must be one of"),
        ('name = "d1"\n[redis]\nurl = "redis://x:99999/0"\n', "redis.url: 'redis://x:99999/0' is not a URL"),
        ('name = "d1"\n[redis]\nurl = "redis:///0"\n', "redis.url: 'redis:///0' names no host"),
        ('name = "d1"\n[redis]\nhost = "x"\n', "redis.host: unknown key"),
        (
            'name = "d1"\n[redis]\npassword = "a"\npassword_file = "/b"\n',
            "redis.password_file: give password",
        ),
        ('name = "d1"\n[redis]\npassword_file = "/nonexistent/pw"\n', "redis.password_file: cannot read"),
        ('name = "d1"\n[redis]\nurl = "unix:///r.sock"\npassword = "a"\n', "redis.url: credentials need"),
        ('name = "d1"\n[redis]\nurl = "redis://u:p@x/0"\npassword = "a"\n', "redis.url: has credentials"),
        ('name = "d1"\n[redis\n', "not valid TOML: "),
    ],
)
def test_it_names_the_file_and_the_key_of_a_bad_setting(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(config.ConfigError) as err:
        config.resolve(config.load(path))
    assert str(err.value).startswith(f"{path}: {message}")


def test_it_never_shows_the_password_of_a_bad_url(tmp_path):
    path = write(tmp_path, 'name = "d1"\n[redis]\nurl = "ftp://u:hunter2@x/0"\n')
    with pytest.raises(config.ConfigError) as err:
        config.load(path)
    assert "hunter2" not in str(err.value) and "u:***@x" in str(err.value)


def test_it_refuses_a_missing_file_and_a_missing_name(tmp_path):
    with pytest.raises(config.ConfigError, match=r"agent\.toml: no such file"):
        config.load(str(tmp_path / "agent.toml"))
    with pytest.raises(config.ConfigError, match="no director name: give --name or set name"):
        config.resolve(config.load(write(tmp_path, 'state_dir = "/x"\n')))


def test_it_exits_with_the_error_before_starting_anything(tmp_path, capsys):
    path = write(tmp_path, 'name = "d1"\n[redis]\nurl = "redis://x:0x/0"\n')
    with pytest.raises(SystemExit) as exc:
        main(["run", "--config", path])
    assert exc.value.code == 2
    assert capsys.readouterr().err == (
        f"python -m director: error: {path}: redis.url: 'redis://x:0x/0' is not a URL: "
        "Port could not be cast to integer value as '0x'\n"
    )


def test_it_hands_the_file_and_the_flags_to_the_agent_through_its_environment(tmp_path):
    path = write(
        tmp_path, 'name = "d1"\nexternal_check_dir = "/etc/umw/checks"\n[redis]\nurl = "redis://r:6379/1"\n'
    )
    environ = {"UMW_EXTERNAL_CHECK_DIR": "/stale"}
    export(config.resolve(config.load(path), state_dir="/srv/state"), environ)
    assert environ == {
        "UMW_DIRECTOR": "d1",
        "UMW_REDIS_URL": "redis://r:6379/1",
        "UMW_STATE_DIR": "/srv/state",
        "UMW_EXTERNAL_CHECK_DIR": "/etc/umw/checks",
    }
    export(config.resolve({}, name="d2"), environ)
    assert "UMW_EXTERNAL_CHECK_DIR" not in environ and environ["UMW_DIRECTOR"] == "d2"


def test_it_documents_the_config_flag_in_help():
    proc = subprocess.run(
        [sys.executable, "-m", "director", "run", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and "--config CONFIG" in proc.stdout and "--external-check-dir" in proc.stdout


# -- property: any TOML document either gives a complete, valid config or one ConfigError naming a key --------
toml_scalars = st.one_of(
    st.text(max_size=30),
    st.integers(),
    st.booleans(),
    st.floats(allow_nan=False),
    st.sampled_from(["director1", "/var/lib/x", "redis://h:6379/0", "unix:///r.sock", "INFO", "rediss://h"]),
)
keys = st.sampled_from(sorted(config.TOP_KEYS | {"Name", "state-dir", "redis_url", "port"}))
redis_keys = st.sampled_from(sorted(config.REDIS_KEYS - {"password_file"} | {"host", "URL"}))
documents = st.dictionaries(
    keys,
    st.one_of(
        toml_scalars,
        st.lists(toml_scalars, max_size=2),
        st.dictionaries(redis_keys, toml_scalars, max_size=4),
    ),
    max_size=6,
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_it_accepts_or_names_the_offending_key_for_any_document(doc):
    try:
        cfg = config.resolve(config.parse(doc, source="f.toml"))
    except config.ConfigError as exc:
        message = str(exc)
        named = message.split(": ")[1] if message.startswith("f.toml: ") else None
        redis_table = doc["redis"] if isinstance(doc.get("redis"), dict) else {}
        keys_named = set(doc) | {f"redis.{k}" for k in redis_table}
        assert named in keys_named or (message.startswith("no director name") and not doc.get("name")), (
            message
        )
        return
    assert config.NAME_RE.fullmatch(cfg.name) and cfg.name == doc["name"]
    assert cfg.state_dir.startswith("/") and cfg.loglevel in config.LOGLEVELS
    assert urlsplit(cfg.redis_url).scheme in config.REDIS_SCHEMES
    if not cfg.redis_url.startswith("unix:"):
        assert redis.connection.parse_url(cfg.redis_url)["host"]


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=40))
def test_it_round_trips_any_username_and_password_through_the_url(username, password):
    doc = {"name": "d1", "redis": {"url": "redis://h:6379/0", "username": username, "password": password}}
    try:
        url = config.resolve(config.parse(doc)).redis_url
    except config.ConfigError as exc:
        assert not username.strip() or not password.strip() or "\x00" in username + password, exc
        return
    kwargs = redis.connection.parse_url(url)
    assert (kwargs["username"], kwargs["password"], kwargs["host"]) == (username, password, "h")


def test_it_takes_the_trust_file_and_tls_files_from_the_config_unless_a_flag_says_otherwise(tmp_path):
    import argparse

    from director.__main__ import security_env

    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    cfg = config.AgentConfig(name="d1", trust_file="/etc/um/central.pub", redis_ca=str(ca))
    flags = dict(redis_password_file=None, redis_ca=None, redis_cert=None, redis_key=None, trust=None)
    env = security_env(argparse.Namespace(**flags), cfg)
    assert (env["UMW_TRUST_FILE"], env["UMW_REDIS_CA"]) == ("/etc/um/central.pub", str(ca))
    env = security_env(argparse.Namespace(**{**flags, "trust": "/srv/other.pub"}), cfg)
    assert env["UMW_TRUST_FILE"] == "/srv/other.pub"
