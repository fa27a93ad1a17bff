# One command to set everything up and run each job. Only python3 (with venv) and make needed.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: lab demo test screenshots bench clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

lab: $(STAMP)  ## JupyterLab on the multi-tenant tour notebook (the main job)
	$(PY) -m jupyter lab --ServerApp.allow_root=True notebooks/01_multi_tenant_tour.ipynb

demo: $(STAMP)  ## the design note's story, headless: only globex's db_url recomputes
	$(PY) -m signalpy_lab.examples.demo

test: $(STAMP)  ## lint, then the whole test suite (tests/browser needs Debian's chromium)
	$(PY) -m ruff check .
	$(PY) -m pytest

screenshots: $(STAMP)  ## refresh docs/lab-*.png: the tour run in JupyterLab in headless Chromium
	$(PY) -m tests.browser.screenshots

bench: $(STAMP)  ## side-by-side benchmarks against the peers (installs the bench extra)
	$(PY) -m pip install --quiet -e '.[test,bench]'
	$(PY) -m benchmarks.run
	$(PY) -m benchmarks.remote
	$(PY) -m benchmarks.lab
	$(PY) -m benchmarks.quota

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
