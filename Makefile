# make run: install if needed, index seeds/, serve the chat page.  make test: install if needed, run every tier.
# make test-fast: the default `pytest` tier only (hashing embedder, in-process app; no model, server or browser).
VENV   ?= .venv
PY      = $(VENV)/bin/python
LOCKED  = $(VENV)/.locked
STAMP   = $(VENV)/.installed
LATEST ?= .venv-latest
SUDO    = $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# llama.cpp built portable: no -march=native; the CPU code is one library per x86-64 level (x64, sse42, haswell,
# skylakex, zen4, sapphirerapids...), picked at run time by bot/answer/llama_worker.py; installed inside the
# llama_cpp package (not site-packages/bin); llava/mtmd (images) not built.
LLAMA_CMAKE_ARGS = -DGGML_NATIVE=OFF -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON -DLLAVA_BUILD=OFF \
	-DCMAKE_INSTALL_BINDIR=llama_cpp/lib
PIP_COMPILE = .venv-lock/bin/pip-compile -q --generate-hashes --allow-unsafe --strip-extras --no-emit-find-links \
	--no-emit-index-url

.PHONY: install browser run test test-fast test-latest lock lint bench bench-quick screenshots clean

# Every package comes from requirements/lock.txt, hash-checked (torch's CPU wheel included); the build tools first,
# from requirements/build.txt, so that the one source build (llama-cpp-python) fetches nothing unhashed. A changed
# lock means a new venv: what is installed is exactly the lock. --no-cache-dir: a wheel of llama.cpp built earlier
# with other flags (a native build) is never reused.
$(LOCKED): requirements/lock.txt requirements/build.txt
	rm -rf $(VENV)
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --require-hashes --no-deps -r requirements/build.txt
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PY) -m pip install -q --require-hashes --no-deps --no-build-isolation \
		--no-cache-dir -r requirements/lock.txt
	touch $(LOCKED)

$(STAMP): $(LOCKED) pyproject.toml
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	$(PY) -m pip check
	touch $(STAMP)

install: $(STAMP)

# Debian packages of the full tier: Chromium for the browser tests (never `playwright install`) and PostgreSQL,
# which the shared-state tests start on loopback themselves (no cluster service is needed), and nginx, whose
# `nginx -t` checks deploy/nginx.conf (no nginx service is started either).
browser:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium chromium-driver; }
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q postgresql; }
	@test -x /usr/sbin/nginx || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q nginx; }
	@command -v curl >/dev/null 2>&1 || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q curl; }

run: install
	$(VENV)/bin/docbot index seeds
	$(VENV)/bin/docbot serve

# -m "" overrides the fast-tier selection in pyproject's addopts (the last -m wins): every tier runs, one test at a
# time (-n 0: the live servers and timing bounds of the full tier want the machine to themselves).
test: install browser
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest -q -m "" -n 0 --durations=20

# The newest versions pyproject.toml allows, in a venv of their own ($(LATEST)), through the fast tier: run it before
# `make lock`, and whenever a dependency announces a breaking release.
test-latest:
	rm -rf $(LATEST)
	python3 -m venv $(LATEST)
	$(LATEST)/bin/pip install -q --upgrade pip
	$(LATEST)/bin/pip install -q torch==2.13.0
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(LATEST)/bin/pip install -q --no-cache-dir --upgrade --upgrade-strategy eager \
		-e '.[dev,local]'
	$(LATEST)/bin/python requirements/compare.py requirements/lock.txt
	$(LATEST)/bin/pytest -q --durations=10

# Move the lock forward: the newest versions pyproject.toml allows, with their hashes (pip-tools, in .venv-lock).
# Then `make test` (a new venv from the new lock) and commit requirements/*.txt with the figures.
lock:
	test -x .venv-lock/bin/pip-compile || { python3 -m venv .venv-lock && .venv-lock/bin/pip install -q pip-tools==7.7.0; }
	$(PIP_COMPILE) --upgrade --extra dev --extra local -o requirements/lock.txt pyproject.toml requirements/build.in
	$(PIP_COMPILE) --upgrade -c requirements/lock.txt -o requirements/build.txt requirements/build.in

# The README's screenshot (docs/images/chat.png) from the current page: the browser test that checks the shot
# writes it there too when DOCBOT_SCREENSHOTS_DIR names a folder. Commit the new image.
screenshots: install browser
	DOCBOT_SCREENSHOTS_DIR=docs/images $(VENV)/bin/pytest -q -m "" -n 0 tests/test_screenshots_browser.py

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
	rm -rf .docbot test-artifacts $(LATEST) .venv-lock
