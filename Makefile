# Developer shortcuts (see README, "Developing"). Everything runs in $(VENV), made by
# scripts/bootstrap.sh; `make install` first.
VENV ?= .venv
PY := $(VENV)/bin/python
PATHS := src tests bench scripts
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false LANGALIGN_NO_PROGRESS=1

.PHONY: install lint fix types test test-fast test-integration ci

install:  # $(VENV) with CPU torch, the project (editable) and its test + dev extras
	LANGALIGN_VENV=$(VENV) bash scripts/bootstrap.sh setup

lint:
	$(PY) -m ruff check $(PATHS)

fix:  # ruff's safe autofixes
	$(PY) -m ruff check --fix $(PATHS)

types:
	$(PY) -m mypy src/langalign

test-fast:  # unit, property and fuzz tests
	$(PY) -m pytest -m "not integration"

test-integration:  # the bundled models and ../shared/data
	$(PY) -m pytest -m integration

test:
	$(PY) -m pytest

ci:  # what CI runs: a fresh .venv-ci, lint, types, all tests
	bash .ci/run
