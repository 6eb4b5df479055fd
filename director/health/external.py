"""checktype=external: run a program with ldirectord's arguments `v_server v_port r_server r_port`.

No shell is involved (the program path and the four arguments are passed as argv), the program gets
checktimeout seconds and is then terminated (SIGTERM as ldirectord does, SIGKILL if it lingers),
exit status 0 means up. The first line of its stderr (or stdout) is kept in the reason so an operator
can see why a custom check failed.

When the director's own configuration names an external-check directory (agent.toml `external_check_dir`,
passed as $UMW_EXTERNAL_CHECK_DIR), only programs inside it run: the desired state comes from the central
side, and the director decides which programs it is willing to run as root. Anything else fails the check
with a reason that names the directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex

from director.desired import CheckSpec

from .base import Checker, CheckFailed, Target, fmt_seconds


class ExternalChecker(Checker):
    """`spec.external` is the program, optionally with fixed leading arguments (split like a shell would)."""

    name = "external"

    def __init__(self, spec: CheckSpec):
        super().__init__(spec)
        # Our own deadline handles the program; the base class deadline is only a backstop.
        self.run_timeout = float(spec.checktimeout)
        self.timeout = self.run_timeout + 2.0
        self.argv = shlex.split(spec.external) if spec.external else []
        self.refusal = refusal(self.argv[0], os.environ.get("UMW_EXTERNAL_CHECK_DIR")) if self.argv else None

    async def _check(self, target: Target) -> str:
        if not self.argv:
            raise CheckFailed("no external program configured")
        if self.refusal:
            raise CheckFailed(self.refusal)
        args = [*self.argv, target.v_address, str(target.v_port), target.address, str(target.port)]
        proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        try:
            async with asyncio.timeout(self.run_timeout):
                out, err = await proc.communicate()
        except (TimeoutError, asyncio.CancelledError) as exc:
            await _terminate(proc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise CheckFailed(f"external timeout {fmt_seconds(self.run_timeout)}") from None
        code = proc.returncode
        text = (err or out or b"").decode("utf-8", "replace").strip().splitlines()
        detail = f": {text[0][:80]}" if text else ""
        if code != 0:
            raise CheckFailed(f"exit {code}{detail}")
        return f"exit 0{detail}"


def refusal(program: str, allowed_dir: str | None) -> str | None:
    """Why `program` may not run (None: it may). Symlinks are resolved, so a link out of the directory
    does not count as inside it."""
    if not allowed_dir:
        return None
    base = os.path.realpath(allowed_dir)
    real = os.path.realpath(program) if os.path.isabs(program) else None
    if real is None or os.path.dirname(real) != base:
        return f"external program {program} is not in the director's external-check directory {allowed_dir}"
    return None


async def _terminate(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    try:
        async with asyncio.timeout(1.0):
            await proc.wait()
            return
    except TimeoutError:
        pass
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(1.0):
            await proc.wait()
