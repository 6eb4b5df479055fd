"""agent.toml as a file, whatever is in it: `config.load` + `config.resolve` either give a config the agent can
really run with (Redis accepts the URL, paths are absolute, the TLS files are readable files) or raise the
module's ConfigError naming the file and the key (or, for a file that is not TOML at all, the line or byte).
Never another exception: a traceback from the config file is a crash at boot on a director nobody watches.

The documents are written as bytes (the way the agent reads them), so the TOML decoder, UTF-8 decoding and
the value checks are all exercised; valid documents must round-trip every value they set."""

from __future__ import annotations

import datetime
import math
import os
import tomllib

import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from director import config

# -- a small TOML writer (any value tomllib can produce, keys always quoted) --------------------------------


def toml_str(s: str) -> str:
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return toml_str(v)
    if isinstance(v, (datetime.datetime, datetime.date, datetime.time)):
        return v.isoformat()
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{toml_str(k)} = {toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))


def toml_document(doc: dict) -> str:
    """Top-level keys first, then a [redis] section when redis is a table (else it stays an inline value)."""
    lines = [
        f"{toml_str(k)} = {toml_value(v)}" for k, v in doc.items() if k != "redis" or not isinstance(v, dict)
    ]
    if isinstance(doc.get("redis"), dict):
        lines.append("[redis]")
        lines += [f"{toml_str(k)} = {toml_value(v)}" for k, v in doc["redis"].items()]
    return "\n".join(lines) + "\n"


