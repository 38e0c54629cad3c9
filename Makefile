# Two commands: `make run` (the app on http://localhost:8501) and `make test` (the whole suite).
# Both set themselves up on a fresh Linux machine with Python 3.11+.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 8501
# pytest workers for `make test` and `make test-fast` (pytest-xdist; each module, and the browser tier, stays whole
# on one worker: tests/conftest.py). 2 suits a 2-core machine; TEST_WORKERS=0 runs the suite in one process.
TEST_WORKERS ?= 2
PYTEST := $(PY) -m pytest -n $(TEST_WORKERS)

.PHONY: run test test-fast venv dev browser postgres nginx axe tensorboard clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.deps: requirements.txt | $(PY)
	$(PY) -m pip install -r requirements.txt
	touch $@

# Test tools, and Ray (the cluster tests start a two-node cluster on this machine); `make run` needs neither.
$(VENV)/.dev-deps: requirements-dev.txt $(VENV)/.deps
	$(PY) -m pip install -r requirements-dev.txt
	touch $@

# Optional extra: TensorBoard, for `python -m resnet_lab export-tensorboard --run ID DIR`. The test setup installs it
# too, so that command's test runs in `make test`.
$(VENV)/.tensorboard-deps: requirements-tensorboard.txt $(VENV)/.deps
	$(PY) -m pip install -r requirements-tensorboard.txt
	touch $@

venv: $(VENV)/.deps
dev: $(VENV)/.dev-deps $(VENV)/.tensorboard-deps
tensorboard: $(VENV)/.tensorboard-deps

# Chromium for the browser tests: the system's when present, else Debian's package (as root),
# else Playwright's own browser as a last resort for machines where neither is possible.
browser: dev
	@if command -v chromium >/dev/null 2>&1 || [ -n "$$RESNET_LAB_CHROMIUM" ]; then \
		echo "chromium: $$(command -v chromium || echo $$RESNET_LAB_CHROMIUM)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	else \
		$(PY) -m playwright install chromium; \
	fi

# PostgreSQL for the store's tests on a server database (tests/helpers/pg.sh starts a throwaway one per test run, as
# an unprivileged user): the system's when present, else Debian's package (as root); elsewhere those tests are skipped
# with the reason. `make run` needs none of it (the lab's default store is SQLite).
postgres:
	@if [ -n "$$PG_BIN" ] || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; \
	then \
		echo "postgresql: $${PG_BIN:-$$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql; \
	else \
		echo "postgresql: not installed, and not root with apt-get to install it: its tests will be skipped"; \
	fi

# nginx for the test of several app servers behind the documented load balancer (docs/scaling.md): Debian's package
# (as root; its service is not started: the test runs its own nginx on a free port); elsewhere that test is skipped.
nginx:
	@if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then \
		echo "nginx: $$(command -v nginx || echo /usr/sbin/nginx)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y nginx; \
	else \
		echo "nginx: not installed, and not root with apt-get to install it: its test will be skipped"; \
	fi

# OMP_WAIT_POLICY=PASSIVE: the server's OpenMP threads sleep when they wait, leaving the cores to the training
# workers beside it (which get the same from the lab: resnet_lab/jobs/slots.py).
run: venv
	OMP_WAIT_POLICY=$${OMP_WAIT_POLICY:-PASSIVE} $(PY) -m streamlit run app.py --server.address $(HOST) \
		--server.port $(PORT)

# axe-core (the accessibility checker the browser tests load into every page: tests/browser/test_a11y.py), from
# npm into .cache/axe (git-ignored), once: the file itself is the stamp. pytest run without it skips that module.
AXE := .cache/axe/node_modules/axe-core/axe.min.js
$(AXE):
	npm install --prefix .cache/axe --no-save --no-audit --no-fund axe-core@4
	touch $@
axe: $(AXE)

# Both test targets run pytest beside a throwaway PostgreSQL server (stopped at the end, whatever happened; pytest's
# exit code is theirs): tests/helpers/with_pg.sh.
test: browser axe postgres nginx
	tests/helpers/with_pg.sh $(PYTEST)

# The tier a developer runs on every change: unit tests and the pages through AppTest (tiers: tests/helpers/tiers.py)
# but the tests marked slow. Left out: those, the process tier (job workers, the CLI as a real command, bench
# scripts) and the browser tier; `make test` runs them all.
test-fast: dev postgres
	tests/helpers/with_pg.sh $(PYTEST) -m "(unit or app) and not slow"

clean:
	rm -rf $(VENV) .pytest_cache
