# Thin wrapper over CMake. `make demo` and `make test` work on a bare
# Debian bookworm machine: they install what is missing first.
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
# make fuzz: seconds per target, and how many targets fuzz at once
FUZZ_SECONDS ?= 300
FUZZ_JOBS  ?= 1
# make test-fuzz (run by make test): seconds per target
FUZZ_TEST_SECONDS ?= 30
SECONDS_EACH ?= $(FUZZ_TEST_SECONDS)
JOBS       ?= $(shell nproc)
CTEST_ARGS ?= --output-on-failure -j2
IMAGE      ?= mlops:latest
PROM_IMAGE ?= mlops-prometheus:latest

.PHONY: all deps check-deps build test test-fast test-asan test-fresh fuzz-build fuzz test-fuzz demo bench soak clean format image test-compose

all: build

deps:
	bash scripts/install-deps.sh --test

# Every Python module and program the tests, benchmarks and examples use
# comes from a package install-deps.sh installs (the package table in scripts/install-deps.sh).
check-deps: deps
	/usr/bin/python3 scripts/check-deps.py

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

# Every test in the normal build, then every test in the ASan+UBSan build,
# then each fuzz target for a bounded time.
test: check-deps build
	cd $(BUILD) && ctest $(CTEST_ARGS)
	$(MAKE) test-asan
	$(MAKE) test-fuzz

test-fast: build
	cd $(BUILD) && ctest $(CTEST_ARGS)

test-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DMLOPS_SANITIZE=ON >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest $(CTEST_ARGS)

# libFuzzer targets (tests/fuzz), built with Debian's clang in their own
# build directory. Each runs as the ctest fuzz.NAME from the committed
# seeds; a crash fails it and prints the reproducer's path (under
# $(FUZZ_BUILD)/fuzz-artifacts/NAME/). Inputs found are kept in
# $(FUZZ_BUILD)/fuzz-corpus/NAME/ for the next run.
fuzz-build: deps
	cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DMLOPS_FUZZ=ON -DMLOPS_FUZZ_SECONDS=$(SECONDS_EACH) >/dev/null
	cmake --build $(FUZZ_BUILD) -j $(JOBS)

test-fuzz:
	$(MAKE) fuzz-build SECONDS_EACH=$(FUZZ_TEST_SECONDS)
	cd $(FUZZ_BUILD) && ctest --output-on-failure -L fuzz $(CTEST_ARGS)

fuzz:
	$(MAKE) fuzz-build SECONDS_EACH=$(FUZZ_SECONDS)
	cd $(FUZZ_BUILD) && ctest --output-on-failure -L fuzz -j $(FUZZ_JOBS)

# make test on a Debian bookworm root made by debootstrap (needs root).
test-fresh:
	bash scripts/test-fresh.sh

# The FROM scratch images of this build (docker/build-image.sh: nothing is
# pulled): mlops:latest, and mlops-prometheus:latest for compose's
# Prometheus profile. Needs a docker daemon.
image: build
	MLOPS_PROM_IMAGE=$(PROM_IMAGE) bash docker/build-image.sh $(BUILD) $(IMAGE)

# docker-compose.yml for real (tests/integration/test_docker.sh, which
# `make test` also runs as a ctest): here a missing docker is a failure.
test-compose: build
	cd $(BUILD) && MLOPS_REQUIRE_DOCKER=1 ctest --output-on-failure -R '^integration\.test_docker$$'

demo: build
	bash examples/demo.sh $(BUILD)

bench: build
	bash scripts/install-deps.sh --bench
	bash bench/run.sh $(BUILD)

# Many jobs under random worker kills and coordinator restarts, about 20
# minutes (SOAK_SECONDS to change); prints jobs and tasks lost (must be 0).
soak: build
	MLOPS_BUILD_DIR=$(BUILD) bash tests/soak/soak.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