# -- hostile documents -----------------------------------------------------------------------------------------
EXISTING = ["/", "/tmp", "/dev/null", "/etc/hostname", "/proc/self/status"]
URLS = [
    "redis://h:6379/0",
    "rediss://h",
    "unix:///run/r.sock",
    " redis://h:6379/0",
    "REDIS://h/0",
    "unix:/run/r.sock",
    "redis:h",
    "redis://[::1",
    "redis://u:p@[::1",
    "redis://u:p@h:99999/0",
    "redis://u:p@h:port/0",
    "redis://h\x01/0",
    "redis://h\n:6379/0",
    "redis://\uff03h/0",
    "http://u:p@h/",
    "unix://relative",
]
scalars = st.one_of(
    st.text(max_size=30),
    st.text(max_size=10).map(lambda s: "/x/" + s + "\x00" + s),  # NUL byte in a path
    st.text(max_size=10).map(lambda s: "rel/" + s),  # relative path
    st.integers(min_value=1, max_value=200_000).map(lambda n: "/" + "y" * n),  # huge path
    st.sampled_from(["", " ", "\t", ".", "..", "director1", "INFO", "debug", "ınfo", *EXISTING, *URLS]),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.booleans(),
    st.floats(),
    st.datetimes(timezones=st.just(datetime.UTC)),
    st.dates(),
    st.times(),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
paths = st.one_of(
    st.sampled_from(EXISTING),
    st.sampled_from(EXISTING),
    st.text(max_size=20).map(lambda s: "/" + s),
    st.text(max_size=10).map(lambda s: "/x/" + s + "\x00"),
    st.text(max_size=10),
    st.integers(min_value=1, max_value=200_000).map(lambda n: "/" + "y" * n),
)
urls = st.one_of(
    st.sampled_from(URLS),
    st.builds(
        "".join,
        st.tuples(
            st.sampled_from(["redis://", "rediss://", "unix://", "REDIS://", " redis://", "redis:", "unix:"]),
            st.sampled_from(["", "u@", "u:p@", ":p@", "u:hunter2@"]),
            st.text(max_size=12),
            st.sampled_from(["", ":6379", ":0", ":99999", ":x", "]"]),
            st.sampled_from(["", "/0", "/x", "?db=1", "#f"]),
        ),
    ),
)
names = st.from_regex(config.NAME_RE, fullmatch=True) | st.sampled_from(["d 1", "x" * 51])
levels = st.sampled_from([*config.LOGLEVELS, "info", "Debug", "LOUD", "ınfo"])


def fields(plausible: dict, keys):
    """(key, value) pairs: a known key with (mostly) a plausible value or any value, or an arbitrary key. Plausible
    values dominate so that a document often gets past its first key and reaches the checks behind it."""
    return st.one_of(
        *(st.tuples(st.just(k), st.one_of(v, v, v, values)) for k, v in plausible.items()),
        st.tuples(keys, values),
    )


top_fields = fields(
    {"name": names, "state_dir": paths, "external_check_dir": paths, "trust_file": paths, "loglevel": levels},
    st.text(max_size=12),
)
redis_fields = fields(
    {"url": urls, "username": st.text(max_size=12), "password": st.text(max_size=12), "password_file": paths}
    | {k: paths for k in ("ca_file", "cert_file", "key_file")},
    st.text(max_size=12),
)
documents = (
    st.lists(top_fields, max_size=6)
    .map(dict)
    .flatmap(
        lambda top: st.one_of(
            st.just(top),
            st.lists(redis_fields, max_size=7).map(lambda r: {**top, "redis": dict(r)}),
        )
    )
)


@st.composite
def document_bytes(draw) -> bytes:
    """A document's bytes: mostly well-formed TOML, sometimes mangled into something that is not."""
    text = toml_document(draw(documents)).encode()
    how = draw(st.sampled_from(["as is"] * 6 + ["non-utf8", "truncated", "deep", "binary", "duplicate"]))
    if how == "non-utf8":
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80\x80"])) + text[at:]
    elif how == "truncated":
        text = text[: draw(st.integers(0, len(text)))]
    elif how == "deep":
        n = draw(st.integers(1, 5000))
        open_, close = draw(st.sampled_from([("[", "]"), ("{a = ", "}")]))
        key = draw(st.sampled_from(["name", "trust_file", "redis"]))
        text = f"{key} = {open_ * n}1{close * n}\n".encode() + text
    elif how == "binary":
        text = draw(st.binary(max_size=200))
    elif how == "duplicate":
        text = text + text
    return text


def named_keys(decoded: dict) -> set[str]:
    """The keys an error may name: those the document sets, and the missing half of cert_file/key_file."""
    redis_table = decoded.get("redis") if isinstance(decoded.get("redis"), dict) else {}
    pair = {"cert_file", "key_file"} if {"cert_file", "key_file"} & set(redis_table) else set()
    return set(decoded) | {f"redis.{k}" for k in set(redis_table) | pair}


def assert_runnable(cfg: config.AgentConfig) -> None:
    """What the agent needs of a config it starts with."""
    assert config.NAME_RE.fullmatch(cfg.name)
    assert cfg.loglevel in config.LOGLEVELS
    for path in (cfg.state_dir, cfg.external_check_dir, cfg.trust_file):
        assert path is None or (os.path.isabs(path) and "\x00" not in path)
    for path in (cfg.redis_ca, cfg.redis_cert, cfg.redis_key):
        assert path is None or (os.path.isfile(path) and os.access(path, os.R_OK))
    assert (cfg.redis_cert is None) == (cfg.redis_key is None)
    kwargs = redis.connection.parse_url(cfg.redis_url)  # redis-py must accept what we accepted
    assert kwargs.get("host") or kwargs.get("path")


@settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
@given(document_bytes())
def test_it_runs_with_any_agent_toml_or_names_the_key_it_refuses(tmp_path_factory, data):
    path = str(tmp_path_factory.getbasetemp() / "hostile-agent.toml")
    with open(path, "wb") as f:
        f.write(data)
    try:
        decoded = tomllib.loads(data.decode())
    except Exception:  # noqa: BLE001 - whatever stops the decoder, load must say "not TOML / not UTF-8"
        decoded = None
    try:
        cfg = config.resolve(config.load(path))
    except config.ConfigError as exc:
        message = str(exc)
        if "nested too deeply" in message:  # how deep the decoder gets depends on the stack it starts from
            assert message.startswith(f"{path}: not valid TOML: "), message
        elif decoded is None:
            assert message.startswith(f"{path}: not valid "), message
            where = ("(at line ", "(at end of document)", " at byte ", "nested too deeply")
            assert any(w in message for w in where), message
        elif message.startswith("no director name"):
            assert "name" not in decoded
        else:
            assert message.startswith(f"{path}: "), message
            rest = message[len(path) + 2 :]
            assert any(rest.startswith(f"{key}: ") for key in named_keys(decoded)), message
            url = decoded.get("redis", {}).get("url") if isinstance(decoded.get("redis"), dict) else None
            if isinstance(url, str) and "://u:hunter2@" in url:
                assert "hunter2" not in message, message  # the password of a bad URL is never shown
        return
    assert decoded is not None
    assert_runnable(cfg)


# -- valid documents round-trip ---------------------------------------------------------------------------------
segment = st.text(
    st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)), min_size=1, max_size=10
)
abs_paths = st.lists(segment.filter(lambda s: s not in (".", "..")), min_size=1, max_size=4).map(
    lambda parts: "/" + "/".join(parts)
)
secrets = st.text(min_size=1, max_size=30).filter(lambda s: s.strip() and "\x00" not in s)
hosts = st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z0-9-]{1,10}){0,2}", fullmatch=True)


