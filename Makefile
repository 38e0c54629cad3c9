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

.PHONY: run test test-fast venv dev system browser postgres nginx axe tensorboard clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# Packages are installed by scripts/install.sh: pip's sources and settings, uv's speed where it can (it unpacks
# wheels on every core), pip itself where it cannot. Not byte-compiled file by file (pip's default, or compileall:
# about half a minute of CPU, mostly torch modules nothing imports): one Python imports what the lab's processes
# import at start and writes their bytecode, whatever PYTHONDONTWRITEBYTECODE says (a fifth of the modules);
# torch._dynamo is there because every torch optimizer imports it on first use.
INSTALL := sh scripts/install.sh $(PY)
$(VENV)/.deps: requirements.txt | $(PY)
	$(INSTALL) requirements.txt
	env -u PYTHONDONTWRITEBYTECODE $(PY) -c "import torch, torch._dynamo, torchvision, captum.attr, streamlit, \
		plotly.graph_objects, pandas, safetensors.torch, PIL.Image"
	touch $@

# Test tools, Ray (the cluster tests start a two-node cluster on this machine) and TensorBoard's writer, in one
# install; `make run` needs none of them. Not byte-compiled: Ray's 240 MB of modules took pip 20 s to compile, of
# which the tests import a small part (compiled once, on first import).
$(VENV)/.dev-deps: requirements-dev.txt requirements-tensorboard.txt $(VENV)/.deps
	$(INSTALL) requirements-dev.txt requirements-tensorboard.txt
	touch $@ $(VENV)/.tensorboard-deps

# Optional extra: TensorBoard, for `python -m resnet_lab export-tensorboard --run ID DIR`. The test setup installs it
# too, so that command's test runs in `make test`.
$(VENV)/.tensorboard-deps: requirements-tensorboard.txt $(VENV)/.deps
	$(INSTALL) requirements-tensorboard.txt
	touch $@

venv: $(VENV)/.deps
dev: $(VENV)/.dev-deps
tensorboard: $(VENV)/.tensorboard-deps

# The system's programs the test tiers use, each the system's own when present: Chromium (browser tests), PostgreSQL
# (the store's tests on a server database; tests/helpers/pg.sh starts a throwaway server per test run, as an
# unprivileged user) and nginx (several app servers behind the documented load balancer, docs/scaling.md; its
# service is not started: the test runs its own on a free port). What is missing comes from Debian's packages (as
# root) in one apt-get run; elsewhere Chromium is Playwright's own browser as a last resort and the PostgreSQL and
# nginx tests are skipped with the reason. `make run` needs none of them.
HAS_CHROMIUM := command -v chromium >/dev/null 2>&1 || [ -n "$$RESNET_LAB_CHROMIUM" ]
HAS_POSTGRES := [ -n "$$PG_BIN" ] || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1
HAS_NGINX := command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]
system:
	@missing=""; \
	$(HAS_CHROMIUM) || missing="$$missing chromium"; \
	$(HAS_POSTGRES) || missing="$$missing postgresql"; \
	$(HAS_NGINX) || missing="$$missing nginx"; \
	if [ -z "$$missing" ]; then \
		echo "chromium, postgresql, nginx: present"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; \
	else \
		echo "not installed, and not root with apt-get to install them:$$missing"; \
	fi

browser: dev system
	@$(HAS_CHROMIUM) || $(PY) -m playwright install chromium

postgres nginx: system

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
# exit code is theirs): tests/helpers/with_pg.sh. With bytecode written (__pycache__, git-ignored), whatever a
# machine's PYTHONDONTWRITEBYTECODE says: the suite starts hundreds of Pythons (job workers, app servers, the CLI),
# each of which would compile the lab's modules anew (0.25 s a job worker), and each pytest worker would rewrite
# every test module's asserts anew (pytest keeps them only where bytecode is written).
TEST_ENV := env -u PYTHONDONTWRITEBYTECODE
test: browser axe postgres nginx
	$(TEST_ENV) tests/helpers/with_pg.sh $(PYTEST)

# The tier a developer runs on every change: unit tests and the pages through AppTest (tiers: tests/helpers/tiers.py)
# but the tests marked slow. Left out: those, the process tier (job workers, the CLI as a real command, bench
# scripts) and the browser tier; `make test` runs them all.
test-fast: dev postgres
	$(TEST_ENV) tests/helpers/with_pg.sh $(PYTEST) -m "(unit or app) and not slow"

clean:
	rm -rf $(VENV) .pytest_cache
