# ML Accounts: `make run` and `make test` are all a fresh machine needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install run test lint format bench setup clean

# The notifications callback's secret path segment (ML_WEBHOOK_SECRET): a random one, once.
install: $(STAMP) .env
	@grep -q '^ML_WEBHOOK_SECRET=' .env || \
		echo "ML_WEBHOOK_SECRET=$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(32))')" >> .env

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet ".[dev]"
	touch $(STAMP)

.env:
	cp .env.example .env

# Migrate (which installs the missing periodic jobs and leaves an admin's changes to them
# alone), make the demo login and its sellers (idempotent).
setup: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo

# The processes count into one directory that /metrics sums (METRICS_TOKEN in .env turns it
# on), emptied before they start: docs/operations.md, "Metrics".
PROMETHEUS_MULTIPROC_DIR ?= $(CURDIR)/var/metrics

run: setup
	@mkdir -p "$(PROMETHEUS_MULTIPROC_DIR)" && rm -f "$(PROMETHEUS_MULTIPROC_DIR)"/*.db
	@echo "ML Accounts: http://127.0.0.1:8000/  (Ctrl-C stops every process)"
	PROMETHEUS_MULTIPROC_DIR="$(PROMETHEUS_MULTIPROC_DIR)" $(VENV)/bin/honcho start

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

# Capacity, the previous algorithm and the rate budget against the sandbox, on a database
# of its own (var/bench/, or <name>_bench with DATABASE_URL): never the developer's data.
bench: install
	$(PY) manage.py bench

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .ruff_cache
