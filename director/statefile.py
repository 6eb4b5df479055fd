"""The agent's memory on local disk: last desired state and last health, written atomically.

A restarted agent (or one whose central side is gone) re-applies exactly what it last had, so restarting
it changes nothing in the kernel: same desired table, same health, same weights.
"""

from __future__ import annotations

import json
import os
import tempfile


def save_json(path: str, data) -> None:
    write_text(path, json.dumps(data))


def write_text(path: str, text: str, mode: int = 0o600) -> None:
    """Write a file atomically (temporary file, fsync, rename): a crash leaves the old or the new content."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def load_json(path: str, default=None):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return default
