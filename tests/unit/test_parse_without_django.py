"""Parsers and renderers run without Django: importing them must not load it."""

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_it_parses_and_exports_without_loading_django():
    code = (
        "import sys\n"
        "from clusters.importers import parse\n"
        "from clusters.importers.preview import plan_lines\n"
        "from clusters.exporters import export\n"
        "plan = parse(open('tests/configs/ldirectord-ultramonkey.cf').read())\n"
        "assert plan.ok and export(plan.services, 'keepalived') and plan_lines(plan)\n"
        "assert 'django' not in sys.modules, sorted(m for m in sys.modules if m.startswith('django'))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
