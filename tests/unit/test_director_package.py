"""The director package must install and run on a director alone: no Django anywhere in it."""

import ast
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_it_has_no_django_imports_in_any_director_module():
    offenders = []
    for path in (ROOT / "director").rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [
                f"{path.relative_to(ROOT)}: {n}"
                for n in names
                if n.split(".")[0] in {"django", "clusters", "ultramonkey_web"}
            ]
    assert offenders == []


def test_it_imports_the_director_package_without_django_loaded():
    code = (
        "import sys, pkgutil, importlib, director\n"
        "for m in pkgutil.walk_packages(director.__path__, 'director.'):\n"
        "    importlib.import_module(m.name)\n"
        "assert 'django' not in sys.modules, [m for m in sys.modules if m.startswith('django')]\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
