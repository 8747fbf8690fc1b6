# make run: install if needed, index seeds/, serve the chat page.  make test: install if needed, run every tier.
# make test-fast: the default `pytest` tier only (hashing embedder, in-process app; no model, server or browser).
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed
SUDO    = $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install browser run test test-fast lint bench bench-quick clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,local]'
	touch $(STAMP)

install: $(STAMP)

# Debian packages of the full tier: Chromium for the browser tests (never `playwright install`) and PostgreSQL,
# which the shared-state tests start on loopback themselves (no cluster service is needed), and nginx, whose
# `nginx -t` checks deploy/nginx.conf (no nginx service is started either).
browser:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium chromium-driver; }
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q postgresql; }
	@test -x /usr/sbin/nginx || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q nginx; }

run: install
	$(VENV)/bin/docbot index seeds
	$(VENV)/bin/docbot serve

# -m "" overrides the fast-tier selection in pyproject's addopts (the last -m wins): every tier runs, one test at a
# time (-n 0: the live servers and timing bounds of the full tier want the machine to themselves).
test: install browser
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest -q -m "" -n 0 --durations=20

test-fast: install
	$(VENV)/bin/pytest -q --durations=10

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: install
	$(PY) -m bench

bench-quick: install
	$(PY) -m bench --quick

clean:
	rm -rf .docbot test-artifacts
