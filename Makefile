# vmstorbench: `make demo` runs the main job, `make test` the whole test suite and then the demo
# on an empty cache (what CI runs, .ci/run). Both install what they need first
# (scripts/deps.sh; the guest kernel is fetched by vmstorbench itself when needed).
export PATH := /usr/local/go/bin:$(PATH)
GO      ?= go
BIN     := bin/vmstorbench
DEMO    ?= demo-out

.PHONY: all deps build test test-go test-short fuzz demo demo-fresh bench compare clean

all: build

deps:
	@scripts/deps.sh

# Static (CGO_ENABLED=0): the same binary runs inside the VM mode's guest as its agent.
build:
	CGO_ENABLED=0 $(GO) build -o $(BIN) ./cmd/vmstorbench

# The whole suite: the Go tests, then the main job as on a fresh machine (a demo that worked
# only after the tests had filled the cache went unnoticed).
test: deps build
	$(MAKE) --no-print-directory test-go
	@scripts/demo-fresh.sh $(BIN)

# The Go tests: vet, unit and integration tests (real servers started by the tests), fuzz
# seed corpora, the race detector on the engine and backends, and the tests of the patched
# go-smb2 copy (its own module, so ./... does not reach it).
test-go:
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...
	$(GO) test -count=1 -race -timeout 10m ./bench/ ./backends/...
	cd third_party/go-smb2 && $(GO) test -count=1 ./...

test-short:
	$(GO) test -count=1 -short ./...

# Every fuzz target in turn, $(FUZZTIME) each (default 10m); `go test` runs their seeds.
fuzz:
	@FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

demo: deps build
	@scripts/demo.sh $(BIN) $(DEMO)

# The demo as on a fresh machine: vmstorbench's cache and the output in a temporary
# directory, removed afterwards.
demo-fresh: deps build
	@scripts/demo-fresh.sh $(BIN)

bench:
	$(GO) test -run XXX -bench . -benchtime 2000000x ./bench/

compare: deps build
	@scripts/compare-fio.sh $(BIN)

clean:
	rm -rf bin $(DEMO)
