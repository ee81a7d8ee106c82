# render-export: `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
BUF := node_modules/.bin/buf
PYTEST_ARGS ?=

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.installed: requirements.lock pyproject.toml
	@bash scripts/setup.sh python
	@touch $@

node_modules/.installed: package-lock.json
	@bash scripts/setup.sh node-tools
	@touch $@

remotion/node_modules/.installed: remotion/package-lock.json
	@bash scripts/setup.sh remotion
	@touch $@

tests/polyglot/node_modules/.installed: tests/polyglot/package-lock.json
	@bash scripts/setup.sh polyglot
	@touch $@

.PHONY: setup
setup: $(VENV)/.installed node_modules/.installed remotion/node_modules/.installed tests/polyglot/node_modules/.installed ## Install everything missing (Python venv, Node deps, Chromium, Redis, PostgreSQL)
	@bash scripts/setup.sh system

.PHONY: proto
proto: $(VENV)/.installed node_modules/.installed ## Lint the contract and regenerate the Python stubs
	cd protos && ../$(BUF) lint
	$(PY) scripts/gen_protos.py

.PHONY: proto-check
proto-check: proto ## Fail if buf lint fails, the stubs are stale, or the contract broke main
	@git diff --exit-code --stat -- gen/ || (echo "protos are stale: run 'make proto' and commit gen/" && exit 1)
	@bash scripts/buf-breaking.sh

.PHONY: schema-check
schema-check: remotion/node_modules/.installed ## Fail if the scene catalogue is stale, the compositions do not type-check or the host protocol schema does not compile
	cd remotion && npm run --silent typecheck && npm run --silent schema:check && node --test test/protocol.test.mjs >/dev/null

.PHONY: lint
lint: $(VENV)/.installed node_modules/.installed ## ruff, buf lint, stale stubs
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(MAKE) --no-print-directory proto-check

.PHONY: typecheck
typecheck: $(VENV)/.installed ## mypy (strict) on the services, shared package, tests and benchmarks
	$(VENV)/bin/mypy render_common services tests bench

.PHONY: test
test: setup ## Install what is missing, start what is needed, run all tests
	@source scripts/test-env.sh && $(PY) -m pytest $(PYTEST_ARGS)

.PHONY: demo
demo: setup ## Start the stack, render the sample scenes with a progress bar, print the MP4's path
	@$(PY) -m services.local_stack demo

.PHONY: migrate
migrate: $(VENV)/.installed ## Bring DATABASE_URL's schema to head, once, under a lock (make up/demo run it)
	@$(PY) -m render_common.db migrate

.PHONY: up
up: setup ## Start Redis (unless REDIS_URL), render_api, progress and a worker in the background
	@$(PY) -m services.local_stack up

.PHONY: down
down: ## Stop everything `make up` started
	@$(PY) -m services.local_stack down

.PHONY: bench
bench: setup ## Run the benchmarks and print their figures
	@source scripts/test-env.sh && $(PY) -m bench

.PHONY: clean
clean: ## Remove local data, caches and the venv
	rm -rf .data .venv node_modules remotion/node_modules tests/polyglot/node_modules remotion/.bundle-cache .pytest_cache .mypy_cache .ruff_cache
