# ddblake — make demo | make test | make lint | make bench-quick
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
INFRA_STAMP := $(VENV)/.installed-infra
SYNTH_CONFIGS ?= single-account cross-account
PYTEST_WORKERS ?= 2
export PYTHON

.PHONY: install prereqs demo test unit lint typecheck bench-quick clean synth verify

prereqs:
	@tools/check-prereqs.sh

$(STAMP): pyproject.toml constraints.txt
	@tools/check-prereqs.sh python
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $@

$(NODE_STAMP): package.json package-lock.json
	@tools/check-prereqs.sh node
	npm ci --no-audit --no-fund --loglevel=error
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

demo: install
	@tools/check-prereqs.sh java
	$(BIN)/ddblake demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check src tests bench || true

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

test: install $(INFRA_STAMP)
	@tools/check-prereqs.sh java
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --durations=10 tests

# The fault suite at full strength (docs/reliability.md); ends with one 'verify: ...' line.
verify: install
	@tools/check-prereqs.sh java
	$(BIN)/python tools/verify.py

bench-quick: install
	for b in bench/[!_]*.py; do $(BIN)/python $$b --quick || exit 1; done

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache .hypothesis cdk.out
