"""`python -m director run [--config /etc/ultramonkey/agent.toml] [--name NAME] [--redis URL] [--state-dir DIR]`.

Runs the director's Celery worker on queue director.<NAME> with the solo pool (concurrency 1: applies are
serialised by design) and the agent bootstep. Settings come from the config file (config.py), flags override
it; the whole configuration is checked before anything starts. They reach the agent through the environment
so the Celery app, imported by the worker, sees the same values.

Security (README "Security model"): the agent logs in to Redis as its own ACL user ``director.<NAME>``
(director/acl.py) with the password from the config file or ``--redis-password-file`` (never the command
line); ``rediss://`` with ``--redis-ca`` (and ``--redis-cert``/``--redis-key`` for mutual TLS); it applies
only desired states signed by a key in ``--trust``; external check programs run only from the
``external_check_dir`` the director names (none: external checks are refused).

`python -m director redis-user --name NAME --password-file F` makes a director's Redis user as the central
user in $UMW_REDIS_URL (the lab does; the dashboard does it itself with `manage.py director_credentials`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from . import config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m director")
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="run the director agent (Celery worker + health checks + reporter)")
    run.add_argument("--config", help=f"agent config file (TOML), e.g. {config.DEFAULT_PATH}")
    run.add_argument("--name", help="director name as in the dashboard (required without --config)")
    run.add_argument("--redis", help="Redis URL (default: the config's, else $REDIS_URL, else local)")
    run.add_argument("--state-dir", help=f"default {config.DEFAULT_STATE_DIR}")
    run.add_argument("--external-check-dir", help="checktype=external runs only programs in this directory")
    run.add_argument("--loglevel", choices=config.LOGLEVELS, type=str.upper, help="default INFO")
    run.add_argument("--redis-password-file", help="this director's Redis password (user director.NAME)")
    run.add_argument("--redis-ca", help="CA certificate that signed the Redis server's (rediss:// URLs)")
    run.add_argument("--redis-cert", help="client certificate for mutual TLS")
    run.add_argument("--redis-key", help="the client certificate's key")
    run.add_argument(
        "--trust", help="the central side's public signing key(s) (default /etc/ultramonkey/central.pub)"
    )
    user = sub.add_parser("redis-user", help="make or reset a director's Redis ACL user")
    user.add_argument("--name", required=True)
    user.add_argument("--password-file", required=True)
    args = parser.parse_args(argv)
    if args.cmd == "redis-user":
        return redis_user(args.name, args.password_file)
    try:
        cfg = settings(args)
        security = security_env(args, cfg)
    except (config.ConfigError, ValueError, OSError) as exc:
        parser.exit(2, f"python -m director: error: {exc}\n")

    export(cfg, os.environ)
    os.environ.update(security)
    logging.basicConfig(level=cfg.loglevel, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("director").info(
        "director %s: redis %s, state in %s", cfg.name, cfg.redacted_url(), cfg.state_dir
    )

    from .keys import queue
    from .worker import app

    app.worker_main(
        [
            "worker",
            "-Q",
            queue(cfg.name),
            "-P",
            "solo",
            "-c",
            "1",
            "-n",
            f"agent@{cfg.name}",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            cfg.loglevel,
        ]
    )
    return 0


def export(cfg: config.AgentConfig, environ) -> None:
    """The settings as the agent and its checkers read them (Agent.from_env, health/external.py)."""
    environ["UMW_DIRECTOR"] = cfg.name
    environ["UMW_REDIS_URL"] = cfg.redis_url
    environ["UMW_STATE_DIR"] = cfg.state_dir
    if cfg.external_check_dir:
        environ["UMW_EXTERNAL_CHECK_DIR"] = cfg.external_check_dir
    else:  # an inherited value must not outlive a config without the key
        environ.pop("UMW_EXTERNAL_CHECK_DIR", None)


def security_env(args: argparse.Namespace, cfg: config.AgentConfig) -> dict:
    """The security settings as the agent reads them (flags over the config file): the Redis URL with
    director.NAME's password from --redis-password-file, TLS files (checked now), the trust file."""
    from . import acl, transport

    out = {}
    if args.redis_password_file:
        with open(args.redis_password_file, encoding="utf-8") as f:
            password = f.read().strip()
        out["UMW_REDIS_URL"] = transport.with_credentials(cfg.redis_url, acl.username(cfg.name), password)
    ca, cert, key = (
        (args.redis_ca or cfg.redis_ca),
        (args.redis_cert or cfg.redis_cert),
        (args.redis_key or cfg.redis_key),
    )
    transport.tls_files(ca, cert, key)
    for name, value in (
        ("UMW_REDIS_CA", ca),
        ("UMW_REDIS_CERT", cert),
        ("UMW_REDIS_KEY", key),
        ("UMW_TRUST_FILE", args.trust or cfg.trust_file),
    ):
        if value:
            out[name] = os.path.abspath(value)
    return out


def redis_user(name: str, password_file: str) -> int:
    import redis

    from . import acl, transport

    with open(password_file, encoding="utf-8") as f:
        password = f.read().strip()
    client = redis.Redis.from_url(
        os.environ.get("UMW_REDIS_URL", config.DEFAULT_REDIS_URL), **transport.redis_options_from_env()
    )
    acl.set_director_user(client, name, acl.password_hash(password))
    return 0


def settings(args: argparse.Namespace) -> config.AgentConfig:
    """Config file (if any) < flags. Without either, Redis comes from $REDIS_URL as before."""
    from_file = config.load(args.config) if args.config else {}
    if "redis_url" not in from_file and args.redis is None and os.environ.get("REDIS_URL"):
        from_file["redis_url"] = os.environ["REDIS_URL"]
    return config.resolve(
        from_file,
        name=args.name,
        redis_url=args.redis,
        state_dir=args.state_dir and os.path.abspath(args.state_dir),
        external_check_dir=args.external_check_dir and os.path.abspath(args.external_check_dir),
        loglevel=args.loglevel or (None if "loglevel" in from_file else os.environ.get("UMW_LOGLEVEL")),
    )


if __name__ == "__main__":
    sys.exit(main())
