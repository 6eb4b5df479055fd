"""`python -m director run --name NAME --redis URL --state-dir DIR`: start a director agent.

Runs the director's Celery worker on queue director.<NAME> with the solo pool (concurrency 1: applies are
serialised by design) and the agent bootstep. Configuration goes through the environment so the Celery app,
imported by the worker, sees the same values.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m director")
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="run the director agent (Celery worker + health checks + reporter)")
    run.add_argument("--name", required=True, help="director name as in the dashboard")
    run.add_argument("--redis", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    run.add_argument("--state-dir", default="/var/lib/ultramonkey")
    run.add_argument("--loglevel", default=os.environ.get("UMW_LOGLEVEL", "INFO"))
    args = parser.parse_args(argv)

    os.environ["UMW_DIRECTOR"] = args.name
    os.environ["UMW_REDIS_URL"] = args.redis
    os.environ["UMW_STATE_DIR"] = args.state_dir
    logging.basicConfig(level=args.loglevel, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from .keys import queue
    from .worker import app

    app.worker_main(
        [
            "worker",
            "-Q",
            queue(args.name),
            "-P",
            "solo",
            "-c",
            "1",
            "-n",
            f"agent@{args.name}",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            args.loglevel,
        ]
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
