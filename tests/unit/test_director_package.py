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


def test_it_imports_every_director_module_on_a_machine_without_django():
    """Block Django (and our central packages) at import time, as on a director that has only director/.

    Merely checking sys.modules is not enough: kombu imports django.utils.functional opportunistically
    whenever Django happens to be installed, which says nothing about our code.
    """
    code = (
        "import sys, importlib.abc, pkgutil, importlib\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in {'django', 'clusters', 'ultramonkey_web'}:\n"
        "            raise ImportError(f'{name} is not installed on a director')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import director\n"
        "for m in pkgutil.walk_packages(director.__path__, 'director.'):\n"
        "    importlib.import_module(m.name)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
