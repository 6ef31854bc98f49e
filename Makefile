# The two commands of the README: `make run` and `make test`. Both set up
# everything they need on a fresh machine (virtualenv, packages, Kafka jars).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: run test test-unit test-integration lint deps test-deps bench classifier-model clean

run: $(STAMP)
	$(BIN)/complaints run

# Lint first (seconds), then every test: unit, agent, contract and integration (real Kafka broker), in two
# processes: the fault suite (its own brokers) beside the rest (tests/conftest.py groups them).
test: test-deps $(STAMP) lint
	$(BIN)/python -m pytest -n 2 --no-loadscope-reorder $(PYTEST_ARGS)

# The fast loop: no broker, no training, no subprocesses.
test-unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit tests/agent -m "not slow" $(PYTEST_ARGS)

# ruff, mypy (strict for the domain, schemas, topics and settings) and the import-linter layer contracts.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test-integration: test-deps $(STAMP)
	$(BIN)/python -m pytest tests/integration tests/contract $(PYTEST_ARGS)

deps: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

test-deps:
	scripts/install-test-deps.sh

bench: $(STAMP)
	$(BIN)/python bench/bench_classify.py
	$(BIN)/python bench/bench_roundtrip.py

# The packaged n-gram model blended with the rules: the public dev set + our own authored sets.
# Never add tests/data/complaints_blind.jsonl here: it measures generalisation.
classifier-model: $(STAMP)
	$(BIN)/complaints classifier train data/eval/complaints_dev.jsonl data/classifier/authored_*.jsonl \
		--out complaint_stream/domain/classification/default_model.npz

clean:
	rm -rf $(VENV) tools/asyncapi/node_modules .pytest_cache
