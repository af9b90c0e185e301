# data-sync: the two commands a newcomer needs are `make up` and `make test`.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NORTHWIND ?= ../shared/data/northwind

.PHONY: up test lint fmt import-northwind faults bench clean

# The virtual environment is rebuilt whenever pyproject.toml changes.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Start PostgreSQL, Kafka and every service process; Ctrl-C stops everything.
up: $(STAMP)
	$(BIN)/python -m datasync.stack up

## Run every test: unit, integration (real PostgreSQL and Kafka) and end to end.
test: $(STAMP)
	$(BIN)/python -m pytest

## ruff, formatting, mypy strict and the import-linter layering contracts.
lint: $(STAMP)
	$(BIN)/ruff check services tests bench
	$(BIN)/ruff format --check services tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

fmt: $(STAMP)
	$(BIN)/ruff check --fix services tests
	$(BIN)/ruff format services tests

## Every fault-injection scenario against real processes under load (about 12 minutes).
faults: $(STAMP)
	FAULTS_RUN_ID=$$(date -u +%Y%m%dT%H%M%SZ) $(BIN)/python -m pytest tests/faults --all-faults

## The benchmark suite (the pipeline against the limits of its parts, 7 to 12 minutes) and
## the rebuild rate; results under bench/results/, read in docs/performance.md.
bench: $(STAMP)
	bash bench/tools.sh
	$(BIN)/python bench/suite.py
	$(BIN)/python bench/rebuild_rate.py

## Load the Northwind customers and orders into a running stack through its REST APIs.
## IMPORT_ARGS passes options on, e.g. IMPORT_ARGS="--pedidos-url http://127.0.0.1:3700".
import-northwind: $(STAMP)
	$(BIN)/python -m datasync.importer --data-dir $(NORTHWIND) $(IMPORT_ARGS)

clean:
	rm -rf $(VENV) .data .mypy_cache .ruff_cache .pytest_cache
