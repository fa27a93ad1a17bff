# One command to set everything up and run each job. Only python3 (with venv) and make needed.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

demo: $(STAMP)  ## the seed's multi-tenant demo, headless
	$(PY) -m signalpy_lab.examples.multi_tenant

test: $(STAMP)  ## lint, then the whole test suite
	$(PY) -m ruff check .
	$(PY) -m pytest

bench: $(STAMP)  ## side-by-side benchmarks against the peers (installs the bench extra)
	$(PY) -m pip install --quiet -e '.[test,bench]'
	$(PY) -m benchmarks.run

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
