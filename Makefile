# tagrelay developer commands. `make test` and `make demo` bootstrap everything they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(HOME)/.local/bin:$(PATH)
export UV_PYTHON_DOWNLOADS := never
# jsii (aws-cdk-lib) prints a banner on every start under node 20; it is only a warning.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help bootstrap lint typecheck test test-unit test-fast soak demo stack bench synth clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 14

bootstrap: ## install Debian, Python (.venv from uv.lock) and npm dependencies
	@scripts/bootstrap

lint: bootstrap ## ruff (lint + format check)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: bootstrap ## mypy --strict
	$(BIN)/mypy

PYTEST_WORKERS ?= 2
export PYTEST_WORKERS

test: bootstrap ## ruff, then mypy and the whole test suite (local stack, fakes, CDK) side by side, with branch coverage
	scripts/test

test-unit: bootstrap ## the tests that need no server and no CDK synth (fakes, pure rules, docs), on two workers: a minute
	TAGRELAY_NO_SERVERS=1 TAGRELAY_FAKE_SOAK_OPS=$(or $(FAKE_SOAK_OPS),100) $(BIN)/pytest -q -n $(PYTEST_WORKERS) -m "not stack and not cdk" -p no:cacheprovider

test-fast: bootstrap ## the tests without the slow ones (minutes), stopping at the first failure
	$(BIN)/pytest -x -q -m "not slow"

soak: bootstrap ## the fault-injection soak, long: SOAK_OPS operations on the local stack (default 250) and FAKE_SOAK_OPS on the fakes (default 1000), seed SOAK_SEED (default 10)
	TAGRELAY_SOAK_OPS=$(or $(SOAK_OPS),250) TAGRELAY_FAKE_SOAK_OPS=$(or $(FAKE_SOAK_OPS),1000) \
		TAGRELAY_SOAK_SEED=$(or $(SOAK_SEED),10) \
		$(BIN)/pytest tests/soak -q -p no:cacheprovider --timeout=3600

demo: bootstrap ## end-to-end demo on the local stack
	$(BIN)/python -m devstack.demo

stack: bootstrap ## the local stack, seeded and kept running to try commands on; prints the env vars; Ctrl-C stops it
	$(BIN)/python -m devstack up

bench: bootstrap ## benchmarks: requests per promotion, per-event time, cold start, memory
	$(BIN)/python -m bench.run

synth: bootstrap ## CDK synth offline to cdk.out/ (Lambda bundled, cdk-nag on), then cfn-lint; CONFIG=file.yaml picks the config
	CDK_DISABLE_CLI_TELEMETRY=true node_modules/.bin/cdk synth --quiet --no-notices $(if $(CONFIG),--context config=$(CONFIG))
	$(BIN)/python -m infra.template_lint

clean: ## remove the virtualenv and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis cdk.out build .stack
