# The two commands: `make run` starts the panel, `make test` runs the tests. Both install what they need.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: run test test-fast lint testbed bench migrate

$(VENV)/.run-deps: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev-deps: $(VENV)/.run-deps requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# Web + worker + beat in the foreground (Ctrl-C stops all three). A first local run is DEBUG=1:
# it generates SECRET_KEY and CCP_ENCRYPTION_KEYS into var/ and uses SQLite and a file-system broker
# unless DATABASE_URL / CELERY_BROKER_URL (or REDIS_URL) are set.
run: $(VENV)/.run-deps
	DEBUG=$${DEBUG:-1} $(PY) manage.py migrate --noinput
	DEBUG=$${DEBUG:-1} $(PY) manage.py ensure_admin
	DEBUG=$${DEBUG:-1} PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/honcho start -f Procfile

test: lint
	$(PY) -m pytest $(PYTEST_ARGS)

# Everything that needs no testbed and is not slow: under a minute, for the edit-test loop.
test-fast: lint
	$(PY) -m pytest -m "not testbed and not slow" $(PYTEST_ARGS)

# ruff (lint and format), and the import-linter contracts of pyproject.toml (the layers: README "Architecture").
lint: $(VENV)/.dev-deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

# Installs and starts the testbed (sshd, docker engine, compose v2, local registry, test images). Root only.
testbed: $(VENV)/.dev-deps
	bash tests/testbed/install.sh

# Every benchmark of bench/ in one run, their ratios summed up at the end (needs the testbed).
bench: $(VENV)/.dev-deps
	$(PY) bench/run_all.py

migrate: $(VENV)/.run-deps
	DEBUG=$${DEBUG:-1} $(PY) manage.py migrate --noinput
