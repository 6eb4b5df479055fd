"""Checks that never touch the network: checktype on/off and negotiate with service none.

ldirectord semantics: `on` adds every real server without checking, `off` adds none, and a negotiate
check of service `none` (check_none) simply declares the server up.
"""

from __future__ import annotations

from director.desired import CheckSpec

from .base import Checker, CheckFailed, Target


class StaticChecker(Checker):
    """Always the same answer; `reason` says why so the dashboard does not show a mystery."""

    name = "static"

    def __init__(self, spec: CheckSpec, ok: bool, reason: str):
        super().__init__(spec)
        self.ok = ok
        self.reason = reason

    async def _check(self, target: Target) -> str:
        if not self.ok:
            raise CheckFailed(self.reason)
        return self.reason
