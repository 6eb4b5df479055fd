"""`python -m director run [--config /etc/ultramonkey/agent.toml] [--name NAME] [--redis URL] [--state-dir DIR]`.

Runs the director's Celery worker on queue director.<NAME> with the solo pool (concurrency 1: applies are
serialised by design) and the agent bootstep. Settings come from the config file (config.py), flags override
it; the whole configuration is checked before anything starts. They reach the agent through the environment
so the Celery app, imported by the worker, sees the same values.
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
    args = parser.parse_args(argv)
    try:
        cfg = settings(args)
    except config.ConfigError as exc:
        parser.exit(2, f"python -m director: error: {exc}\n")

    export(cfg, os.environ)
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
