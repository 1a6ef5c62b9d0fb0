# relay — build, test, demo and benchmark targets. `make` alone lists them.

# Use the official Go tarball's location when go is not on PATH.
ifeq ($(shell command -v go 2>/dev/null),)
export PATH := $(PATH):/usr/local/go/bin
endif

GO ?= go

.DEFAULT_GOAL := help
.PHONY: help deps build test cover demo bench chaos scale fuzz

help: ## list the targets
	@echo "relay make targets:"
	@awk 'BEGIN {FS = ":.*## "} /^[a-z]+:.*## / {printf "  %-6s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

deps: ## install missing system packages (libzmq3-dev, pkg-config, redis, chromium, prometheus) and check go
	@echo "==> deps: checking/installing build and test dependencies (scripts/deps.sh)"
	@bash scripts/deps.sh

build: ## compile every package (go build ./...)
	@echo "==> build: go build ./..."
	$(GO) build ./...

test: deps ## go vet, then all tests with the race detector (prints each package's coverage)
	@echo "==> test: go vet ./..."
	$(GO) vet ./...
	@echo "==> test: go test -race -cover -count=1 -timeout 30m ./..."
	$(GO) test -race -cover -count=1 -timeout 30m ./...

cover: deps ## coverage of every package by all tests (cover.out; go tool cover -html=cover.out)
	@echo "==> cover: go test -count=1 -coverpkg=./... -coverprofile=cover.out ./..."
	$(GO) test -count=1 -timeout 30m -coverpkg=./... -coverprofile=cover.out ./...
	@echo "==> cover: per package, by all tests (statements covered / statements)"
	@awk 'NR > 1 { n[$$1] = $$2; if ($$3 > 0) c[$$1] = 1 } \
		END { for (b in n) { p = b; sub("/[^/]*$$", "", p); all[p] += n[b]; if (b in c) cov[p] += n[b] } \
		      for (p in all) printf "  %-50s %5.1f%%\n", p, 100 * cov[p] / all[p] }' cover.out | sort
	@$(GO) tool cover -func=cover.out | tail -1

demo: deps ## run the demo cluster (go run ./cmd/node demo)
	@echo "==> demo: go run ./cmd/node demo"
	$(GO) run ./cmd/node demo
	@echo "==> demo: to watch a cluster live in your browser (node dashboard), run it across processes on Redis:"
	@echo "      go build -o node ./cmd/node && redis-server --port 6379 --daemonize yes"
	@echo "      ./node serve --matchmaker redis://127.0.0.1:6379 --host alpha --topic compute --http 127.0.0.1:9101 &"
	@echo "      ./node serve --matchmaker redis://127.0.0.1:6379 --host beta  --topic compute --http 127.0.0.1:9102 &"
	@echo "      ./node dashboard --matchmaker redis://127.0.0.1:6379 --http 127.0.0.1:8080 &"
	@echo "    then open http://127.0.0.1:8080/ and send calls: ./node call --matchmaker redis://127.0.0.1:6379 --topic compute add 5"

bench: deps ## measure issue 8's rows against raw libzmq and the other baselines, with verdicts (BENCHFLAGS="--grpc-p50 55us")
	@echo "==> bench: go run ./cmd/node bench $(BENCHFLAGS) (node bench -h lists the rows and targets)"
	$(GO) run ./cmd/node bench $(BENCHFLAGS)

chaos: deps ## kill a cluster's parts at random under load for 60 s; what was lost (CHAOS="--mode router --seed 42")
	@echo "==> chaos: go run ./cmd/node chaos --check $(CHAOS)"
	$(GO) run ./cmd/node chaos --check $(CHAOS)

scale: deps ## 1,000 nodes over 4 processes with Redis, 30 s of mixed load; the cost table (SCALE="--mode proxied --nodes 500")
	@echo "==> scale: go run ./cmd/node scale $(SCALE) (node scale -h lists the flags; docs/SCALE.md the figures)"
	$(GO) run ./cmd/node scale $(SCALE)

FUZZTIME ?= 15s

fuzz: ## fuzz each decoder of network bytes (headers, batches of records, routing header, bodies, errors, notifications), 15 s each
	@for t in envelope:FuzzDecode envelope:FuzzRecords envelope:FuzzParseRouted envelope:FuzzDecodeBody envelope:FuzzDecodeError .:FuzzNotifyBody; do \
		pkg=./$${t%%:*}; fn=$${t#*:}; \
		echo "==> fuzz: go test -run=^\$$ -fuzz=^$$fn\$$ -fuzztime=$(FUZZTIME) $$pkg"; \
		$(GO) test -run='^$$' -fuzz="^$$fn\$$" -fuzztime=$(FUZZTIME) $$pkg || exit 1; \
	done
