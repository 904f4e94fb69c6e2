# Tidemark: build, test, demo and benchmark entry points. See README.md.
SHELL := /bin/bash
SWIFT   ?= swift
PREFIX  ?= /usr/local
# `make test` runs its own stack in .stack-test/ so it never disturbs a stack started by hand
# (tools/stack up) or by `make demo` in .stack/.
TEST_STACK_DIR ?= $(CURDIR)/.stack-test
# `make test`'s Tansu pass runs its own Tansu broker in .tansu-test/ (tools/tansu keeps .tansu/).
TEST_TANSU_DIR ?= $(CURDIR)/.tansu-test
# The broker-agnostic Kafka integration suites (no dev-broker fault injection): the second pass
# of `make test` runs them against Tansu on librdkafka 2.16 (docs/kafka.md, "Kafka tests on Tansu").
KAFKA_BROKER_SUITES := KafkaSourceTests.KafkaBrokerTests|IntegrationTests.KafkaBrokerIntegrationTests
EXECUTABLES := etl-engine etl-recover etl-audit etl-loggen etl-produce etl-devbroker

.PHONY: all deps build test test-tansu test-tansu-pass chaos demo bench bench-parse bench-parquet bench-kafka bench-objectstore bench-e2e bench-recovery bench-audit-deep bench-audit-fleet bench-layout bench-scaling bench-memory bench-latency bench-goals clean install package package-test stack-up stack-down

all: build

# Installs missing system packages and Python test peers (tools/install-deps); a no-op when
# everything is present.
deps:
	@tools/install-deps --check >/dev/null 2>&1 || tools/install-deps

build: deps
	$(SWIFT) build -c release

# Builds everything (failing on any compiler warning from project code), brings the local
# stack up, runs every test (unit + integration) on Debian's librdkafka 2.0.2 and brings the
# stack down again; then runs the Kafka integration suites a second time, against Tansu on
# librdkafka 2.16 (test-tansu-pass); then the short crash suite.
test: deps
	@mkdir -p .build
	@$(SWIFT) build --build-tests 2>&1 | tee .build/test-build.log; test $${PIPESTATUS[0]} -eq 0
	@if grep -E "^$(CURDIR)/(Sources|Tests)/[^:]+:[0-9]+:[0-9]+: warning:" .build/test-build.log; then \
		echo "make test: compiler warnings in project code (listed above)"; exit 1; fi
	@env -u TIDEMARK_KAFKA_BOOTSTRAP -u TIDEMARK_EXPECT_LIBRDKAFKA \
		TIDEMARK_STACK_DIR=$(TEST_STACK_DIR) TIDEMARK_DEVBROKER=$$($(SWIFT) build --show-bin-path)/etl-devbroker \
		tools/with-stack $(SWIFT) test --skip-build
	@$(MAKE) --no-print-directory test-tansu-pass
	@# The crash and fault suite, short form (< 5 min; owns its stacks; table in build/chaos-short/).
	@python3 tools/chaos.py --short --bin $$($(SWIFT) build --show-bin-path)

# The Kafka integration suites ($(KAFKA_BROKER_SUITES)) against Tansu (tools/with-tansu: own
# broker in $(TEST_TANSU_DIR), its address in TIDEMARK_KAFKA_BOOTSTRAP, stopped by PID on any exit)
# with the test binary on librdkafka 2.16 (LD_LIBRARY_PATH="$$(tools/librdkafka216)").
# TIDEMARK_EXPECT_LIBRDKAFKA=2.16 makes every one of these tests fail unless 2.16 is the library
# actually loaded. Fails (never skips) when Tansu or the 2.16 library is unavailable.
# test-tansu builds first; test-tansu-pass expects the tests built (make test has just built them).
test-tansu: deps
	@$(SWIFT) build --build-tests 2>&1 | grep -E "error|warning: |Build complete" ; test $${PIPESTATUS[0]} -eq 0
	@$(MAKE) --no-print-directory test-tansu-pass

test-tansu-pass:
	@lib="$$(tools/librdkafka216)" || { echo "make test: tools/librdkafka216 failed (tools/install-deps)"; exit 1; }; \
		echo "make test: Kafka integration suites on Tansu, librdkafka 2.16 from $$lib"; \
		TIDEMARK_TANSU_DIR=$(TEST_TANSU_DIR) TIDEMARK_EXPECT_LIBRDKAFKA=2.16 LD_LIBRARY_PATH="$$lib" \
		tools/with-tansu $(SWIFT) test --skip-build --filter '$(KAFKA_BROKER_SUITES)'

# The crash and fault suite, full form (< 30 min on 2 cores): kill -9 loop over 1,000,000
# records, failpoint matrix, S3 and broker faults, rebalance/zombie, disk full, bad input,
# security; writes docs/reliability.md. Needs root for the tmpfs mounts (else: NOT RUN, fails).
chaos: deps
	@$(SWIFT) build 2>&1 | grep -E "error|warning: |Compiling|Build complete" ; test $${PIPESTATUS[0]} -eq 0
	python3 tools/chaos.py --bin $$($(SWIFT) build --show-bin-path) $(CHAOS_FLAGS)

# The pipeline end to end on local defaults: stack up, synthetic logs into Kafka, etl-engine into
# a file:// sink (DEMO_SINK=s3 for moto), a DuckDB query over the output, stack down.
demo: deps
	@tools/demo

