# Two commands do all the set-up on a fresh machine (README):
#   make run   — virtualenv + broker + simulator + exporter + worker + watchdog + app
#   make test  — virtualenv + the whole test suite (what .ci/run calls)
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: venv venv-dev run test test-fast bench clean

$(VENV)/.runtime: requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

venv: $(VENV)/.runtime
venv-dev: $(VENV)/.dev

run: venv
	$(PY) -m ingest run

test: venv-dev
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: venv-dev
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

bench: venv-dev
	$(PY) bench/ingest.py

clean:
	rm -rf data/warehouse.duckdb* data/exporter_state.json data/demo_source.sqlite*
