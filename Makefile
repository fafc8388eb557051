# imageflow-gen. On a fresh machine: `make render PROFILE=prod` or `make test`.
# Both create .venv and install the pinned dependencies (requirements.lock) first.

PYTHON ?= python3
PROFILE ?= prod
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help venv render validate schema test golden clean

help:
	@echo "make render PROFILE=prod   render a profile into out/"
	@echo "make validate PROFILE=prod validate a profile, writing nothing"
	@echo "make test                  install everything the tests need and run them"
	@echo "make golden                rewrite the golden files (review the diff!)"
	@echo "make schema                regenerate schemas/ from the model"

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --require-virtualenv -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

venv: $(STAMP)

render: $(STAMP)
	$(BIN)/imageflow-gen render --profile $(PROFILE)

validate: $(STAMP)
	$(BIN)/imageflow-gen validate --profile $(PROFILE)

schema: $(STAMP)
	$(BIN)/imageflow-gen schema

test: $(STAMP)
	$(BIN)/python -m pytest

golden: $(STAMP)
	IMAGEFLOW_UPDATE_GOLDEN=1 $(BIN)/python -m pytest tests/test_golden.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
