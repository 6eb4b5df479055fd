# Aliases of the README's two commands (scripts/run.sh and scripts/test.sh bootstrap themselves).
SHELL := /bin/bash
PY := .venv/bin/python

.PHONY: run test bootstrap lint test-unit test-django test-kernel test-e2e bench stop

bootstrap:
	@bash scripts/bootstrap.sh

run:
	@bash scripts/run.sh

stop:
	@bash scripts/run.sh stop

test:
	@bash scripts/test.sh

lint: bootstrap
	.venv/bin/ruff check .
	.venv/bin/lint-imports --no-cache
