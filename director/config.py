"""The agent's own configuration file (`/etc/ultramonkey/agent.toml`), read by `python -m director run --config`.

Why a file: on a real director the agent runs under systemd, and the Redis credentials must not sit in the
unit's command line (visible in `ps` to every user) nor in the desired state (which comes from the central
side). The file is the director's own word on who it is, where its Redis is and which external check
programs it will run; command-line flags override it for one run.

Every error names the file and the key (`agent.toml: redis.url: ...`) and the file is checked whole before
anything starts, so a typo never leaves a half-configured agent running. Unknown keys are errors too: a
misspelt `state-dir` silently falling back to a default is exactly the mistake this guards against.

    name = "director1"                        # the director's name in the dashboard (queue director.<name>)
    state_dir = "/var/lib/ultramonkey"        # last desired state, health, event buffer
    external_check_dir = "/etc/ultramonkey/checks"   # checktype=external runs only programs in here
    loglevel = "INFO"
    trust_file = "/etc/ultramonkey/central.pub"   # the dashboard's public signing key(s)

    [redis]
    url = "rediss://central.example:6379/0"   # redis://, rediss:// (TLS) or unix:///path
    username = "director.director1"           # default: director.<name> when a password is given
    password_file = "/etc/ultramonkey/redis-password"   # or password = "..."; never both
    ca_file = "/etc/ultramonkey/redis-ca.pem"  # rediss://: the CA that signed the server's certificate
    cert_file = "/etc/ultramonkey/agent.pem"   # mutual TLS (optional): this director's certificate
    key_file = "/etc/ultramonkey/agent.key"    # ... and its key
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

DEFAULT_PATH = "/etc/ultramonkey/agent.toml"
DEFAULT_STATE_DIR = "/var/lib/ultramonkey"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
LOGLEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
REDIS_SCHEMES = ("redis", "rediss", "unix")
# the dashboard's Director.name is a SlugField of at most 50 characters; the queue is director.<name>
NAME_RE = re.compile(r"[-a-zA-Z0-9_]{1,50}")

TOP_KEYS = {"name", "state_dir", "external_check_dir", "loglevel", "trust_file", "redis"}
REDIS_KEYS = {"url", "username", "password", "password_file", "ca_file", "cert_file", "key_file"}
DEFAULT_TRUST_FILE = "/etc/ultramonkey/central.pub"


class ConfigError(ValueError):
    """A configuration the agent refuses to start with; the message names the file and the key."""


@dataclass(frozen=True)
class AgentConfig:
    """What the agent runs with. `redis_url` already carries the credentials (percent-encoded)."""

    name: str
    redis_url: str = DEFAULT_REDIS_URL
    state_dir: str = DEFAULT_STATE_DIR
    external_check_dir: str | None = None
    loglevel: str = "INFO"
    trust_file: str | None = None
    redis_ca: str | None = None
    redis_cert: str | None = None
    redis_key: str | None = None

    def redacted_url(self) -> str:
        """The Redis URL with its password replaced, for logs and error messages."""
        return redact(self.redis_url)


def redact(url: str) -> str:
    """`url` with its password replaced by ***. Never raises: it is used to word the error about a URL that
    does not parse (bad IPv6 bracket, port out of range), and that error must not show the password either."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return _redact_unparsed(url)
    if parts.password is None:
        return url
    user = quote(parts.username or "", safe="")
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}:***@{host}" + (f":{port}" if port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _redact_unparsed(url: str) -> str:
    """The same for a URL urlsplit refuses: whatever sits between the user name and the last '@' of the
    authority (scheme://user:password@host...) is the password."""
    scheme, sep, rest = url.partition("://")
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    userinfo, at, host = authority.rpartition("@")
    if not (sep and at and ":" in userinfo):
        return url
    return f"{scheme}{sep}{userinfo.split(':', 1)[0]}:***@{host}{rest[len(authority) :]}"


