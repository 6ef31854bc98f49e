# The two commands of the README: `make run` and `make test`. Both set up
# everything they need on a fresh machine (virtualenv, packages, Kafka jars).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: run test test-unit test-integration deps test-deps bench classifier-model clean

run: $(STAMP)
	$(BIN)/complaints run

# test-deps first: it brings the C compiler the package's native scanner is built with.
test: test-deps $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit tests/agent $(PYTEST_ARGS)

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
