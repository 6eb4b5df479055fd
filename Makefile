# Two commands matter: `make run` (dashboard + lab director) and `make test` (every test tier).
SHELL := /bin/bash
PY := .venv/bin/python

.PHONY: run test bootstrap lint test-unit test-django test-kernel test-e2e bench stop

bootstrap:
	@bash scripts/bootstrap.sh

run: bootstrap
	@bash scripts/run.sh

stop:
	@bash scripts/run.sh stop

test:
	@bash scripts/bootstrap.sh --test
	@bash scripts/test.sh

lint: bootstrap
	.venv/bin/ruff check .
