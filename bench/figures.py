"""Named figures a bench measured, kept for bench/scale.py to set next to their goals (issue 17).

A bench calls `record("what.where", value)` where it prints a figure; when UMW_BENCH_JSON names a file, the
figures are written there as one JSON object when the bench exits (also after a failure, so a partial run
still shows what it measured). Without it nothing is written: the benches print as before.
"""

from __future__ import annotations

import atexit
import json
import os

_FIGURES: dict[str, object] = {}


def record(key: str, value) -> None:
    """Remember one figure (numbers, strings, lists or dicts of them) under a dotted name."""
    _FIGURES[key] = value


def _save() -> None:
    path = os.environ.get("UMW_BENCH_JSON")
    if not path:
        return
    old = {}
    if os.path.exists(path):  # several benches may write into one file in turn
        with open(path) as fh:
            old = json.load(fh)
    with open(path + ".tmp", "w") as fh:
        json.dump(old | _FIGURES, fh, indent=1, default=float)
    os.replace(path + ".tmp", path)


atexit.register(_save)
