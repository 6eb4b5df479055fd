"""The default SQLite database is created readable by its owner only: it holds hashes and check secrets."""

import os
import stat
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_it_creates_the_sqlite_file_mode_0600_even_with_a_permissive_umask(tmp_path):
    db = tmp_path / "db.sqlite3"
    env = dict(os.environ, DATABASE_URL=f"sqlite:///{db}", DJANGO_SETTINGS_MODULE="ultramonkey_web.settings")
    env.setdefault("SECRET_KEY", "test")
    code = "import os; os.umask(0o022); import django; django.setup(); from django.db import connection; connection.ensure_connection()"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, check=True, timeout=60)
    assert stat.S_IMODE(os.stat(db).st_mode) == 0o600
