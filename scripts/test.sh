#!/usr/bin/env bash
# The test command (README; `make test` and .ci/run call it): installs what is missing (bootstrap --test), then
# every test tier, in order of cost: lint (ruff, import contracts), unit, django (SQLite, and PostgreSQL when
# DATABASE_URL is set or a local server answers), kernel (inside a UML guest), end-to-end (browser against the full stack).
# Not here: scripts/test-compose.sh (docker-compose.yml on a real Docker engine; needs dockerd and image builds
# with registry access, 2-10 minutes), run it separately after changing the Dockerfile, compose file or agent start-up.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONDONTWRITEBYTECODE=1
bash scripts/bootstrap.sh --test || { echo "!!! bootstrap failed"; exit 1; }
rc=0
step() { echo; echo "=== $*"; }
fail() { echo "!!! FAILED: $*"; rc=1; }

step "ruff"
.venv/bin/ruff check . || fail "ruff"

step "import contracts (import-linter; the rules are in pyproject.toml)"
.venv/bin/lint-imports --no-cache || fail "import contracts"

step "unit + django tests (SQLite)"
.venv/bin/python -m pytest -q tests/unit tests/django || fail "unit/django on SQLite"

pg_url=${DATABASE_URL:-}
if [ -z "$pg_url" ] && command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  pg_url="postgres://postgres@127.0.0.1:5432/postgres"
fi
if [ -n "$pg_url" ]; then
  step "django tests (PostgreSQL)"
  DATABASE_URL=$pg_url .venv/bin/python -m pytest -q tests/django || fail "django on PostgreSQL"
fi

step "browser tests (Playwright + Debian chromium against the live server)"
if [ -x /usr/bin/chromium ] || [ "${CI:-}" = "true" ]; then
  .venv/bin/python -m pytest -q tests/browser || fail "browser tier"
else
  echo "skipped: /usr/bin/chromium is missing (apt-get install chromium); CI=true makes this a failure"
fi

if [ -x lab/lab.sh ]; then
  step "kernel tests (inside a UML guest)"
  lab/lab.sh pytest tests/kernel || fail "kernel tier"
fi

if [ -d tests/e2e ] && ls tests/e2e/test_*.py >/dev/null 2>&1; then
  step "end-to-end tests (lab director + browser)"
  .venv/bin/python -m pytest -q tests/e2e || fail "e2e tier"
fi

echo
if [ $rc -eq 0 ]; then echo "ALL TIERS PASSED"; else echo "SOME TIERS FAILED"; fi
exit $rc
