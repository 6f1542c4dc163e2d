# Two entry points: `make run` (the whole platform, embedded) and `make test` (what CI runs).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: run run-k8s test lint schema bench clean frontend chromium image

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

# The SPA (frontend/dist, served by the API at /): GraphQL types generated from schema.graphql,
# type-checked, then bundled. `npm ci` runs again only when package-lock.json changes.
FRONTEND_DEPS := frontend/node_modules/.package-lock.json

$(FRONTEND_DEPS): frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund
	touch $@

frontend: $(FRONTEND_DEPS)
	cd frontend && npm run build

# The reference JavaScript graphql-ws client, for the subscription interop test.
JS_TEST_DEPS := tests/js/node_modules/.package-lock.json

$(JS_TEST_DEPS): tests/js/package-lock.json
	cd tests/js && npm ci --no-audit --no-fund
	touch $@

# The browser tests drive Debian's Chromium (never a Playwright download), with a colour emoji
# font so job logs and screenshots show emoji as users see them (not empty boxes).
BROWSER_PACKAGES := chromium fonts-noto-color-emoji

chromium:
	@dpkg -s $(BROWSER_PACKAGES) >/dev/null 2>&1 || (apt-get update && apt-get install -y $(BROWSER_PACKAGES))

run: $(STAMP) frontend
	$(BIN)/mlpatron serve

# Kubernetes mode against the simulated cluster (tests/k8s_fake/cluster.py, docs/deploying.md):
# Jobs, pods, events, logs and the watcher as in production; experiments run as local processes.
SIM := $(or $(MLPATRON_DATA_DIR),.mlpatron)/sim-cluster
run-k8s: $(STAMP) frontend
	rm -f $(SIM)/kubeconfig && mkdir -p $(SIM)
	$(BIN)/python -m tests.k8s_fake.cluster --kubeconfig $(SIM)/kubeconfig --work-dir $(SIM)/pods \
	  $(if $(SCENARIO),--scenario $(SCENARIO)) 2>$(SIM)/cluster.log & cluster=$$!; \
	  trap "kill $$cluster" EXIT INT TERM; \
	  while [ ! -s $(SIM)/kubeconfig ]; do kill -0 $$cluster || exit 1; sleep 0.2; done; \
	  EXECUTOR=kubernetes KUBECONFIG=$(SIM)/kubeconfig K8S_ALLOW_LOCAL_REPOS=1 $(BIN)/mlpatron serve

# ruff (with the complexity limit), the import contracts and mypy's levels in pyproject.toml.
lint: $(STAMP)
	$(BIN)/ruff check app tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy

schema: $(STAMP)
	$(BIN)/mlpatron export-schema --output schema.graphql

# The slowest tests are listed at the end: the suite is meant to stay within ~15 minutes on 2 cores.
PYTEST_ARGS ?= --durations=15

test: $(STAMP) lint frontend chromium $(JS_TEST_DEPS)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# The production image (buildah, chroot isolation; docs/deploying.md). IMAGE=registry/name:tag to name it.
IMAGE ?= localhost/mlpatron:latest
image: frontend
	scripts/build-image.sh $(IMAGE)

clean:
	rm -rf $(VENV) .mlpatron
