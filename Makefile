# Carepath: the two commands a new machine needs are `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test unit integration lint typecheck bench clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

## Run Carepath on the embedded defaults (SQLite, embedded broker, no EHR) on 127.0.0.1:8000.
run: install
	$(BIN)/carepath run

## Check lint, format and strict types, install everything, start PostgreSQL and Redis, install Chromium and nginx if needed, and run the whole test suite.
test: install lint
	bash tests/ehr/install.sh
	bash scripts/ensure-services.sh
	bash scripts/ensure-browser.sh
	bash scripts/ensure-nginx.sh
	$(BIN)/python -m pytest

unit: install
	$(BIN)/python -m pytest tests/unit

## Lint, format and strict types (pathways, service, workers): part of `make test`, so CI keeps them.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## Measure speed and scale on this machine (about 8 minutes; not part of `make test`).
bench: install
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[bench]'
	bash tests/ehr/install.sh
	bash scripts/ensure-services.sh
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) var test-artifacts
