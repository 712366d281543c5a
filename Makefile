# Caravan — the two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
APT_PACKAGES := openssl poppler-utils softhsm2 libnss3-tools docker-compose postgresql

.PHONY: demo test lint typecheck unit venv deps sysdeps bench clean

demo: deps
	$(BIN)/caravan demo

test: sysdeps deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest -n 2 -q

lint: deps
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

unit: deps
	$(BIN)/pytest -n 2 -q

$(BIN)/python:
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || { \
	  echo "installing python3-venv"; SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq python3-venv >/dev/null; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

venv: $(BIN)/python

# Installs the project (editable) with its test dependencies; re-runs when pyproject changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@

deps: $(VENV)/.installed

# Debian packages the tests use: openssl, pdfsig, SoftHSM2, NSS certutil, and
# docker-compose (validates docker-compose.yml; no Docker engine needed), and PostgreSQL
# (the index tests start a server from its binaries; no service is enabled).
sysdeps:
	@missing=""; \
	for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

bench: deps
	$(BIN)/python bench/tsa.py
	$(BIN)/python bench/seal.py
	$(BIN)/python bench/contracts.py
	$(BIN)/python bench/ledger_commit.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
