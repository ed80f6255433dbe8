# Every target sets up what it needs (venv, pinned CDK CLI) on a fresh machine.
# CI runs `make test` through .ci/run; nothing here needs AWS credentials or Docker.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CDK := node_modules/.bin/cdk

export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export AWS_EC2_METADATA_DISABLED := true
export CDK_DISABLE_CLI_TELEMETRY := true
# Synth imports the large aws_cdk modules in every run: they must be compiled once, not each time.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: help setup synth test lint bench deploy-release clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	@echo "==> creating $(VENV) and installing pinned Python packages (first run: about 3 minutes)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	@$(PY) -m pip install --disable-pip-version-check -q --no-deps -e .
	@$(PY) scripts/precompile.py
	@touch $@

node_modules/.installed: package.json package-lock.json
	@echo "==> installing the pinned CDK CLI"
	@npm ci --no-audit --no-fund --loglevel=error
	@touch $@

setup: $(VENV)/.installed node_modules/.installed  ## create the venv and install the pinned CDK CLI

synth: setup  ## validate config/ and synthesize every account role into cdk.out/
	@$(PY) -m mlops_platform.config config
	@echo "==> cdk synth (cdk-nag packs run and fail the synth on any finding)"
	@mkdir -p .cache
	@$(CDK) synth --quiet --no-notices > .cache/cdk-synth.log 2>&1 || { cat .cache/cdk-synth.log; exit 1; }
	@$(PY) -m mlops_platform.summary cdk.out

test: setup  ## run every test
	@$(PY) -m pytest -q -n 2 --dist loadfile

lint: setup  ## ruff and mypy, as CI would
	@$(PY) -m ruff check .
	@$(PY) -m ruff format --check .
	@$(PY) -m mypy mlops_platform stacks

bench: setup  ## time synth (example config and 10 projects) and the test suite
	@$(PY) scripts/bench.py

deploy-release: setup  ## PROJECT=<p> STAGE=<staging|prod>: export its release, cdk deploy its serving stack, verify
	@test -n "$(PROJECT)" -a -n "$(STAGE)" || { echo "usage: make deploy-release PROJECT=<project> STAGE=<staging|prod>" >&2; exit 2; }
	@$(PY) scripts/deploy_release.py "$(PROJECT)" "$(STAGE)" $(if $(MODEL_PACKAGE_ARN),--expect-arn "$(MODEL_PACKAGE_ARN)")

clean:  ## remove build output (keeps the venv and node_modules)
	rm -rf cdk.out .cache .pytest_cache releases
