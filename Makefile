# Two commands for a newcomer: `make demo` and `make test`. Both install first (make install).
# Everything lands inside the checkout: .venv/ (Python packages) and .cache/kafka/ (broker jars).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install demo test lint bench clean system-deps

install: system-deps $(STAMP) .cache/kafka/libs/.ready

# Re-run pip only when a dependency list changes. The light SDK (./sdk, a distribution of its own that
# the project depends on) is installed in the same pip call, so pip finds it here, not on an index.
$(STAMP): pyproject.toml sdk/pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ./sdk -e ".[test]"
	@touch $@

.cache/kafka/libs/.ready: $(STAMP) monitor/kafka_local/pom.xml
	$(VENV)/bin/monitor kafka fetch
	@touch $@

system-deps:
	./scripts/system-deps.sh

demo: install
	$(VENV)/bin/monitor demo

test: install
	$(PY) -m ruff check .
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

bench: install
	$(PY) bench/ingest.py
	$(PY) bench/drift.py

clean:
	rm -rf $(VENV) .cache .monitor .pytest_cache .ruff_cache
