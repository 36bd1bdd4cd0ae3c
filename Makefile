# Altdata Explorer. `make` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

STACK_ENV := .stack/env
WITH_ENV := set -a; source $(STACK_ENV); set +a;
ALTDATA := target/release/altdata
DEMO_DIR ?= demo-data
DEMO_DAYS ?= 28
DEMO_CARDS ?= 20000
# A development secret for the demo only; production sets its own (k8s Secret).
DEMO_SECRET ?= demo-secret-change-me-0123456789

.PHONY: help stack stack-down cluster cluster-down cluster-test build migrate demo test test-rust lint fmt bench faults faults-short test-browser contract k8s-validate

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

stack: ## Start (or reuse) PostgreSQL+hll, Redis and nats-server >= 2.14; writes .stack/env
	@bash scripts/stack.sh up

stack-down: ## Stop only what `make stack` started
	@bash scripts/stack.sh down

cluster: ## Start (or restart) a local 3-node NATS cluster (JetStream R3) and a Redis Cluster (3 masters + 3 replicas); writes .stack/cluster.env
	@bash scripts/cluster.sh up

cluster-down: ## Stop only what `make cluster` started (data kept; `bash scripts/cluster.sh purge` removes it)
	@bash scripts/cluster.sh down

cluster-test: build ## The pipeline on the local cluster (3 R3 streams, 2 aggregators, 2 gateways, Redis Cluster) under a stream-leader, Redis-master and aggregator kill: failover times, conservation (~3-5 min)
	cargo build --release -p altdata-faults
	@running=$$(bash scripts/cluster.sh status | grep -c ' running (pid' || true); \
	bash scripts/cluster.sh up || exit $$?; \
	status=0; target/release/altdata-faults --cluster || status=$$?; \
	if [ "$$running" = 0 ]; then bash scripts/cluster.sh down 2>/dev/null || echo "cluster-test: cluster-down failed" >&2; fi; \
	exit $$status

build: ## Release build of the one binary
	cargo build --release --bin altdata

migrate: stack build ## Apply migrations and load the merchant catalogue
	@$(WITH_ENV) $(ALTDATA) migrate

demo: stack build web ## Everything: stack, build, migrate, sample data, pipeline, dashboard
	@$(WITH_ENV) $(ALTDATA) migrate
	@rm -rf $(DEMO_DIR)
	@$(WITH_ENV) $(ALTDATA) generate --days $(DEMO_DAYS) --cards $(DEMO_CARDS) --seed 7 --out $(DEMO_DIR)
	@$(WITH_ENV) export ALTDATA_CUSTOMER_KEY_SECRET=$${ALTDATA_CUSTOMER_KEY_SECRET:-$(DEMO_SECRET)}; \
		export ALTDATA_HTTP_ADDR=$${ALTDATA_HTTP_ADDR:-127.0.0.1:8080}; \
		$(ALTDATA) demo --landing $(DEMO_DIR)

test: stack lint test-rust test-browser contract k8s-validate ## The CI gate: stack, fmt, clippy, every test (short fault suite included) against the real services, browser, API contract, manifests
# The browser tests and the contract reuse the debug binary `cargo test --workspace` just
# built: building it again with one package's features would recompile half the dependency tree.
test: export ALTDATA_BIN = $(CURDIR)/target/debug/altdata

lint: ## cargo fmt --check and clippy -D warnings
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

test-rust: stack ## cargo test --workspace against the real services (incl. the short fault suite, faults/tests)
	@$(WITH_ENV) cargo test --workspace

bench: stack build ## Benchmarks (BENCH_SCALE=small: < 5 min; default: < 20 min) -> bench/results/latest.{md,json}; BENCH_CLUSTER=1: only the local cluster beside single-node -> cluster-latest.{md,json}
	@.stack/venv/bin/python -c 'import duckdb' 2>/dev/null || .stack/venv/bin/pip install -q duckdb
	cargo build --release -p altdata-bench
	@$(WITH_ENV) target/release/altdata-bench

fmt: ## Format the code
	cargo fmt --all

faults: stack build ## Fault suite (~5 min): SIGKILLs, server restarts, poison, re-deliveries on its own servers; FAULTS_SEED, FAULTS_DURATION
	cargo build --release -p altdata-faults
	target/release/altdata-faults

faults-short: stack build ## Short fault suite (~60-90 s): one kill of each role, one restart of each server
	cargo build --release -p altdata-faults
	target/release/altdata-faults --short

k8s-validate: ## Render both k8s overlays and validate them offline (kubernetes-validate --strict, CRD schemas, checkov)
	@bash scripts/k8s-validate.sh

web: ## Build the dashboard into web/dist (npm registry only)
	cd web && npm ci --no-audit --no-fund && npm run build

test-browser: stack ## Browser tests of the dashboard and review tool (headless Chromium)
	@bash scripts/test-browser.sh

contract: stack ## API contract (~2 min): Schemathesis (every check, stateful) and a generated Python client against a gateway over generated data
	@bash scripts/contract.sh
