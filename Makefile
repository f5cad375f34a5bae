# hone: the two commands of the README.
#   make demo   install missing packages, build, run the main job on the bundled model
#   make test   install missing packages, build, run the whole test suite
BUILD ?= build
JOBS ?= $(shell nproc)

.PHONY: all deps build demo test test-asan fuzz clean

all: build

deps:
	@scripts/install-deps.sh

$(BUILD)/Makefile: CMakeLists.txt
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD)/Makefile
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	@scripts/demo.sh $(BUILD)/hone

# The suite runs twice: the normal build, then an ASan+UBSan+LSan build
# (HONE_SKIP_ASAN=1 skips the second).
test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	@if [ "$(HONE_SKIP_ASAN)" != 1 ]; then $(MAKE) --no-print-directory test-asan; fi

test-asan: deps
	cmake -S . -B $(BUILD)-asan -DCMAKE_BUILD_TYPE=Debug -DHONE_SANITIZE=ON >/dev/null
	cmake --build $(BUILD)-asan -j $(JOBS)
	cd $(BUILD)-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j $(JOBS)

# libFuzzer harnesses, SECONDS each (default 60): make fuzz SECONDS=1800
SECONDS ?= 60
fuzz: deps
	CC=clang cmake -S . -B $(BUILD)-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHONE_FUZZ=ON >/dev/null
	cmake --build $(BUILD)-fuzz -j $(JOBS) --target fuzz_onnx fuzz_pipeline fuzz_loaders
	scripts/fuzz.sh $(BUILD)-fuzz $(SECONDS)

clean:
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-fuzz
