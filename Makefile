# wirescope — run `make help` for the targets.
SHELL := /bin/bash
# Node >= 22.19 from scripts/install-node.sh comes first: npm ci, the tests and the
# MCP Inspector run on it (Debian's nodejs is older than the Inspector's engines).
export PATH := $(CURDIR)/.cache/node/bin:$(PATH):/usr/local/go/bin
GO ?= go
BIN := bin/wirescope
FUZZTIME ?= 30s

.DEFAULT_GOAL := help

.PHONY: help
help: ## show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## build bin/wirescope (the lean build: dissect in-process, every other command runs bin/wirescope-full) and bin/wirescope-full
	$(GO) build -o bin/wirescope-full ./cmd/wirescope
	$(GO) build -tags lean -o $(BIN) ./cmd/wirescope

.PHONY: install
install: ## install wirescope (the full build, every command in one binary) into GOBIN, else GOPATH/bin
	$(GO) install ./cmd/wirescope
	@echo "installed $$(d=$$($(GO) env GOBIN); echo $${d:-$$($(GO) env GOPATH)/bin})/wirescope"

.PHONY: run
run: build ## serve over MCP at http://127.0.0.1:8898/mcp and print how to connect: as root, what this machine captures live and the demo capture; else the demo
	@if [ "$$(id -u)" -eq 0 ]; then \
		echo "root: capturing on every interface into .cache/run/data (not the hub's own port 8898), beside the demo capture; make run as a user serves the demo alone"; \
		./$(BIN) hub --iface any --filter 'not port 8898' --demo --data-dir .cache/run/data --token-file .cache/run/token; \
	else ./$(BIN) hub --demo --token-file .cache/run/token; fi

.PHONY: deps
deps: ## install what the tests use: Debian packages (tshark, tcpdump, nginx, dnsmasq, …), Node 22 from npm
	bash scripts/install-deps.sh
	bash scripts/install-node.sh

.PHONY: npm-deps
npm-deps: test/mcpclients/node_modules/.package-lock.json ## install the MCP clients the tests drive (TypeScript SDK, Inspector, Node 22)

test/mcpclients/node_modules/.package-lock.json: test/mcpclients/package-lock.json | deps
	npm ci --prefix test/mcpclients --no-audit --no-fund
	@touch $@

.PHONY: test
test: deps npm-deps ## install what the tests need, run every test (with the race detector), then the eval pack
	bash scripts/k8s-env.sh start
	set -a; . .cache/k8s/env; set +a; $(GO) test -race -timeout 30m ./...; rc=$$?; bash scripts/k8s-env.sh stop; exit $$rc
	$(MAKE) eval

.PHONY: chart
chart: ## the Helm chart's tests alone: lint, render, schema, RBAC, dry run and install on a real kube-apiserver
	bash scripts/k8s-env.sh start
	set -a; . .cache/k8s/env; set +a; $(GO) test -count=1 -v ./charts/; rc=$$?; bash scripts/k8s-env.sh stop; exit $$rc

.PHONY: eval
eval: build ## score the tools on the incident questions of evals/scenarios (fails below 1.0)
	./$(BIN) eval --min-score 1 evals/scenarios/*/scenario.json

.PHONY: scenarios
scenarios: deps ## re-record the eval scenarios from real servers (needs root)
	bash scripts/record-scenarios.sh

# staticcheck from the Go module proxy, at a version that knows Go 1.26.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: lint
lint: ## gofmt, go vet and staticcheck
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

.PHONY: generate
generate: ## rebuild the eBPF objects (bpf2go; needs clang, libbpf-dev)
	$(GO) generate ./bpf/...

.PHONY: bench
bench: deps ## Go benchmarks, then wirescope against tshark on 50,000-call HTTP/1.1, HTTP/2 and HTTPS (TLS 1.2 with key log) captures
	bash scripts/bench.sh

.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME (default 30s) each
	@set -e; for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; done

.PHONY: golden
golden: ## rewrite dissect/testdata/golden after an intended output change
	$(GO) test ./dissect -run 'TestCorpus|TestRecorded' -update

.PHONY: testdata
testdata: deps ## re-record dissect/*/testdata captures from real servers (needs root)
	bash scripts/record-testdata.sh
