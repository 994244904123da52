# llm-aggregator — `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Every package of the tree, installed editable: the libraries, the tooling and each services/<name>; the CLI
# last and on its own, so that its `llmagg-agent` script (once the agent service's, whose reinstall removes
# it) survives an upgraded venv.
PACKAGES := libs gateway simulator tools/devstack $(patsubst %/pyproject.toml,%,$(wildcard services/*/pyproject.toml)) tools/cli
STAMP := $(VENV)/.installed-$(shell cat requirements.txt constraints.txt $(PACKAGES:%=%/pyproject.toml) | sha1sum | cut -c1-12)
# The service table (libs/llmagg/suite.py), read once the venv exists.
SERVICES = $(shell $(PY) -m llmagg.suite)

.PHONY: help venv lock protos check lint test test-unit test-integration test-e2e test-chaos run demo bench bench-ab bench-routing profile-router chaos-load clean k8s-validate image test-image \
	vscode vscode-build test-vscode

help: ## Show this help
	@grep -E '^[a-zA-Z0-9_%-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "} {printf "  \033[36m%-17s\033[0m %s\n", $$1, $$2}'

$(STAMP): requirements.txt constraints.txt $(PACKAGES:%=%/pyproject.toml)
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "llm-aggregator needs Python 3.11 or newer (PYTHON=python3.11 make ...)")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -c constraints.txt
	@# xds-protos carries its own copies of google/api, google/rpc and opentelemetry/proto modules: the
	@# packages that own those names go in again after it, so that theirs are the ones imported.
	$(PY) -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps -c constraints.txt \
		googleapis-common-protos opentelemetry-proto
	$(PY) -m pip install --quiet --disable-pip-version-check --no-build-isolation --no-deps --config-settings editable_mode=compat $(patsubst %,-e ./%,$(filter-out tools/cli,$(PACKAGES)))
	$(PY) -m pip install --quiet --disable-pip-version-check --no-build-isolation --no-deps --config-settings editable_mode=compat --force-reinstall -e ./tools/cli
	$(PY) -m pip check --disable-pip-version-check > /dev/null
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP) ## Create .venv with the pinned dependencies (Envoy included) and every package of the tree
	@:

lock: ## Re-pin every transitive dependency in constraints.txt from a fresh venv
	rm -rf $(VENV).lock && $(PYTHON) -m venv $(VENV).lock
	$(VENV).lock/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
	{ sed -n '1,2p' constraints.txt; $(VENV).lock/bin/pip freeze --all --exclude-editable | grep -v '^pip=='; } > constraints.txt.new
	mv constraints.txt.new constraints.txt && rm -rf $(VENV).lock

protos: $(STAMP) ## Regenerate Python stubs, the descriptor set and gateway/envoy.yaml from protos/ and the service table
	$(PY) tools/gen_protos.py
	$(PY) -m llmagg_gateway
	$(PY) deploy/k8s/generate.py

lint: $(STAMP) ## Ruff lint and format check
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

check: lint ## Lint, fail on stale generated code, validate the Envoy config
	$(PY) tools/gen_protos.py --check
	$(PY) -m llmagg_gateway --check
	$(PY) deploy/k8s/generate.py --check
	$(PY) -m pytest -q -p no:cacheprovider tests/gateway  # Envoy validates a rendering (with token files)

# The Kubernetes versions the manifests are validated against: the oldest we support (native gRPC probes are
# GA from 1.27) and the newest kubernetes-validate bundles.
K8S_VERSIONS := 1.27.0 1.37.0
K8S_OVERLAYS := $(notdir $(wildcard deploy/k8s/overlays/*))

k8s-validate: $(STAMP) ## Render every Kubernetes overlay with the pinned kubectl, validate strictly, tie them to the service table
	$(PY) deploy/k8s/generate.py --check
	@mkdir -p .run/k8s
	set -e; for overlay in $(K8S_OVERLAYS); do \
		$(VENV)/bin/kubectl kustomize deploy/k8s/overlays/$$overlay > .run/k8s/$$overlay.yaml; \
		for version in $(K8S_VERSIONS); do \
			$(VENV)/bin/kubernetes-validate --strict --quiet -k $$version .run/k8s/$$overlay.yaml; \
		done; \
	done
	$(PY) -m pytest -q -p no:cacheprovider tests/k8s

test: check k8s-validate test-vscode ## Everything CI runs but the image: check, the manifests, the VS Code extension, then unit, integration and end-to-end tests
	$(PY) -m pytest -m "not image"

test-unit: $(STAMP) ## Unit tests of each library, tool and service of the table
	$(PY) -m pytest libs tools simulator $(SERVICES:%=services/%/tests)

test-integration: $(STAMP) ## Every service process of the table against the provider simulator, over gRPC
	$(PY) -m pytest tests/integration

test-e2e: $(STAMP) vscode-build ## The official openai SDK through real Envoy to the services and the simulator
	$(PY) -m pytest tests/gateway tests/e2e

test-chaos: $(STAMP) ## The chaos suite alone: hostile input, hung providers, make run's children, no leaked key
	$(PY) -m pytest tests/chaos

# The suite's one image (deploy/image/Containerfile), built by podman. IMAGE_BASE: the local Debian base that
# deploy/image/make-base.sh makes (no registry needed), or e.g. docker.io/library/python:3.12-slim with
# IMAGE_PULL=missing where a registry is reachable. The tag is the one deploy/k8s's manifests run.
IMAGE := llm-aggregator:$(shell sed -n 's/^VERSION = "\(.*\)".*/\1/p' deploy/k8s/generate.py)
IMAGE_BASE ?= localhost/llmagg-base:bookworm
IMAGE_PULL ?= never
# A CA bundle for pip inside the build (a build secret, not kept in the image): the host's, which trusts
# what the host's pip trusts.
IMAGE_PIP_CERT ?= $(or $(PIP_CERT),/etc/ssl/certs/ca-certificates.crt)

image: ## Build the suite's image (llm-aggregator:<version>) with podman, from a local Debian base unless IMAGE_BASE says otherwise
	deploy/image/podman-setup.sh
	@if [ "$(IMAGE_BASE)" = localhost/llmagg-base:bookworm ]; then deploy/image/make-base.sh $(IMAGE_BASE); fi
	podman build --pull=$(IMAGE_PULL) --network=host --build-arg BASE=$(IMAGE_BASE) \
		--secret id=pip-cert,src=$(IMAGE_PIP_CERT) -f deploy/image/Containerfile -t $(IMAGE) .

test-image: $(STAMP) image ## Every service and the gateway from the image (one container each), serving, one chat through them
	$(PY) -m pytest -q -p no:cacheprovider -m image tests/image

# The VS Code extension (editors/vscode): node and npm (from Debian when missing), `npm ci` once per lockfile,
# tsc when a source changed.
VSCODE := editors/vscode
VSCODE_DEPS := $(VSCODE)/node_modules/.package-lock.json
VSCODE_BUILT := $(VSCODE)/out/.built

$(VSCODE_DEPS): $(VSCODE)/package-lock.json
	@$(VSCODE)/scripts/ensure-node.sh
	cd $(VSCODE) && npm ci --ignore-scripts --no-audit --no-fund
	@touch $@

$(VSCODE_BUILT): $(VSCODE_DEPS) $(VSCODE)/tsconfig.json $(shell find $(VSCODE)/src -name '*.ts')
	cd $(VSCODE) && rm -rf out && npm run --silent compile
	@touch $@

vscode-build: $(VSCODE_BUILT) ## Compile the VS Code extension (installs its node dependencies on first use)
	@:

vscode: vscode-build ## Lint the VS Code extension and package it as editors/vscode/openhands-ai-assistant.vsix
	cd $(VSCODE) && npm run --silent lint && npm run --silent package

test-vscode: vscode ## The VS Code extension's unit tests (on a stand-in vscode module), after building its .vsix
	cd $(VSCODE) && npm test

serve-%: $(STAMP) ## Run one service of the table in the foreground (e.g. make serve-router)
	$(PY) -m llmagg_$*

run: $(STAMP) ## Start the stack on loopback (gateway :8000); Ctrl-C stops it
	$(PY) -m llmagg_devstack run

demo: $(STAMP) ## The stack with three simulated providers (fast, always-429, failing): no key needed
	$(PY) -m llmagg_devstack demo

bench: $(STAMP) ## Added latency and throughput of the gateway and services versus calling the upstream directly
	$(PY) -m bench

bench-ab: $(STAMP) ## Two revisions side by side, requests alternating: A=<rev> (default HEAD) B=<rev> (default ., this tree) [AB_ARGS="--stream"]
	$(PY) -m bench.side_by_side $(or $(A),HEAD) $(or $(B),.) $(AB_ARGS)

bench-routing: $(STAMP) ## Does `auto` learn the best model per task? Meta-controller vs static auto vs an oracle (table + .run/bench-routing.png)
	$(PY) -m bench.routing

profile-router: $(STAMP) ## Where the router's CPU goes under load (py-spy): top frames by own and total time, CPU per request
	$(PY) -m bench.profile

chaos-load: $(STAMP) ## 60 s of mixed load under faults (hang, 429, router restart, upstream kill), every answer counted
	$(PY) -m bench.chaos_load

clean: ## Remove the virtualenv, run state and caches
	rm -rf $(VENV) .run .pytest_cache .ruff_cache .hypothesis
	git worktree prune  # the revisions `make bench-ab` checked out under .run
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
	find . -name '*.egg-info' -type d -prune -exec rm -rf {} +
