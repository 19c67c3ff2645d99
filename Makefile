# SPDX-License-Identifier: MIT
#
# Front end to the CMake build.
#
#   make                build in build/ (RelWithDebInfo)
#   make test           build and run the tests (ctest -j2)
#   make test-sanitize  the tests with ASan and UBSan, in build-asan/
#   make test-tsan      the tests with ThreadSanitizer, in build-tsan/
#   make test-clang     the tests built with clang, in build-clang/
#   make demo           run the demo (examples/demo.sh)
#   make bench          run the benchmarks (bench/run.sh; installs their
#                       peers first: scripts/deps.sh bench)
#   make install        install (PREFIX=/usr/local, DESTDIR honoured)
#   make fuzz           run the libFuzzer targets for FUZZ_TIME seconds each
#                       (clang, ASan+UBSan), in build-fuzz/
#   make format         clang-format the C sources in place
#   make clean          remove the build directories
#
# Every target first runs scripts/deps.sh, which installs what is missing
# (as root) or says what to install.

CMAKE ?= cmake
CTEST ?= ctest
JOBS ?= 2
PREFIX ?= /usr/local
DESTDIR ?=
BUILD_TYPE ?= RelWithDebInfo

BUILD := build
BUILD_ASAN := build-asan
BUILD_CLANG := build-clang
BUILD_TSAN := build-tsan
BUILD_FUZZ := build-fuzz
FUZZ_TIME ?= 60

comma := ,
# cmake --build runs make too; keep its output free of "Entering directory".
MAKEFLAGS += --no-print-directory
CTEST_ARGS := --output-on-failure --no-tests=error -j$(JOBS)
SANITIZE_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
TSAN_ENV := TSAN_OPTIONS=halt_on_error=1
FORMAT_DIRS := $(wildcard src include test examples tools bench)

# $(call build_in,DIR,CMAKE-ARGS,ENV): configure DIR if it is not yet (once
# configured, the build re-runs cmake itself when a CMakeLists.txt
# changes), then build it.
define build_in
	@test -f $(1)/CMakeCache.txt || \
		{ echo "$(strip $(3) $(CMAKE) -S . -B $(1) $(2))"; \
		  $(3) $(CMAKE) -S . -B $(1) $(2); }
	$(CMAKE) --build $(1) -j$(JOBS)
endef

.PHONY: all deps test test-sanitize test-tsan test-clang _test-clang demo \
	install bench fuzz format clean

all: deps
	$(call build_in,$(BUILD),-DCMAKE_BUILD_TYPE=$(BUILD_TYPE))

deps:
	@bash scripts/deps.sh

test: all
	cd $(BUILD) && $(CTEST) $(CTEST_ARGS)

test-sanitize: deps
	@bash scripts/deps.sh sanitize
	$(call build_in,$(BUILD_ASAN),-DCMAKE_BUILD_TYPE=Debug -DSHMCAP_SANITIZE=address$(comma)undefined)
	cd $(BUILD_ASAN) && $(SANITIZE_ENV) $(CTEST) $(CTEST_ARGS)

test-tsan: deps
	@bash scripts/deps.sh tsan
	$(call build_in,$(BUILD_TSAN),-DCMAKE_BUILD_TYPE=Debug -DSHMCAP_SANITIZE=thread)
	cd $(BUILD_TSAN) && $(TSAN_ENV) $(CTEST) $(CTEST_ARGS)

test-clang: deps
	@command -v clang >/dev/null 2>&1 || bash scripts/deps.sh clang || true
	@if command -v clang >/dev/null 2>&1; then \
		$(MAKE) --no-print-directory _test-clang; \
	else \
		echo "clang not found: skipping test-clang"; \
	fi

_test-clang:
	$(call build_in,$(BUILD_CLANG),-DCMAKE_BUILD_TYPE=$(BUILD_TYPE),CC=clang)
	cd $(BUILD_CLANG) && $(CTEST) $(CTEST_ARGS)

demo: all
	@if [ -f examples/demo.sh ]; then \
		bash examples/demo.sh $(BUILD); \
	else \
		echo "no demo yet"; \
	fi

install: all
	DESTDIR="$(DESTDIR)" $(CMAKE) --install $(BUILD) --prefix "$(PREFIX)"

# The benchmarks' peers (iceoryx) first; a build configured before they
# were installed looks for them again. Without them (not root) the peers
# that need them are left out.
bench: deps
	@bash scripts/deps.sh bench || \
		echo "bench: iceoryx not installed: its rows are left out"
	@if grep -qs '^iceoryx_binding_c_DIR:.*NOTFOUND' $(BUILD)/CMakeCache.txt; then \
		$(CMAKE) $(BUILD) >/dev/null; \
	fi
	$(call build_in,$(BUILD),-DCMAKE_BUILD_TYPE=$(BUILD_TYPE))
	@if [ -f bench/run.sh ]; then \
		bash bench/run.sh $(BUILD); \
	else \
		echo "no benchmark yet (bench/run.sh)"; \
	fi

# Each fuzz/fuzz_NAME target starts from the seeds in fuzz/corpus/NAME;
# what it finds new goes to build-fuzz/corpus/NAME (the repository's seeds
# are only read), a crashing input to build-fuzz/crash-*.
fuzz: deps
	@bash scripts/deps.sh sanitize clang
	$(call build_in,$(BUILD_FUZZ),-DCMAKE_BUILD_TYPE=RelWithDebInfo -DSHMCAP_SANITIZE=address$(comma)undefined -DSHMCAP_FUZZ=ON -DSHMCAP_TESTS=OFF -DSHMCAP_EXAMPLES=OFF,CC=clang)
	@for t in $(BUILD_FUZZ)/fuzz/fuzz_*; do \
		[ -f "$$t" ] && [ -x "$$t" ] || continue; \
		n=$${t##*/fuzz_}; \
		mkdir -p $(BUILD_FUZZ)/corpus/$$n; \
		echo "$$t: $(FUZZ_TIME) s from fuzz/corpus/$$n"; \
		$(SANITIZE_ENV) $$t -max_total_time=$(FUZZ_TIME) -max_len=512 \
			-print_final_stats=1 -artifact_prefix=$(BUILD_FUZZ)/ \
			$(BUILD_FUZZ)/corpus/$$n fuzz/corpus/$$n || exit 1; \
	done

format: deps
	@command -v clang-format >/dev/null 2>&1 || \
		{ echo "clang-format not found (apt-get install clang-format)"; exit 1; }
	find $(FORMAT_DIRS) -name '*.[ch]' -print0 | xargs -0 -r clang-format -i

clean: deps
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_CLANG) $(BUILD_TSAN) $(BUILD_FUZZ)
