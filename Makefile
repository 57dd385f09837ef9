# Deux commandes pour une machine neuve (voir README.md) :
#   make demo   installe tout (versions figées) et lance le traitement complet sur la campagne de démonstration
#   make test   lint + tous les tests (rapides et lents), exactement ce que lance la CI (.ci/run)
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
NPM ?= npm
export DAGSTER_DISABLE_TELEMETRY := 1
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export DO_NOT_TRACK := 1

.PHONY: setup demo test test-fast lint format ui clean lock

$(BIN)/kpi: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	# --compile-bytecode: the dependencies' bytecode is written once, at install. uv does not do
	# it by default and, where PYTHONDONTWRITEBYTECODE is set (as on our machines), every `kpi`,
	# dbt and Great Expectations process recompiled its imports from source (bench/README.md:
	# import great_expectations 11.3 s -> 4.9 s, dbt 4.3 s -> 2.6 s, dagster 2.9 s -> 1.2 s).
	# requirements.lock has every file's SHA-256: uv refuses a download that differs. The project
	# itself is built apart (no hash for it) with the lock's setuptools, not a fetched one.
	$(BIN)/uv pip install --quiet --python $(BIN)/python --compile-bytecode -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps --no-build-isolation -e .
	$(BIN)/python -m compileall -q dagster_project
	touch $(BIN)/kpi

# Fichiers statiques des Data Docs (bootstrap, jquery, vega...) : versions exactes de
# package-lock.json, copiés dans chaque publication pour un rendu hors ligne (docs/exports.md).
node_modules/.package-lock.json: package.json package-lock.json
	$(NPM) ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

setup: $(BIN)/kpi node_modules/.package-lock.json
	$(BIN)/kpi init-key

demo: setup
	$(BIN)/kpi run

# The tests on $(TEST_WORKERS) processes (pytest-xdist; docs/dev/testing.md, « Two processes »):
# on one, the slow tests' waits on their child processes (kpi, dbt, Dagster, a browser) left a
# core idle. --maxschedchunk 1: a process is handed one test at a time (two waiting), so the
# slow tests, first in the collection, spread over both. TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2

test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -m "slow or not slow" -n $(TEST_WORKERS) --dist load --maxschedchunk 1

ui: setup
	$(BIN)/kpi ui

test-fast: setup
	$(BIN)/pytest

lint:
	$(BIN)/ruff check .

format:
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# requirements.lock from pyproject.toml (dependencies, extras dev and postgres) and
# constraints.txt, with hashes. uv keeps every version already locked unless a pin changes it
# (a new version: change its pin, or --upgrade-package NAME).
lock:
	$(BIN)/uv pip compile --quiet pyproject.toml constraints.txt --extra dev --extra postgres \
	  --generate-hashes --python-version 3.11 --python-platform linux \
	  --custom-compile-command "make lock" -o requirements.lock

clean:
	rm -rf warehouse.duckdb warehouse.duckdb.wal dbt/target dbt/logs
