# One command to set everything up and run each job; `make` alone lists them.
# Needs make and a Python >= 3.11 with venv; `make test` also needs Debian's chromium.
VENV ?= .venv
PY := $(VENV)/bin/python
SUM := $(shell cksum < pyproject.toml | cut -d' ' -f1)
# The environment each job needs: `make lab` and `make demo` the [all] extra, the tests [test].
ALL := $(VENV)/.installed-all-$(SUM)
TEST := $(VENV)/.installed-test-$(SUM)
# The tour notebook JupyterLab opens: its printed URL (and the browser it starts) goes there.
TOUR := notebooks/01_multi_tenant_tour.ipynb

# The first of python3.13, python3.12, python3.11, python3 that is 3.11 or newer, unless
# PYTHON is given (make PYTHON=/path/to/python3.12 ...).
ifeq ($(origin PYTHON),undefined)
PYTHON := $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 \
	&& $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	&& { echo $$p; break; }; done)
endif

# The reactive engine under test (issue 21): pip install compiles graph.py where a C compiler
# exists. In CI it must be the compiled one (SIGNALPY_LAB_ENGINE=compiled fails loudly if the
# build did not happen); elsewhere whichever is installed. Then ENGINE_TESTS run again on the
# pure build, so both builds pass the engine's tests and its hypothesis properties.
ENGINE ?= $(if $(CI),compiled,auto)
ENGINE_ENV := SIGNALPY_LAB_ENGINE=$(ENGINE)
ENGINE_TESTS := tests/kernel tests/faults/test_stateful.py

.DEFAULT_GOAL := help
.PHONY: help lab demo test chromium screenshots bench clean

help:  ## list these targets (the default)
	@echo "make TARGET, where TARGET is one of:"
	@awk 'BEGIN {FS = ":[^#]*## "} /^[a-z][a-z-]*:[^=]*## / {printf "  %-12s %s\n", $$1, $$2}' \
		$(MAKEFILE_LIST)
	@echo "Variables: PYTHON=$(if $(PYTHON),$(PYTHON),<none found: 3.11+ needed>)" \
		"VENV=$(VENV) SKIP_BROWSER=$(SKIP_BROWSER) (1: make test without tests/browser)"

$(PY):
	@if [ -z "$(PYTHON)" ]; then \
		echo "make: signalpy_lab needs Python 3.11 or newer, and none of python3.13," \
			"python3.12, python3.11, python3 on PATH is one. Install one (Debian, Ubuntu:" \
			"apt-get install python3 python3-venv) or name it: make PYTHON=/path/to/python3.12" >&2; \
		exit 1; fi
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
		echo "make: PYTHON=$(PYTHON) is not Python 3.11 or newer" \
			"(it says: $$($(PYTHON) --version 2>&1 | head -n 1))." >&2; exit 1; }
	@echo "==> creating $(VENV) with $(PYTHON) ($$($(PYTHON) --version 2>&1))"
	@$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); echo "make: $(PYTHON) cannot create a" \
		"venv; on Debian or Ubuntu: apt-get install python3-venv" >&2; exit 1; }
	@echo "==> upgrading pip in $(VENV)"
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed-%-$(SUM): pyproject.toml | $(PY)
	@echo "==> installing signalpy-lab[$*] into $(VENV) with its dependencies from PyPI" \
		"(pip's progress below; the first time fetches about 110 packages, a minute or two)"
	$(PY) -m pip install -e '.[$*]'
	@touch $@
	@echo "==> $(VENV) is ready"

lab: $(ALL)  ## set up, then JupyterLab on the multi-tenant tour notebook (open the printed URL)
	@echo "==> starting JupyterLab on $(TOUR); Ctrl-C stops it"
	$(PY) -m jupyter lab --ServerApp.allow_root=True --LabApp.default_url=/lab/tree/$(TOUR)

demo: $(ALL)  ## the design note's story, headless: only globex's db_url recomputes
	$(PY) -m signalpy_lab.examples.demo

chromium:  ## make sure Debian's chromium is there for tests/browser (installs it as root)
	@.ci/chromium

test: $(if $(filter 1,$(SKIP_BROWSER)),,chromium) $(TEST)  ## set up, lint, then the whole suite (SKIP_BROWSER=1: without tests/browser)
	@echo "==> the compiled engine: rebuilt if graph.py changed since pip install built it"
	@$(PY) -c 'import sys; from signalpy_lab.kernel._engine import compiled_problem; \
		sys.exit(compiled_problem() is not None)' \
		|| $(PY) -m pip install --quiet --no-deps -e .
	@echo "==> ruff check ."
	$(PY) -m ruff check .
ifeq ($(SKIP_BROWSER),1)
	@echo "==> pytest, without tests/browser (SKIP_BROWSER=1), engine: $(ENGINE)"
	$(ENGINE_ENV) $(PY) -m pytest --ignore=tests/browser
else
	@echo "==> pytest (a few minutes; notebooks, a wheel install and a browser included)," \
		"engine: $(ENGINE)"
	$(ENGINE_ENV) $(PY) -m pytest
endif
	@echo "==> the engine's tests again, on the pure build: tests/kernel and the properties"
	SIGNALPY_LAB_ENGINE=pure $(PY) -m pytest -q $(ENGINE_TESTS)

screenshots: chromium $(TEST)  ## refresh docs/lab-*.png: the tour run in JupyterLab in headless Chromium
	$(PY) -m tests.browser.screenshots

bench: $(TEST)  ## side-by-side benchmarks against the peers (installs the bench extra)
	@echo "==> installing the bench extra (the peers) into $(VENV)"
	$(PY) -m pip install -e '.[test,bench]'
	$(PY) -m benchmarks.js_suite
	$(PY) -m benchmarks.run
	$(PY) -m benchmarks.remote
	$(PY) -m benchmarks.lab
	$(PY) -m benchmarks.quota
	$(PY) -m benchmarks.sandbox
	$(PY) -m benchmarks.workers
	$(PY) -m benchmarks.shared_config

clean:  ## remove the venv and the tools' caches
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
