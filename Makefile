# Fleet UI: `make run` to try it, `make test` to check it. Both start from
# nothing: they create .venv and install the project on first use.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# Re-install only when the dependencies change.
STAMP := $(VENV)/.installed
HOST := 127.0.0.1:8000

.PHONY: install run test test-fast lint chromium test-browser screenshots

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
	@echo "Demo logins (new passwords each run):"
	@$(BIN)/python manage.py shell -c "from rollouts.demo_users import demo_users_create; [print(f'  {u.role}: {u.username} / {u.password}') for u in demo_users_create()]"
	@echo "Fleet UI:     http://$(HOST)/"
	@echo "Django admin: http://$(HOST)/admin/ (the demo admin can sign in there too)"
	@echo "Try:          $(BIN)/python manage.py fleet get crp"
	@echo
	$(BIN)/python manage.py fleet serve $(HOST)

# Debian's Chromium drives the browser tests (Playwright cannot download one here).
chromium:
	test -x /usr/bin/chromium || (apt-get update && apt-get install -y chromium)

# Two pytest-xdist workers (this machine and CI have two cores). Tests marked
# slow, celery or browser start processes that need the CPU themselves: they
# run one after another in one xdist group (tests/conftest.py) while the other
# worker takes the in-process tests. The 25 slowest tests are listed at the end.
PYTEST_WORKERS ?= 2
PARALLEL := -n $(PYTEST_WORKERS) --dist loadgroup
FAST := not slow and not celery and not browser

# Everything, as CI runs it (.ci/run).
test: install chromium
	mkdir -p var
	$(BIN)/pytest $(PARALLEL) --durations=25

# The edit loop: no Celery, no browser, no test that starts processes or
# services (about a minute on an idle machine); `make test` before pushing.
test-fast: install
	mkdir -p var
	$(BIN)/pytest $(PARALLEL) -m "$(FAST)" --durations=10

test-browser: install chromium
	$(BIN)/pytest tests/browser

screenshots: install chromium
	$(BIN)/python scripts/screenshots.py

lint: install
	$(BIN)/ruff check .
