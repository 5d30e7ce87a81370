# lite-raft: the two commands a newcomer needs are `make` (build) and `make test`.
GO       ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
VERSION  := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.Version=$(VERSION)
export CGO_ENABLED := 0
# urfave/cli without its man/markdown generators (unused): a smaller binary with fewer
# package inits starts faster (issue 8: one lite-raft-client set, 20 -> 17.5 ms here);
# exported so that tests build the same binary
export GOFLAGS := -tags=urfave_cli_no_docs

.PHONY: all build test test-deps bench bench-etcd bench-scale bench-wan bench-batch bench-micro demo dist package lint clean torture powercut-torture soak-wan

# make torture DURATION=30m CYCLES=30: the linearizability torture test, longer, then the
# power-cut test with more cuts of every host (each alone: make powercut-torture)
DURATION ?= 30m
CYCLES ?= 30
# make bench BENCH_DURATION=5s: how long each workload runs on each system
BENCH_DURATION ?= 10s
# make bench-scale SCALE_KEYS=100000: keys of 1 KB the scale workload fills (500 MB by
# default; each system holds them in every member, so size it to the machine's memory),
# and how long it then measures the 64-client load
SCALE_KEYS ?= 500000
SCALE_DURATION ?= 30s

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o lite-raft ./cmd/lite-raft
	ln -sf lite-raft lite-raft-client
	ln -sf lite-raft lite-raft-remote
	mkdir -p pkg/control-scripts pkg/conf
	cp lite-raft pkg/
	ln -sf lite-raft pkg/lite-raft-remote
	ln -sf lite-raft pkg/pkg
	cp scripts/control-script-template pkg/control-scripts/template
	./lite-raft gen-docs .

# test installs what the end-to-end tests need (as root), then runs every test.
test: test-deps
	GO=$(GO) scripts/test.sh

test-deps:
	scripts/install-test-deps.sh

# make bench: lite-raft (3 harness hosts) against etcd (3 members on loopback) in one
# run, with ratios; ETCD=no for lite-raft alone, DURATION=10s per workload (as root);
# then the WAN section (bench-wan)
bench: build
	GO=$(GO) DURATION=$(BENCH_DURATION) SCALE_KEYS=$(SCALE_KEYS) SCALE_DURATION=$(SCALE_DURATION) SOAK_WAN=$(BENCH_SOAK_WAN) scripts/bench.sh

# the WAN section alone (the last one of make bench): lite-raft and etcd in the same hosts
# 50 and 100 ms apart, a remote read, catch-up by snapshot, then BENCH_SOAK_WAN of the
# WAN soak (0 skips it)
BENCH_SOAK_WAN ?= 5m
bench-wan: build
	GO=$(GO) ONLY=wan DURATION=$(BENCH_DURATION) SOAK_WAN=$(BENCH_SOAK_WAN) scripts/bench.sh

# the scale workload alone (the last one of make bench): fill SCALE_KEYS keys of 1 KB on
# both systems, then load, memory, a follower's catch-up and a new member at that size
bench-scale: build
	GO=$(GO) ONLY=scale SCALE_KEYS=$(SCALE_KEYS) SCALE_DURATION=$(SCALE_DURATION) scripts/bench.sh

# the batch workload alone (issue 31): a loop of 300 `lite-raft-client set` calls against
# one `lite-raft-client batch` of 100,000 sets (BENCH_ARGS="--batch-n N --batch-window W
# --batch-loop L"), beside `etcdctl put` in a loop and etcd's Go client pipelined
bench-batch: build
	GO=$(GO) ONLY=batch DURATION=$(BENCH_DURATION) scripts/bench.sh

# the same (etcd is in make bench unless ETCD=no); the name the issue asked for
bench-etcd: bench

# the Go micro-benchmarks of raftcore, statefile, kvstore and sshrpc
bench-micro:
	$(GO) test -run '^$$' -bench . -benchtime 2s ./raftcore/ ./statefile/ ./kvstore/ ./sshrpc/

torture: test-deps
	@log=$$(mktemp); $(GO) test -count=1 -timeout 0 -run '^TestTorture$$' ./e2e/ -torture.duration=$(DURATION) -v >$$log 2>&1; \
	rc=$$?; grep -E '^(history:|locks:|--- |ok|FAIL|panic)|torture_test.go' $$log; \
	[ $$rc -eq 0 ] || tail -n 80 $$log; rm -f $$log; [ $$rc -eq 0 ] || exit $$rc; \
	$(MAKE) --no-print-directory powercut-torture CYCLES=$(CYCLES)

# make soak-wan SOAK_DURATION=30m: three members 100 ms apart under load for that long,
# counting leader changes (any fails it)
SOAK_DURATION ?= 30m
soak-wan: test-deps
	@log=$$(mktemp); $(GO) test -count=1 -timeout 0 -run '^TestSoakWAN$$' ./e2e/ -soakwan.duration=$(SOAK_DURATION) -v >$$log 2>&1; \
	rc=$$?; grep -E '^(soakwan:|--- |ok|FAIL|panic)|soakwan_test.go' $$log; \
	[ $$rc -eq 0 ] || tail -n 80 $$log; rm -f $$log; exit $$rc

powercut-torture: test-deps
	@log=$$(mktemp); $(GO) test -count=1 -timeout 0 -run '^TestPowerCut$$' ./e2e/ -powercut.cycles=$(CYCLES) -v >$$log 2>&1; \
	rc=$$?; grep -E '^(powercut:|--- |ok|FAIL|panic)|powercut_test.go' $$log; \
	[ $$rc -eq 0 ] || tail -n 80 $$log; rm -f $$log; exit $$rc

demo: build
	scripts/demo.sh

dist:
	scripts/dist.sh '$(LDFLAGS)'

# make package [VERSION=1.2.3] [PLATFORMS="linux/amd64"]: per platform a tarball of the
# lite-raft directory, for Linux a .deb and an .rpm installing it at /opt/lite-raft, and
# dist/SHA256SUMS (nfpm is a pinned build tool: tools/nfpm)
package:
	GO=$(GO) VERSION=$(VERSION) scripts/package.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf lite-raft lite-raft-client lite-raft-remote pkg/ dist/ demo/
