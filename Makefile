# Airlock for Swift — the two commands a newcomer needs: `make demo` and `make test`.
SWIFT ?= swift
export CI ?=

.PHONY: all deps build build-release test unit integration integrations postgres hummingbird vapor dashboard demo bench bench-core bench-cluster bench-outbox fuzz clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build

# Release binaries (flags in scripts/release-flags, shared with bench/) link the Swift runtime
# statically: nothing to install on a server. They link with the toolchain's lld and pack their
# relative relocations (DT_RELR: 16 KB where 2 MB were read at every start; needs glibc >= 2.36),
# and the sources use FoundationEssentials, not Foundation, nor ICU: an idle worker's RSS went 24.9 -> 18.5 MB
# (docs/BENCHMARKS.md, "Worker memory").
RELEASE_FLAGS := $(shell cat scripts/release-flags)
build-release: deps
	$(SWIFT) build $(RELEASE_FLAGS)

## Everything CI runs: build, unit tests (core + Redis against a private redis-server), integration suite.
test: deps
	$(SWIFT) build --build-tests
	# The core suite changes the process-wide configuration, so it runs in a process of its own.
	$(SWIFT) test --skip-build --filter AirlockTests
	scripts/with-redis.sh $(SWIFT) test --skip-build --skip AirlockTests --skip AirlockIntegrationTests
	integration/run.sh
	# Every integration package's tests in one build (Integrations/Package.swift), one PostgreSQL, one Redis;
	# then the dashboard in a real headless Chromium.
	SWIFT=$(SWIFT) Integrations/scripts/test.sh

unit: deps
	$(SWIFT) test --filter AirlockTests
	scripts/with-redis.sh $(SWIFT) test --skip AirlockTests --skip AirlockIntegrationTests

integration: deps
	integration/run.sh

## Every integration suite (PostgreSQL, Hummingbird, Vapor, the dashboard and its browser suite) in one shared build, as make test runs them.
integrations: deps
	SWIFT=$(SWIFT) Integrations/scripts/test.sh

## The framework-neutral PostgreSQL commit gate only (real PostgreSQL; its own package).
postgres: deps
	SWIFT=$(SWIFT) Integrations/AirlockPostgres/scripts/test.sh

## Hummingbird + PostgreSQL integration only (real PostgreSQL, Redis and HTTP; its own package).
hummingbird: deps
	SWIFT=$(SWIFT) Integrations/AirlockHummingbird/scripts/test.sh

## Vapor + Fluent integration only (real PostgreSQL, Redis and HTTP; its own package).
vapor: deps
	SWIFT=$(SWIFT) Integrations/AirlockVapor/scripts/test.sh

## The web dashboard only: its Swift suite and its browser suite (real Redis, HTTP, headless Chromium; its own package).
dashboard: deps
	SWIFT=$(SWIFT) Integrations/AirlockDashboard/scripts/test.sh

## libFuzzer over the worker's whole path (decode → run → settle → delayed score → printed text), seeded
## from Fuzz/corpus (make test replays that corpus). FUZZ_SECONDS=600 make fuzz for a longer run; new
## interesting inputs land in .build-fuzz/corpus, crashes in .build-fuzz/findings.
FUZZ_SECONDS ?= 60
fuzz: deps
	$(SWIFT) build -c debug --product AirlockFuzz --scratch-path .build-fuzz -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING
	mkdir -p .build-fuzz/corpus .build-fuzz/findings
	.build-fuzz/debug/AirlockFuzz .build-fuzz/corpus Fuzz/corpus -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
		-timeout=10 -artifact_prefix=.build-fuzz/findings/ -print_final_stats=1

## A local Redis, workers, a producer with real jobs, and queue stats at the end.
demo: build-release
	scripts/demo.sh

## Core enqueue+flush overhead with the recording executor (1M intents, scopes of 100).
bench-core: build-release
	.build/release/AirlockCoreBench

## Everything measured: bench/run.sh (Airlock beside Redis's ceiling and the peers, scaling tables,
## observability), then the PostgreSQL outbox's figures (BENCH_OUTBOX=0 leaves those out).
bench: build-release
	bench/run.sh $(BENCH_ARGS)
	@if [ "$(BENCH_OUTBOX)" != 0 ]; then $(MAKE) --no-print-directory bench-outbox; fi

## A partitioned queue (K = 3) vs one plain queue on a real 3-primary Redis Cluster (docs/BENCHMARKS.md).
bench-cluster: build-release
	bench/cluster-partitions.sh $(BENCH_ARGS)

## The PostgreSQL outbox: added latency, commit→queued, relay drain of 100k rows (docs/OUTBOX.md).
bench-outbox: deps
	bench/outbox.sh

clean:
	rm -rf .build Integrations/.build Integrations/AirlockPostgres/.build Integrations/AirlockHummingbird/.build Integrations/AirlockVapor/.build
