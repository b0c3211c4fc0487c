# scribestore — everything a newcomer or CI needs. Each target builds the venv first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-quick lint bench clean docs

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) -m scribestore.demo demo-store

test: $(STAMP)
	$(PY) -m pytest

test-quick: $(STAMP)
	$(PY) -m pytest -m 'not slow'

lint: $(STAMP)
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m ruff format --check src tests benchmarks
	$(PY) -m mypy

docs: $(STAMP)
	$(PY) -m mkdocs build --strict

# The peers the benchmark compares with: DVC in an environment of its own (its
# pins would move the project's), restic when Debian's package is on PATH.
PEERS := .venv-peers/.installed
$(PEERS):
	$(PYTHON) -m venv .venv-peers
	.venv-peers/bin/python -m pip install --quiet 'dvc>=3.50'
	touch $(PEERS)

bench: $(STAMP) $(PEERS)
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) .venv-peers demo-store .pytest_cache .mypy_cache .ruff_cache
