# AutonomOS — see README.md. `make run` starts the whole system with demo
# data; `make test` runs every test against real NATS, Postgres and DuckDB.
SHELL := /bin/bash
export GOFLAGS := -buildvcs=false
export CGO_ENABLED := 1
GO ?= go
BIN := bin/autonomos
UI_SRC := $(shell find ui/src ui/index.html ui/public ui/package.json ui/package-lock.json ui/vite.config.ts ui/tsconfig*.json -type f 2>/dev/null)
GO_SRC := $(shell find . -name '*.go' -not -path './ui/node_modules/*' 2>/dev/null) go.mod go.sum $(shell find config/mappings -type f)
AUTONOMOS_TEST_POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable
export AUTONOMOS_TEST_POSTGRES_URL

.PHONY: build run demo test test-go test-ui test-e2e test-runbook soak ui bench bench-drift lint clean

build: $(BIN)

ui/node_modules/.stamp: ui/package.json ui/package-lock.json
	cd ui && npm ci --no-audit --no-fund
	touch $@

ui/dist/index.html: ui/node_modules/.stamp $(UI_SRC)
	cd ui && npm run build

ui: ui/dist/index.html

$(BIN): ui/dist/index.html $(GO_SRC)
	@mkdir -p bin
	$(GO) build -o $(BIN) ./cmd/autonomos

run: $(BIN)
	./$(BIN) demo

test: test-go test-ui test-e2e test-runbook

# Go packages, without the ones npm vendors under ui/node_modules.
GO_PKGS = $$($(GO) list ./... | grep -v /node_modules/)
# The CDC connector's replication test snapshots 10,000 rows under -short
# (make test) and 100,000 in make soak.
CDC_PKGS = ./connectors/pgsource/...

test-go: ui/dist/index.html
	$(GO) vet $(GO_PKGS)
	$(GO) test -race -count=1 -timeout 20m $$($(GO) list ./... | grep -v /node_modules/ | grep -v /connectors/pgsource)
	$(GO) test -race -count=1 -timeout 10m -short $(CDC_PKGS)

# The long runs: the CDC replication test at 100,000 rows.
soak:
	$(GO) test -race -count=1 -timeout 30m -run 'TestReplication' $(CDC_PKGS)

test-ui: ui/node_modules/.stamp
	cd ui && npm run lint && npm test

test-e2e: $(BIN)
	./scripts/e2e.sh

# Every command of docs/OPERATIONS.md against a running system (needs the
# nats CLI: go install github.com/nats-io/natscli/nats@v0.5.0).
test-runbook: $(BIN)
	PATH="$$PATH:$$($(GO) env GOPATH)/bin" AUTONOMOS_BIN=$(BIN) ./scripts/runbook.sh

bench: $(BIN)
	./$(BIN) bench --records $${BENCH_RECORDS:-200000}
	# Postgres CDC: change-to-visible latency at 1,000 changes/s, and fetch throughput.
	$(GO) test -run '^$$' -bench 'ChangeToVisible|Fetch' -benchtime=1x ./connectors/pgsource

bench-drift: $(BIN)
	./$(BIN) bench drift

clean:
	rm -rf bin ui/dist/assets ui/dist/index.html
