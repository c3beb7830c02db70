# segwise: the two commands of the quick start, plus benchmarks.
#   make demo   creates .venv if needed, installs segwise, runs `segwise demo`
#   make test   creates .venv if needed, installs segwise[dev], checks the layers (lint-imports) and
#               copied code (pylint's similarity checker), then runs the whole test suite
#   make bench  runs the benchmarks (see bench/README.md); BENCH_SIZE=quick|1m|10m

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BENCH_SIZE ?= quick

.PHONY: demo test check bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the project definition changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/segwise demo

# The layers of DESIGN.md (contracts in pyproject.toml), and no block of 8 or more lines
# copied between modules of src/ (docs/architecture.md says where shared code goes). Signatures
# count: the loading options once copied into 8 commands were signatures.
check: $(VENV)/.installed-dev
	$(BIN)/lint-imports
	$(BIN)/pylint --disable=all --enable=duplicate-code --min-similarity-lines=8 --ignore-signatures=no src/segwise

test: check
	$(BIN)/python -m pytest -n 2

bench: $(VENV)/.installed-dev
	$(BIN)/python -m bench --size $(BENCH_SIZE)

clean:
	rm -rf $(VENV) segwise-demo segwise-out .pytest_cache
