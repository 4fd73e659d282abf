# perfloop — two commands for a fresh Debian machine: `make run` and `make test`.
# Each part of the system (sandbox, moe, browser tests) adds what it needs in mk/*.mk:
# Debian packages to SYSTEM_PACKAGES, services to start to SERVICES.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8501
PYTEST_ARGS ?=

SYSTEM_PACKAGES := postgresql
SERVICES := postgres

-include mk/*.mk

.PHONY: run test lint install system-deps services postgres migrate clean

## Python environment: created once, refreshed when requirements change.
$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip wheel
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

## Debian packages the suite needs (installed only when missing; needs root or sudo).
system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi

## PostgreSQL for the test suite: the Debian cluster, a role the tests create databases with.
postgres:
	bash scripts/postgres.sh

services: $(SERVICES)

migrate: install
	mkdir -p data
	$(VENV)/bin/alembic upgrade head

run: install migrate
	$(PY) -m streamlit run app/main.py --server.port $(PORT) --server.headless true

test: install system-deps services
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