@st.composite
def valid_documents(draw):
    doc: dict = {"name": draw(st.from_regex(config.NAME_RE, fullmatch=True))}
    for key in ("state_dir", "external_check_dir", "trust_file"):
        if draw(st.booleans()):
            doc[key] = draw(abs_paths)
    if draw(st.booleans()):
        level = draw(st.sampled_from(config.LOGLEVELS))
        doc["loglevel"] = draw(st.sampled_from([level, level.lower(), level.capitalize()]))
    redis_table: dict = {}
    expected = {"username": None, "password": None, "password_file_text": None}
    if draw(st.booleans()):
        redis_table["url"] = draw(st.from_regex(r"unix:///[a-z0-9_/]{1,30}\.sock", fullmatch=True))
    else:
        scheme, host, port, db = (
            draw(st.sampled_from(["redis", "rediss"])),
            draw(hosts),
            draw(st.integers(1, 65535)),
            draw(st.integers(0, 15)),
        )
        if draw(st.booleans()):
            redis_table["url"] = f"{scheme}://{host}:{port}/{db}"
            expected.update(host=host, port=port, db=db)
        if draw(st.booleans()):
            redis_table["username"] = expected["username"] = draw(secrets)
        secret_from = draw(st.sampled_from(["none", "password", "password_file"]))
        if secret_from == "password":
            redis_table["password"] = expected["password"] = draw(secrets)
        elif secret_from == "password_file":
            text = draw(secrets)
            expected["password_file_text"] = text + draw(st.sampled_from(["", "\n", " \n", "\r\n"]))
            expected["password"] = text.strip()
    tls = draw(st.sampled_from(["none", "ca", "ca+cert", "cert"]))
    if redis_table or expected["password_file_text"] or tls != "none":
        doc["redis"] = redis_table
    return doc, expected, tls


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_documents())
def test_it_round_trips_every_value_of_a_valid_agent_toml(tmp_path_factory, generated):
    doc, expected, tls = generated
    base = tmp_path_factory.getbasetemp() / "valid"
    base.mkdir(exist_ok=True)
    if expected["password_file_text"] is not None:
        pw = base / "password"
        pw.write_bytes(expected["password_file_text"].encode())
        doc["redis"]["password_file"] = str(pw)
    files = {}
    for key in {
        "none": (),
        "ca": ("ca_file",),
        "ca+cert": ("ca_file", "cert_file", "key_file"),
        "cert": ("cert_file", "key_file"),
    }[tls]:
        (base / key).write_text("PEM\n")
        doc["redis"][key] = files[key] = str(base / key)
    path = base / "agent.toml"
    path.write_bytes(toml_document(doc).encode())

    cfg = config.resolve(config.load(str(path)))

    assert_runnable(cfg)
    assert cfg.name == doc["name"]
    assert cfg.state_dir == doc.get("state_dir", config.DEFAULT_STATE_DIR)
    assert (cfg.external_check_dir, cfg.trust_file) == (doc.get("external_check_dir"), doc.get("trust_file"))
    assert cfg.loglevel == doc.get("loglevel", "INFO").upper()
    assert (cfg.redis_ca, cfg.redis_cert, cfg.redis_key) == (
        files.get("ca_file"),
        files.get("cert_file"),
        files.get("key_file"),
    )
    kwargs = redis.connection.parse_url(cfg.redis_url)
    url = doc.get("redis", {}).get("url", config.DEFAULT_REDIS_URL)
    if url.startswith("unix://"):
        assert cfg.redis_url == url
        return
    if "host" in expected:
        assert (kwargs["host"], kwargs["port"], kwargs["db"]) == (
            expected["host"],
            expected["port"],
            expected["db"],
        )
    username = expected["username"]
    if username is None and expected["password"] is not None:
        username = f"director.{doc['name']}"
    assert (kwargs.get("username"), kwargs.get("password")) == (username, expected["password"])
