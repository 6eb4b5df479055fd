"""How both sides reach Redis: URL forms, credentials and TLS, in one place (no Django here).

URLs are redis-py's: ``redis://user:password@host:6379/0``, ``rediss://...`` (TLS) or
``unix://user:password@/path/redis.sock``; Celery (kombu) spells the unix form ``redis+socket://``.
Every connection authenticates as its own ACL user (director/acl.py). TLS takes a CA file (a private CA
is fine: the server is verified against it, never against the system store) and, for mutual TLS, a client
certificate and key.
"""

from __future__ import annotations

import os
import ssl
from urllib.parse import quote, urlsplit, urlunsplit


def celery_url(url: str) -> str:
    """Celery (kombu) names the unix-socket transport redis+socket://, redis-py names it unix://."""
    if url.startswith("unix://"):
        return "redis+socket://" + url[len("unix://") :]
    return url


def with_credentials(url: str, username: str, password: str) -> str:
    """`url` with `username:password@` in it (replacing any there), both URL-quoted."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{quote(username, safe='')}:{quote(password, safe='')}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def redacted(url: str) -> str:
    """The URL with its password replaced, for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user, _, host = parts.netloc.rpartition("@")
    name = user.partition(":")[0]
    return urlunsplit((parts.scheme, f"{name}:***@{host}", parts.path, parts.query, parts.fragment))


def tls_files(ca: str | None = None, cert: str | None = None, key: str | None = None) -> dict:
    """Check the TLS files exist now (a clear error at start, not a handshake failure later)."""
    out = {"ca": ca or None, "cert": cert or None, "key": key or None}
    for what, path in out.items():
        if path and not os.path.isfile(path):
            raise ValueError(f"Redis TLS {what} file {path} does not exist")
    if bool(out["cert"]) != bool(out["key"]):
        raise ValueError("a Redis TLS client certificate needs its key, and the other way round")
    return out


def redis_options(ca: str | None = None, cert: str | None = None, key: str | None = None) -> dict:
    """redis-py keyword arguments for a rediss:// URL (nothing for plain connections)."""
    files = tls_files(ca, cert, key)
    if not any(files.values()):
        return {}
    opts = {"ssl_cert_reqs": "required", "ssl_ca_certs": files["ca"]}
    if files["cert"]:
        opts.update(ssl_certfile=files["cert"], ssl_keyfile=files["key"])
    return opts


def celery_ssl(ca: str | None = None, cert: str | None = None, key: str | None = None) -> dict | None:
    """Celery's broker_use_ssl / redis_backend_use_ssl for the same files (None: no TLS options)."""
    files = tls_files(ca, cert, key)
    if not any(files.values()):
        return None
    opts = {"ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_ca_certs": files["ca"]}
    if files["cert"]:
        opts.update(ssl_certfile=files["cert"], ssl_keyfile=files["key"])
    return opts


def env_tls(prefix: str = "UMW_REDIS_") -> dict:
    """TLS file names from the environment: <prefix>CA, <prefix>CERT, <prefix>KEY."""
    return {k: os.environ.get(prefix + k.upper()) or None for k in ("ca", "cert", "key")}


def redis_options_from_env(prefix: str = "UMW_REDIS_") -> dict:
    return redis_options(**env_tls(prefix))
