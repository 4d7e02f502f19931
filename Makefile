# Fleet UI: `make run` to try it, `make test` to check it. Both start from
# nothing: they create .venv and install the project on first use.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# Re-install only when the dependencies change.
STAMP := $(VENV)/.installed
HOST := 127.0.0.1:8000

.PHONY: install run test lint browser-deps

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

# The demo fleet from the tutorial, served on $(HOST). Simulated members take
# 2 s per apply so a rollout can be watched.
run: export FLEET_SIMULATED_APPLY_SECONDS = 2
run: install
	mkdir -p var
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py fleet demo
	@echo
	@echo "Fleet UI:     http://$(HOST)/"
	@echo "Django admin: http://$(HOST)/admin/"
	@echo "  (first time: create a login with $(BIN)/python manage.py createsuperuser)"
	@echo "Try:          $(BIN)/python manage.py fleet get crp"
	@echo
	$(BIN)/python manage.py fleet serve $(HOST)

test: install
	mkdir -p var
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .

# Debian's Chromium for browser tests (not part of `make test` yet).
browser-deps:
	apt-get update
	apt-get install -y chromium
