# vmstorbench: `make demo` runs the main job, `make test` the whole test suite. Both install
# what they need first (scripts/deps.sh).
export PATH := /usr/local/go/bin:$(PATH)
GO      ?= go
BIN     := bin/vmstorbench
DEMO    ?= demo-out

.PHONY: all deps build test test-short demo bench compare clean

all: build

deps:
	@scripts/deps.sh

# Static (CGO_ENABLED=0): the same binary runs inside the VM mode's guest as its agent.
build:
	CGO_ENABLED=0 $(GO) build -o $(BIN) ./cmd/vmstorbench

# The full suite: vet, unit and integration tests (real servers started by the tests), fuzz
# seed corpora, the race detector on the engine and backends, and the tests of the patched
# go-smb2 copy (its own module, so ./... does not reach it).
test: deps
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...
	$(GO) test -count=1 -race -timeout 10m ./bench/ ./backends/...
	cd third_party/go-smb2 && $(GO) test -count=1 ./...

test-short:
	$(GO) test -count=1 -short ./...

demo: deps build
	@scripts/demo.sh $(BIN) $(DEMO)

bench:
	$(GO) test -run XXX -bench . -benchtime 2000000x ./bench/

compare: deps build
	@scripts/compare-fio.sh $(BIN)

clean:
	rm -rf bin $(DEMO)
