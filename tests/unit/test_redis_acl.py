"""One director's Redis credentials reach that director's keys and nothing else (director/acl.py), on a real
redis-server with the product's ACLs - over plain TCP and over TLS with a private CA made here."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from director import acl, keys, transport

from ..conftest import PrivateRedis


@pytest.fixture
def directors(redis_client, redis_server):
    """lab1 and lab2 with their own users; returns {name: connection as that director}."""
    out = {}
    for name in ("lab1", "lab2"):
        password = acl.new_password()
        acl.set_director_user(redis_client, name, acl.password_hash(password))
        out[name] = redis.Redis.from_url(
            redis_server.url(acl.username(name), password), decode_responses=True
        )
    redis_client.execute_command("ACL", "LOG", "RESET")
    yield out
    for name, conn in out.items():
        conn.close()
        acl.delete_director_user(redis_client, name)


def denied(call) -> bool:
    try:
        call()
    except redis.exceptions.NoPermissionError:
        return True
    return False


def test_it_lets_a_director_do_what_its_agent_does(directors, redis_client):
    lab1 = directors["lab1"]
    lab1.xadd(keys.events_stream("lab1"), {"director": "lab1", "kind": "agent", "message": "hi"})
    pipe = lab1.pipeline(transaction=False)
    pipe.set(keys.heartbeat_key("lab1"), "{}", ex=10)
    pipe.set(keys.stats_key("lab1"), "{}", ex=10)
    pipe.rpush(keys.history_key("lab1", "tcp|1.2.3.4|80|10.0.0.1|80"), "{}")
    pipe.ltrim(keys.history_key("lab1", "tcp|1.2.3.4|80|10.0.0.1|80"), -10, -1)
    pipe.expire(keys.history_key("lab1", "tcp|1.2.3.4|80|10.0.0.1|80"), 60)
    pipe.rpush(keys.reply_key("lab1", "task-1"), json.dumps({"rows": []}))
    pipe.execute()
    redis_client.lpush(keys.queue("lab1"), "task")
    assert (
        lab1.brpop([keys.queue("lab1"), keys.queue("lab1") + acl.PRIORITY_SEP + "3"], timeout=1)[1] == "task"
    )
    lab1.sadd(f"_kombu.binding.{keys.queue('lab1')}", "x")
    assert redis_client.execute_command("ACL", "LOG") == []


@pytest.mark.parametrize(
    "what, call",
    [
        ("read another director's queue", lambda r: r.brpop([keys.queue("lab2")], timeout=1)),
        ("peek at another director's queue", lambda r: r.lrange(keys.queue("lab2"), 0, -1)),
        ("read a queue named like its own", lambda r: r.llen(keys.queue("lab10"))),
        (
            "write another director's stream",
            lambda r: r.xadd(keys.events_stream("lab2"), {"director": "lab2"}),
        ),
        ("read its own stream back", lambda r: r.xrange(keys.events_stream("lab1"))),
        ("fake another director's heartbeat", lambda r: r.set(keys.heartbeat_key("lab2"), "{}")),
        ("read another director's stats", lambda r: r.get(keys.stats_key("lab2"))),
        ("answer for another director", lambda r: r.rpush(keys.reply_key("lab2", "t"), "{}")),
        ("move the central event cursors", lambda r: r.hset(keys.EVENTS_CURSORS_KEY, "lab1", "0-0")),
        ("read Celery results", lambda r: r.get("celery-task-meta-1")),
        ("queue work for the central worker", lambda r: r.lpush("central", "x")),
        ("list the keys", lambda r: r.keys("*")),
        ("scan the keys", lambda r: r.scan(0)),
        ("flush the database", lambda r: r.flushdb()),
        ("change its own rights", lambda r: r.execute_command("ACL", "SETUSER", "director.lab1", "+@all")),
        ("listen to anything", lambda r: r.execute_command("PUBSUB", "CHANNELS")),
        ("run a script", lambda r: r.eval("return 1", 0)),
        ("reconfigure Redis", lambda r: r.config_get("*")),
    ],
)
def test_it_refuses_a_director(directors, redis_client, what, call):
    redis_client.lpush(keys.queue("lab2"), "secret desired state")
    assert denied(lambda: call(directors["lab1"])), what
    assert redis_client.llen(keys.queue("lab2")) == 1


def test_it_refuses_a_wrong_password_or_no_user(redis_server, directors):
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis.from_url(redis_server.url(acl.username("lab1"), "guess")).ping()
    with pytest.raises(redis.exceptions.AuthenticationError):  # the default user is off
        redis.Redis(port=redis_server.port).ping()


def test_it_keeps_only_a_hash_centrally_and_can_reissue(redis_client, redis_server):
    password = acl.new_password()
    digest = acl.password_hash(password)
    acl.set_director_user(redis_client, "lab3", digest)
    user = redis_client.acl_getuser("director.lab3")
    assert user["passwords"] == [digest] and password not in json.dumps(user, default=str)
    acl.set_director_user(redis_client, "lab3", acl.password_hash("new one"))  # rotation: old one is gone
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis.from_url(redis_server.url("director.lab3", password)).ping()
    acl.delete_director_user(redis_client, "lab3")


def test_it_refuses_names_that_would_widen_the_key_patterns():
    for bad in ("lab1*", "lab:1", "a b", "", "x" * 51, "lab1.x"):
        with pytest.raises(ValueError):
            acl.director_rules(bad)


# -- TLS with a private CA -------------------------------------------------------------------------------------
def _cert(tmp_path, name, issuer_key=None, issuer_name=None, ca=False):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name or subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    cert = builder.sign(issuer_key or key, hashes.SHA256())
    cert_path, key_path = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_path.chmod(0o600)
    return cert, key, str(cert_path), str(key_path)


@pytest.fixture
def tls_redis(tmp_path):
    ca, ca_key, ca_file, _ = _cert(tmp_path, "umw-test-ca", ca=True)
    _, _, server_crt, server_key = _cert(tmp_path, "redis-server", ca_key, ca.subject)
    _, _, client_crt, client_key = _cert(tmp_path, "director-lab1", ca_key, ca.subject)
    other_ca, _, other_ca_file, _ = _cert(tmp_path, "someone-else", ca=True)
    server = PrivateRedis(tls={"cert": server_crt, "key": server_key, "ca": ca_file})
    yield server, {"ca": ca_file, "cert": client_crt, "key": client_key, "other_ca": other_ca_file}
    server.stop()


def test_it_talks_tls_with_a_private_ca_and_a_client_certificate(tls_redis):
    server, files = tls_redis
    opts = transport.redis_options(ca=files["ca"], cert=files["cert"], key=files["key"])
    central = redis.Redis.from_url(server.url("central"), decode_responses=True, **opts)
    password = acl.new_password()
    acl.set_director_user(central, "lab1", acl.password_hash(password))
    lab1 = redis.Redis.from_url(server.url("director.lab1", password), decode_responses=True, **opts)
    lab1.xadd(keys.events_stream("lab1"), {"director": "lab1"})
    assert central.xlen(keys.events_stream("lab1")) == 1
    assert denied(lambda: lab1.xadd(keys.events_stream("lab2"), {"director": "lab2"}))

    # Celery's broker connection (what the agent's worker uses) over the same TLS settings
    from kombu import Connection

    with Connection(
        transport.celery_url(server.url("director.lab1", password)),
        ssl=transport.celery_ssl(ca=files["ca"], cert=files["cert"], key=files["key"]),
    ) as conn:
        conn.ensure_connection(max_retries=1)
        assert conn.default_channel.client.ping()


def test_it_refuses_a_server_its_ca_did_not_sign_and_a_client_without_a_certificate(tls_redis):
    server, files = tls_redis
    wrong_ca = transport.redis_options(ca=files["other_ca"], cert=files["cert"], key=files["key"])
    with pytest.raises(redis.exceptions.ConnectionError, match="certificate verify failed"):
        redis.Redis.from_url(server.url("central"), **wrong_ca).ping()
    no_client_cert = transport.redis_options(ca=files["ca"])
    with pytest.raises(redis.exceptions.ConnectionError):
        redis.Redis.from_url(server.url("central"), **no_client_cert).ping()


def test_it_names_a_missing_tls_file_before_connecting(tmp_path):
    with pytest.raises(ValueError, match="ca file .* does not exist"):
        transport.redis_options(ca=str(tmp_path / "nope.pem"))
    with pytest.raises(ValueError, match="needs its key"):
        transport.redis_options(cert=__file__)
