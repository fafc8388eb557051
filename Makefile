# imageflow-gen. On a fresh machine: `make render PROFILE=prod` or `make test`.
# Both create .venv and install the pinned dependencies (requirements.lock) first.

PYTHON ?= python3
PROFILE ?= prod
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Tests find the tools `make tools` installs here, whatever else is on PATH.
export IMAGEFLOW_TOOLS := $(CURDIR)/.tools/bin

.PHONY: help venv tools render validate simulate schema crds metrics test golden bench clean

help:
	@echo "make render PROFILE=prod   render a profile into out/"
	@echo "make validate PROFILE=prod validate a profile, writing nothing"
	@echo "make simulate PROFILE=prod deploy a profile to a simulated cluster and report"
	@echo "make test                  install everything the tests need and run them"
	@echo "make tools                 install the pinned validation tools into .tools/"
	@echo "make golden                rewrite the golden files (review the diff!)"
	@echo "make schema                regenerate schemas/ from the model"
	@echo "make crds                  regenerate schemas/crds/ from the pinned upstream CRDs (needs go)"
	@echo "make metrics               regenerate schemas/metrics/, the exporters' metric names (needs go)"
	@echo "make bench                 benchmark against helm, kustomize and kubeconform (bench/README.md)"

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --require-virtualenv -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

venv: $(STAMP)

tools: $(STAMP)
	bash tools/install.sh

render: $(STAMP)
	$(BIN)/imageflow-gen render --profile $(PROFILE)

# With the local control plane built (make tools), also a real API server's dry run.
validate: $(STAMP)
	$(BIN)/imageflow-gen validate --profile $(PROFILE) \
	  $(if $(wildcard .tools/bin/kube-apiserver),--api-server local)

simulate: $(STAMP) tools
	$(BIN)/imageflow-gen simulate --profile $(PROFILE)

schema: $(STAMP)
	$(BIN)/imageflow-gen schema

crds: $(STAMP)
	$(BIN)/python tools/crds.py

metrics: $(STAMP)
	$(BIN)/python tools/metrics.py

# On every core: the tests are independent (each writes to its own temporary folders).
test: $(STAMP) tools
	$(BIN)/python -m pytest -n auto

bench: $(STAMP) tools
	$(BIN)/python bench/bench.py --simulate

golden: $(STAMP)
	IMAGEFLOW_UPDATE_GOLDEN=1 $(BIN)/python -m pytest tests/test_golden.py

clean:
	rm -rf $(VENV) .tools .pytest_cache .hypothesis
