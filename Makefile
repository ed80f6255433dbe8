# Every target sets up what it needs (venv, pinned CDK CLI) on a fresh machine.
# CI runs `make lint` and `make test` through .ci/run; nothing here needs AWS credentials or Docker.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CDK := node_modules/.bin/cdk
# checkov pins boto3/botocore older than the app's, so it gets a venv of its own, made by `make lint` only.
CHECKOV_VENV := .venv-checkov
# --skip-download and no update check: checkov then makes no network call (it would fetch policy
# metadata from its vendor's platform and ask the package index for a newer release).
CHECKOV := env CKV_SKIP_PACKAGE_UPDATE_CHECK=true CKV_PARSE_ERROR_FAIL=true $(CHECKOV_VENV)/bin/checkov \
	--framework cloudformation --skip-download --quiet --compact
# cfn-lint findings CDK itself produces: W3010 (subnet AZs from cdk.context.json, by design)
# and W3005 (DependsOn beside a GetAtt: constructs wait for their role's managed policy too).
CFN_LINT_IGNORE := W3010 W3005
TEMPLATES := cdk.out/assembly-*/*.template.json
LIFECYCLE_SCRIPTS := hyperpod_lifecycle/scripts

export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export AWS_EC2_METADATA_DISABLED := true
export CDK_DISABLE_CLI_TELEMETRY := true
# Synth imports the large aws_cdk modules in every run: they must be compiled once, not each time.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: help setup synth test lint bench deploy deploy-oidc deploy-release upload-source clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	@echo "==> creating $(VENV) and installing pinned Python packages (first run: about 3 minutes)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	@$(PY) -m pip install --disable-pip-version-check -q --no-deps -e .
	@$(PY) scripts/precompile.py
	@touch $@

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	@echo "==> creating $(CHECKOV_VENV) and installing the pinned checkov (first run: about a minute)"
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	@$(CHECKOV_VENV)/bin/python -m pip install --disable-pip-version-check -q -r requirements-checkov.txt
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

# Every checker runs, even after one fails, so one run shows all findings; any finding fails the target.
lint: synth $(CHECKOV_VENV)/.installed  ## synth, then ruff, mypy, cfn-lint, checkov, shellcheck, actionlint, as CI does
	@failed=""; \
	run() { name="$$1"; shift; echo "==> $$name"; "$$@" || failed="$$failed [$$name]"; }; \
	run "ruff check" $(PY) -m ruff check . ; \
	run "ruff format --check" $(PY) -m ruff format --check . ; \
	run "mypy" $(PY) -m mypy mlops_platform stacks ; \
	run "cfn-lint (cdk.out templates)" $(VENV)/bin/cfn-lint --ignore-checks $(CFN_LINT_IGNORE) -- $(TEMPLATES) ; \
	run "checkov (cdk.out templates)" $(CHECKOV) --file $(TEMPLATES) ; \
	run "shellcheck ($(LIFECYCLE_SCRIPTS))" $(VENV)/bin/shellcheck -x -P $(LIFECYCLE_SCRIPTS) -s bash $(LIFECYCLE_SCRIPTS)/*.sh ; \
	if [ -d .github/workflows ]; then \
	  run "actionlint (.github/workflows)" env PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/actionlint ; \
	else echo "==> actionlint: skipped, there is no .github/workflows/"; fi; \
	if [ -n "$$failed" ]; then echo "lint failed:$$failed" >&2; exit 1; fi; \
	echo "==> lint: no findings"

bench: setup  ## time synth (example config and 10 projects) and the test suite
	@$(PY) scripts/bench.py

.PHONY: bootstrap
bootstrap: setup  ## print (or with EXECUTE=1 run) the cdk bootstrap command per account, with this platform's execution policy
	@$(PY) scripts/bootstrap.py $(if $(EXECUTE),--execute)

.PHONY: preflight
# ARGS: e.g. --profile governance=<p> --profile dev=<p> ... (or one --profile); only read/describe/list calls.
preflight: setup  ## read-only checks per account before a deploy (credentials needed): bootstrap, quotas, Model Monitor, Identity Center, GitHub OIDC
	@$(PY) scripts/preflight.py $(ARGS)

# Deploy input is data, never code: make never expands PROJECT, STAGE or MODEL_PACKAGE_ARN (a `$` in a
# value would let make run $(shell ...) when it exports or expands it), no recipe line names them, and the
# script reads them from its environment and validates them before any step runs.
ifneq ($(findstring $$,$(value PROJECT)$(value STAGE)$(value MODEL_PACKAGE_ARN)$(value PROFILE)$(value STAGE_PROFILE)),)
$(error deploy-release: refused: PROJECT, STAGE, MODEL_PACKAGE_ARN and the profiles must not contain '$$')
endif

deploy: synth  ## ROLE=<governance|dev|staging|prod> [PROFILE=<p>]: deploy that role's platform stacks (never serving)
	@$(PY) scripts/deploy_platform.py

deploy-oidc: synth  ## ROLE=<role> PROFILE=<admin>: once per account, the GitHub OIDC provider and CI deploy roles
	@$(PY) scripts/deploy_platform.py --oidc

upload-source: setup  ## [PROFILE=<governance>]: upload HEAD's committed source for the release pipeline (CI does it)
	@$(PY) scripts/upload_source.py $(if $(PROFILE),--profile "$$PROFILE")

deploy-release:  ## PROJECT=<p> STAGE=<staging|prod> [PROFILE=<governance> STAGE_PROFILE=<stage admin>]: export, deploy, verify
	@$(PYTHON) scripts/deploy_release.py --from-env --check-only
	@$(MAKE) --no-print-directory setup
	@$(PY) scripts/deploy_release.py --from-env

clean:  ## remove build output (keeps the venv and node_modules)
	rm -rf cdk.out .cache .pytest_cache releases
