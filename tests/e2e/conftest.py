"""End-to-end fixtures: the whole product (lab director in a UML guest + central side) and a real browser.

One Stack per test module: booting a guest costs seconds, and the scenario in a module is one story told
in order (create -> traffic -> drain -> failures -> restarts), the way an operator lives it.
"""

from __future__ import annotations

import os
import shutil
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "lab"))

from stack import CHROMIUM, CHROMIUM_ARGS  # noqa: E402


def wait_until(predicate, timeout: float, step: float = 0.2, what: str = ""):
    """Poll (bounded) until predicate() is truthy and return its value; fail naming what was awaited."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}: last {value!r}")


def _skip_or_fail(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"end-to-end tier cannot run in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def stack(request):
    if os.geteuid() != 0:
        _skip_or_fail("the lab needs root")
    if shutil.which("linux.uml") is None:
        _skip_or_fail("user-mode-linux is not installed (make bootstrap)")
    from stack import Stack

    demo = getattr(request.module, "DEMO", True)
    s = Stack(demo=demo)
    try:
        s.start()
    except Exception:
        s.stop()
        raise
    yield s
    s.stop()


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        _skip_or_fail(f"{CHROMIUM} is missing")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def page(stack, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    p = context.new_page()
    p.set_default_timeout(15_000)
    stack.log_in(p)
    yield p
    context.close()