def load(path: str) -> dict:
    """The file's settings as keyword arguments for `resolve` (only the keys the file sets). Checked whole."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except PermissionError:
        raise ConfigError(f"{path}: permission denied (the agent reads it as root)") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses per nesting level: `name = [[[[...` a few thousand deep
        raise ConfigError(f"{path}: not valid TOML: arrays or tables nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:  # ENOTDIR, ELOOP, ENAMETOOLONG, EIO...: still the file's fault, not a traceback
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    return parse(data, source=path)


def parse(data: dict, source: str = "agent.toml") -> dict:
    """Validate a decoded TOML document; return {setting: value} for the keys present. Pure."""

    def err(key: str, problem: str) -> ConfigError:
        return ConfigError(f"{source}: {key}: {problem}")

    unknown = sorted(set(data) - TOP_KEYS)
    if unknown:
        raise err(unknown[0], f"unknown key (known: {', '.join(sorted(TOP_KEYS))})")
    out: dict = {}
    if "name" in data:
        out["name"] = _name(data["name"], lambda p: err("name", p))
    for key in ("state_dir", "external_check_dir", "trust_file"):
        if key in data:
            out[key] = _abs_path(data[key], lambda p, k=key: err(k, p))
    if "loglevel" in data:
        out["loglevel"] = _loglevel(data["loglevel"], lambda p: err("loglevel", p))
    if "redis" in data:
        redis = data["redis"]
        if not isinstance(redis, dict):
            raise err("redis", f"must be a table ([redis]), not {_kind(redis)}")
        unknown = sorted(set(redis) - REDIS_KEYS)
        if unknown:
            raise err(f"redis.{unknown[0]}", f"unknown key (known: {', '.join(sorted(REDIS_KEYS))})")
        default_user = f"director.{out['name']}" if "name" in out else None
        out.update(_redis(redis, lambda k, p: err(f"redis.{k}", p), default_user))
    return out


def resolve(file_settings: dict, **flags) -> AgentConfig:
    """Flags (None = not given) override the file; the result must name the director."""
    merged = {**file_settings, **{k: v for k, v in flags.items() if v is not None}}
    if "name" in flags and flags["name"] is not None:
        merged["name"] = _name(flags["name"], lambda p: ConfigError(f"--name: {p}"))
    if "redis_url" in flags and flags["redis_url"] is not None:
        _check_url(flags["redis_url"], lambda p: ConfigError(f"--redis: {p}"))
    if flags.get("loglevel") is not None:
        merged["loglevel"] = _loglevel(flags["loglevel"], lambda p: ConfigError(f"--loglevel: {p}"))
    if not merged.get("name"):
        raise ConfigError("no director name: give --name or set name in the config file (--config)")
    return AgentConfig(**merged)


# -- value checks ------------------------------------------------------------------------------------------
def _kind(value) -> str:
    return {dict: "a table", list: "an array", bool: "a boolean", int: "an integer", float: "a number"}.get(
        type(value), type(value).__name__
    )


def _string(value, err) -> str:
    if not isinstance(value, str):
        raise err(f"must be a string, not {_kind(value)}")
    if not value.strip():
        raise err("must not be empty")
    if "\x00" in value:
        raise err("must not contain NUL characters")
    return value


def _name(value, err) -> str:
    value = _string(value, err)
    if not NAME_RE.fullmatch(value):
        raise err(
            f"{value!r} is not a director name (letters, digits, '-' and '_', at most 50, as in the dashboard)"
        )
    return value


def _loglevel(value, err) -> str:
    level = _string(value, err).upper()
    if level not in LOGLEVELS:
        raise err(f"{value!r} is not one of {', '.join(LOGLEVELS)}")
    return level


def _abs_path(value, err) -> str:
    value = _string(value, err)
    if not os.path.isabs(value):
        raise err(f"{value!r} must be an absolute path")
    return os.path.normpath(value)


def _check_url(url: str, err) -> None:
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise err(f"{redact(url)!r} contains control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        shown = redact(url)
        # urlsplit quotes the whole authority in some messages ("netloc 'u:pw@h' contains invalid characters")
        detail = str(exc) if shown == url else re.sub(r"'[^']*@", "'***@", str(exc))
        raise err(f"{shown!r} is not a URL: {detail}") from None
    # redis-py (redis.from_url) and Celery go by the literal prefix: ' redis://', 'REDIS://' and 'unix:/path'
    # parse here but would be refused (or misread) when the agent starts
    if parts.scheme not in REDIS_SCHEMES or not url.startswith(parts.scheme + "://"):
        raise err(f"{redact(url)!r}: scheme must be one of {', '.join(s + '://' for s in REDIS_SCHEMES)}")
    if parts.scheme == "unix" and not parts.path.startswith("/"):
        raise err(f"{url!r}: a unix socket URL needs an absolute path (unix:///run/redis/redis.sock)")
    if parts.scheme != "unix" and not parts.hostname:
        raise err(f"{redact(url)!r} names no host")


def _redis(redis: dict, err, default_user: str | None = None) -> dict:
    """The [redis] table: the URL with its credentials (username defaults to the director's ACL user
    `director.<name>` when a password is given) and the TLS files, which must be readable now."""
    out: dict = {}
    url = DEFAULT_REDIS_URL
    if "url" in redis:
        url = _string(redis["url"], lambda p: err("url", p))
        _check_url(url, lambda p: err("url", p))
    username = password = None
    if "username" in redis:
        username = _string(redis["username"], lambda p: err("username", p))
    if "password" in redis and "password_file" in redis:
        raise err("password_file", "give password or password_file, not both")
    if "password" in redis:
        password = _string(redis["password"], lambda p: err("password", p))
    if "password_file" in redis:
        path = _abs_path(redis["password_file"], lambda p: err("password_file", p))
        try:
            with open(path, encoding="utf-8", newline="") as f:  # a '\r' inside the password stays one
                password = f.read().strip()
        except OSError as exc:
            raise err("password_file", f"cannot read {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise err("password_file", f"{path} is not UTF-8 text") from None
        if not password:
            raise err("password_file", f"{path} is empty")
    if password is not None and username is None:
        username = default_user
    if username is not None or password is not None:
        parts = urlsplit(url)
        if parts.scheme == "unix":
            raise err("url", "credentials need a redis:// or rediss:// URL (not a unix socket)")
        if parts.username is not None or parts.password is not None:
            raise err("url", "has credentials of its own; put them in username/password only")
        userinfo = quote(username or "", safe="") + (":" + quote(password, safe="") if password else "")
        url = urlunsplit(parts._replace(netloc=f"{userinfo}@{parts.netloc}"))
    if "url" in redis or username is not None or password is not None:
        out["redis_url"] = url
    for key, setting in (("ca_file", "redis_ca"), ("cert_file", "redis_cert"), ("key_file", "redis_key")):
        if key in redis:
            path = _abs_path(redis[key], lambda p, k=key: err(k, p))
            if not os.access(path, os.R_OK):
                raise err(key, f"cannot read {path}")
            if not os.path.isfile(path):  # a directory is "readable" too, and TLS would fail only at connect
                raise err(key, f"{path} is not a file")
            out[setting] = path
    if ("cert_file" in redis) != ("key_file" in redis):
        raise err("key_file" if "cert_file" in redis else "cert_file", "give cert_file and key_file together")
    return out
