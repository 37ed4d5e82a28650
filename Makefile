# Two commands for a newcomer: `make demo` and `make test`. Both install first (make install).
# Everything lands inside the checkout: .venv/ (Python packages) and .cache/kafka/ (broker jars).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install demo test check lint bench clean system-deps helm lock

install: system-deps $(STAMP) .cache/kafka/libs/.ready helm
	@# Byte-compile our own modules as pip does an installed package's (an editable install is not),
	@# so a command's first run, and every run where PYTHONDONTWRITEBYTECODE is set, skips compiling.
	@$(PY) -m compileall -q monitor detectors alerts dashboards sdk/src > /dev/null

# Re-run pip only when a dependency list or the pins change. The service's run-time dependencies are
# installed at the versions the suite is tested with (constraints.txt, `make lock` regenerates it); the
# light SDK (./sdk, a distribution of its own that the project depends on) in the same pip call, so pip
# finds it here, not on an index.
$(STAMP): pyproject.toml sdk/pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ./sdk -e ".[test]"
	@touch $@

.cache/kafka/libs/.ready: $(STAMP) monitor/kafka_local/pom.xml
	$(VENV)/bin/monitor kafka fetch
	@touch $@

system-deps:
	./scripts/system-deps.sh

# The Helm CLI the chart test renders with, built once from the Go module proxy into .cache/bin.
helm:
	./scripts/helm.sh

# Re-pin the image's dependencies (constraints.txt) to what this virtual environment runs.
lock: $(STAMP)
	$(PY) scripts/lock.py

demo: install
	$(VENV)/bin/monitor demo

test: install check
	$(PY) -m pytest $(PYTEST_ARGS)

# Static checks, fast and first: style, the floors (import-linter), types (mypy).
check: install
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

bench: install
	$(PY) bench/ingest.py
	$(PY) bench/drift.py

clean:
	rm -rf $(VENV) .cache .monitor .pytest_cache .ruff_cache
