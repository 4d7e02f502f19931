# Fleet UI: `make run` to try it, `make test` to check it. Both start from
# nothing: they create .venv and install the project on first use.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# Re-install only when the lock changes.
STAMP := $(VENV)/.installed
# Where `make run` serves: ADDR:PORT or PORT, as runserver takes it (make run HOST=0.0.0.0:9000).
HOST ?= 127.0.0.1:8000
PIP := $(BIN)/python -m pip --quiet --disable-pip-version-check

.PHONY: install lock run test test-fast lint test-tools test-browser screenshots

install: $(STAMP)

# Installs exactly what requirements-dev.lock pins, every file checked against
# its hash; the project itself goes in editable, without fetching build tools.
# A lock older than pyproject.toml's dependencies stops here: `make lock`.
$(STAMP): requirements-dev.lock pyproject.toml
	$(PYTHON) scripts/lockfile.py check
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --require-hashes --no-deps -r requirements-dev.lock
	$(PIP) install --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Re-resolve pyproject.toml's dependencies into the two lock files (hashes for
# every platform): requirements.lock for production, requirements-dev.lock
# with the test tools. Commit both.
LOCK_FLAGS := --generate-hashes --universal --python-version 3.11 --quiet
lock: $(BIN)/uv
	$(BIN)/uv pip compile pyproject.toml $(LOCK_FLAGS) -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --extra dev $(LOCK_FLAGS) -o requirements-dev.lock
	$(PYTHON) scripts/lockfile.py stamp

# Locking needs only uv, and must work while the lock is stale.
$(BIN)/uv:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install uv

# The demo fleet from the tutorial, served on $(HOST). Simulated members take
# 2 s per apply so a rollout can be watched. The logins, the address and the
# fleet alias are the last lines before the server's own.
run: export FLEET_SIMULATED_APPLY_SECONDS = 2
# DEBUG defaults to false (and then needs SECRET_KEY and FLEET_CREDENTIALS_KEY);
# the demo turns it on: plain http, keys derived for the demo.
run: export DEBUG = true
# The names the demo answers to: localhost and HOST's address (every name of
# this machine for 0.0.0.0); an ALLOWED_HOSTS in the environment wins.
run: export ALLOWED_HOSTS ?= $(shell $(PYTHON) scripts/demo_host.py allowed-hosts $(HOST))
run: RUN_URL = $(shell $(PYTHON) scripts/demo_host.py url $(HOST))
run: install
	@mkdir -p var
	@$(BIN)/python manage.py migrate --noinput -v0
	@$(BIN)/python manage.py collectstatic --noinput -v0
	@$(BIN)/python manage.py fleet demo >/dev/null
	@echo
	@echo "Fleet UI:  $(RUN_URL)   (Django admin: $(RUN_URL)admin/)"
	@echo "Sign in as (new passwords each run):"
	@$(BIN)/python manage.py shell -v0 -c "from rollouts.demo_users import demo_users_create, demo_logins_text; print(demo_logins_text(demo_users_create()))"
	@echo "The fleet command, in another terminal in this directory (the README's tour starts here):"
	@echo "  alias fleet='$(BIN)/python manage.py fleet'"
	@echo "  fleet get crp"
	@echo
	@$(BIN)/python manage.py fleet serve $(HOST)

# What the tests drive that pip cannot install, from Debian: Chromium for the
# browser tests (Playwright cannot download one here) and Prometheus, which
# scrapes a running Fleet UI in tests/test_metrics_prometheus.py. From the npm
# registry: axe-core, the accessibility checker tests/browser/test_look.py
# runs in every page (tests only; var/ is git-ignored), its package checked
# against the hash pinned here.
AXE_VERSION := 4.14.1
AXE_SHA256 := e6b0ce02b84d892e2e33e403485e7f3d6c29e2be6df65daf44d89ba564139745
AXE_DIR := var/axe-core-$(AXE_VERSION)

test-tools: $(AXE_DIR)/axe.min.js
	test -x /usr/bin/chromium -a -x /usr/bin/prometheus || \
		(apt-get update && apt-get install -y chromium prometheus)

$(AXE_DIR)/axe.min.js:
	mkdir -p $(AXE_DIR)
	cd $(AXE_DIR) && npm pack --silent axe-core@$(AXE_VERSION) >/dev/null && \
		echo "$(AXE_SHA256)  axe-core-$(AXE_VERSION).tgz" | sha256sum -c --quiet && \
		tar xzf axe-core-$(AXE_VERSION).tgz --strip-components=1 package/axe.min.js package/LICENSE && \
		rm axe-core-$(AXE_VERSION).tgz

# Two pytest-xdist workers (this machine and CI have two cores). Tests marked
# slow, celery or browser start processes that need the CPU themselves: they
# run one after another in one xdist group (tests/conftest.py) while the other
# worker takes the in-process tests. Tests marked soak mostly wait on a clock
# (the README tour's 1m TimedWait): they go first, beside the in-process tests,
# not in that group. The 25 slowest tests are listed at the end.
PYTEST_WORKERS ?= 2
PARALLEL := -n $(PYTEST_WORKERS) --dist loadgroup
FAST := not slow and not celery and not browser and not soak

# Everything, as CI runs it (.ci/run).
test: install test-tools
	mkdir -p var
	$(BIN)/pytest $(PARALLEL) --durations=25

# The edit loop: no Celery, no browser, no test that starts processes or
# services (under 90 s on an idle machine); `make test` before pushing. A third
# worker: these tests wait on sockets and the fake API server about a third of
# the time (1,407 tests: 93 s on two workers, 86 s on three, here).
FAST_WORKERS ?= 3
test-fast: install
	mkdir -p var
	$(BIN)/pytest -n $(FAST_WORKERS) --dist loadgroup -m "$(FAST)" --durations=10

test-browser: install test-tools
	$(BIN)/pytest tests/browser

screenshots: install test-tools
	$(BIN)/python scripts/screenshots.py

lint: install
	$(BIN)/ruff check .
