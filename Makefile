# Thin wrapper over CMake. `make demo` and `make test` work on a bare
# Debian bookworm machine: they install what is missing first.
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
CTEST_ARGS ?= --output-on-failure -j2

.PHONY: all deps check-deps build test test-fast test-asan test-fresh demo bench soak clean format

all: build

deps:
	bash scripts/install-deps.sh --test

# Every Python module and program the tests, benchmarks and examples use
# comes from a package install-deps.sh installs (scripts/deps.txt).
check-deps: deps
	/usr/bin/python3 scripts/check-deps.py

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

# Every test in the normal build, then every test in the ASan+UBSan build.
test: check-deps build
	cd $(BUILD) && ctest $(CTEST_ARGS)
	$(MAKE) test-asan

test-fast: build
	cd $(BUILD) && ctest $(CTEST_ARGS)

test-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DMLOPS_SANITIZE=ON >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest $(CTEST_ARGS)

# make test on a Debian bookworm root made by debootstrap (needs root).
test-fresh:
	bash scripts/test-fresh.sh

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
	rm -rf $(BUILD) $(ASAN_BUILD)
