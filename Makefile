# keel's top-level Makefile: a thin driver over Meson (see docs/build.md for why Meson).
#   make          build everything into build/ (programs: build/keeld, build/keel, build/keel-vmm)
#   make demo     set up, then keeld boots Debian 12 as a Generation 2 VM: its login prompt
#   make test     set up, then run the whole suite: unit, tiny guests, fuzz (brief), lab
#                 (on a host without KVM, the lab runs the tiny guests: docs/testing.md)
#   make bench    run the benchmarks in bench/ and print keel/QEMU ratios
#   make fuzz     run every fuzz target for longer (FUZZ_SECONDS, default 300 each)
#   make format   clang-format every C file in place
#   make agent-deb  build/keel-agent_VERSION_amd64.deb: the guest agent, static, with its unit
#   make agent-iso  build/keel-agent.iso: that package on a disk to insert into a VM's DVD drive

MESON ?= meson
NINJA ?= ninja
FUZZ_SECONDS ?= 300


.PHONY: all asan setup demo test test-host test-fuzz test-lab bench fuzz format clean agent-deb agent-iso

all: build/build.ninja
	$(NINJA) -C build
	@ln -sf src/vmm/keel-vmm build/keel-vmm 2>/dev/null || true
	@ln -sf src/cli/keel build/keel 2>/dev/null || true
	@ln -sf src/daemon/keeld build/keeld 2>/dev/null || true
	@ln -sf src/agent/keel-agent build/keel-agent 2>/dev/null || true

build/build.ninja:
	@command -v $(MESON) >/dev/null || { echo "make: meson is not installed; run 'make setup' (or scripts/setup.sh) first" >&2; exit 1; }
	$(MESON) setup build

# The build the tests run: AddressSanitizer and UndefinedBehaviorSanitizer, abort on any report.
build-asan/build.ninja:
	$(MESON) setup build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug -Dtest_hooks=true

# libFuzzer targets need clang.
build-fuzz/build.ninja:
	CC=clang $(MESON) setup build-fuzz -Dfuzz=true -Dtests=false -Db_lundef=false -Dbuildtype=debugoptimized

setup:
	scripts/setup.sh

demo: setup all
	scripts/demo.sh

# Every suite runs even when an earlier one fails (-k), so one run reports everything.
test: setup
	$(MAKE) all
	$(MAKE) -k test-host test-fuzz test-lab
	@echo "make test: all suites passed"

# The ASan+UBSan build with its test hooks, which the host tier tests and the lab's guests and
# daemon tiers (on a host without KVM: tests/lab/guests_tier.py) run.
asan: build-asan/build.ninja
	@# A build-asan set up before the jail's test hook existed gets it (e2e jail needs it).
	@grep -q -- -DKEEL_TEST_HOOKS build-asan/build.ninja || $(MESON) configure build-asan -Dtest_hooks=true
	$(NINJA) -C build-asan

# Per-tier counts follow meson's own summary (tests/summary.py); under .ci/run a skipped
# host test fails the suite (KEEL_TEST_NO_SKIP=1).
test-host: asan
	$(MESON) test -C build-asan --print-errorlogs --no-rebuild; status=$$?; \
	tests/summary.py build-asan || status=1; exit $$status

test-fuzz: build-fuzz/build.ninja
	$(NINJA) -C build-fuzz
	tests/fuzz/run.sh build-fuzz 10

test-lab: all asan
	tests/lab/run.sh

bench: setup all
	bench/run.sh

fuzz: build-fuzz/build.ninja
	$(NINJA) -C build-fuzz
	tests/fuzz/run.sh build-fuzz $(FUZZ_SECONDS)

agent-deb: all
	scripts/agent-deb.sh build

agent-iso: all
	scripts/agent-iso.sh build

format:
	git ls-files '*.c' '*.h' | xargs clang-format -i

clean:
	rm -rf build build-asan build-fuzz