# Benchmarks (not tests): results and the commands behind them are in docs/benchmarks.md.
bench: bench-parse bench-parquet bench-kafka bench-objectstore bench-e2e bench-recovery bench-audit-deep bench-audit-fleet bench-layout bench-scaling bench-memory bench-latency
	@python3 bench/goals.py

# Records per second of one core for each input format's parser (seed text, seed JSON, configured
# JSON mapping, regex/nginx, raw); release build. Results in docs/benchmarks.md ("Parsing").
bench-parse: deps
	swift build -c release --product parse-bench
	$$(swift build -c release --show-bin-path)/parse-bench --records 2000000 --runs 5

bench-parquet: deps
	python3 bench/parquet_bench.py --runs 5

# Upload 256 MiB to moto and to FileStore at several part sizes / concurrencies, beside awscli.
bench-objectstore: deps
	TIDEMARK_STACK_DIR=$(CURDIR)/.stack-bench tools/with-stack bench/objectstore_bench.sh

# Consume 1,000,000 records with kafka-bench beside kcat on the same topic (own dev broker).
bench-kafka: deps
	bench/kafka_bench.sh

# The pipeline end to end (2,000,000 records): stage limits (kcat, Parquet encode, S3 ingest,
# SHA-256), the Python peer (bench/peer_pipeline.py) and etl-engine to moto and file://, median of
# 3 runs each; writes the table into docs/benchmarks.md. Own stack in .stack-bench/.
bench-e2e: deps
	python3 bench/e2e_bench.py
	python3 bench/e2e_bench.py --skip-build --wall-only --records 3000000 --partitions 48
	python3 bench/e2e_bench.py --skip-build --wall-only --zero-delay --records 3000000 --partitions 48

# Start-up with 100,000 COMMITTED + 10 in-flight batches in the manifest, beside an empty one; and
# restart right after kill -9, with and without static membership; on the dev broker and on
# bench/zero_delay_broker.py.
bench-recovery: deps
	python3 bench/recovery_bench.py

# etl-audit --fleet over 100,000 objects in moto (listing, one HEAD per object, chain checks).
bench-audit-fleet: deps
	python3 bench/fleet_audit_bench.py

# etl-audit --deep (download, SHA-256, footer) over ~1,000,000 records of uncompressed Parquet in moto.
bench-audit-deep: deps
	python3 bench/audit_deep_bench.py

# Event-time layouts: objects per path when 0-5% of records arrive late (200,000 records, 3 templates).
bench-layout: deps
	python3 bench/layout_bench.py

# 1, 2 and 3 engines in one consumer group (1,000,000 records, 24 partitions): records/s, the pause
# when an engine joins, takeover after kill -9 (session_timeout 6 s and 30 s), S3 requests per GB
# (through tools/s3_fault_proxy.py), manifest bytes per batch. Reading: docs/scaling.md.
bench-scaling: deps
	python3 bench/scaling_bench.py

# Issue 22's goals, each with the figure the benches above measured (from their raw results in
# .build/), met or not; measures nothing itself.
bench-goals:
	python3 bench/goals.py

# Peak RSS of etl-engine with default settings, 2,000,000 records over 48 and over 480 partitions
# (issue #22: <= 256 MiB), beside the same engine assigned an empty topic; verify_sink.py after each run.
bench-memory: deps
	python3 bench/memory_bench.py --sinks file,s3

# Latency from Kafka timestamp to committed object at a steady 10,000 records/s for 60 s (issue #22:
# p99 <= max_age + 2 s), into moto, with max_age 5s; verify_sink.py in the same run. Reading:
# docs/benchmarks.md ("Latency").
bench-latency: deps
	python3 bench/latency_bench.py

stack-up:
	tools/stack up

stack-down:
	tools/stack down

install: build
	@mkdir -p $(DESTDIR)$(PREFIX)/bin
	@for e in $(EXECUTABLES); do \
		install -m 0755 "$$($(SWIFT) build -c release --show-bin-path)/$$e" "$(DESTDIR)$(PREFIX)/bin/$$e"; \
		echo "installed $(DESTDIR)$(PREFIX)/bin/$$e"; done

# dist/tidemark_<version>_<arch>.deb (tools/package; docs/production.md): a release build with the
# Swift runtime linked statically (in .build-static/, beside the normal .build/), the executables,
# the tidemark-engine.service unit, /etc/tidemark/tidemark.toml. Needs dpkg-dev (dpkg-shlibdeps).
package: deps
	tools/package

# Installs the .deb into a clean Debian 12 tree (debootstrap --variant=minbase, cached in
# .package-test/) with apt-get, then runs etl-engine --version and --check there against
# etl-devbroker from the package. Needs root (chroot, mount), the network (deb.debian.org) and
# apt-get install debootstrap dpkg-dev. Not part of make test.
package-test: package
	tools/package-test

clean:
	-tools/stack down
	-TIDEMARK_STACK_DIR=$(TEST_STACK_DIR) tools/stack down
	-TIDEMARK_STACK_DIR=$(CURDIR)/.stack-demo tools/stack down
	-TIDEMARK_STACK_DIR=$(CURDIR)/.stack-bench tools/stack down
	-tools/tansu down
	-TIDEMARK_TANSU_DIR=$(TEST_TANSU_DIR) tools/tansu down
	rm -rf .build .build-static .stack .stack-test .stack-demo .stack-bench .tansu .tansu-test demo-output build dist
