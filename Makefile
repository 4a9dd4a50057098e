# bitforge — one Makefile builds, tests, fuzzes, benchmarks and installs.
#   make            lib/libbf.a and bin/bf-*
#   make test       C unit tests and bats files, through prove
#   make check-asan the same suite built with ASan/UBSan in build-asan/
#   make check-valgrind  every program under valgrind on the FAST pipeline's streams
#   make check-layers  the library's parts keep to their arrows (lib/layers)
#   make fuzz       libFuzzer harnesses (tests/fuzz), FUZZ_SECONDS each
#   make bench      benchmarks (never part of test)
#   make pipeline   the main job: examples/pipeline
#   make install    PREFIX=/usr/local DESTDIR=

PREFIX ?= /usr/local
DESTDIR ?=
CC ?= cc
CFLAGS ?= -O2 -g
FUZZ_SECONDS ?= 60
BUILD ?= .
PROVE_JOBS ?= 2

BF_CFLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wno-unused-parameter -Wno-psabi -Iinclude -pthread \
             -fno-strict-aliasing
# Programs (and the test tools, which are programs too) also see cmd/common:
# option tables, usage text and messages belong to programs, not the library.
CMD_CFLAGS := -Icmd/common
LDLIBS := -Wl,--as-needed -lopenblas -llapacke -lmsgpackc -larchive -llzma -lzstd -lxxhash -ljansson -lm -pthread

# MPI (OpenMPI's mpicc, installed by `make deps`): when it is there, the
# programs can run as ranks of one job under mpirun (cmd/common/job.c; the
# library itself never links MPI).  NO_MPI=1 builds without it.
MPICC := $(if $(NO_MPI),,$(shell command -v mpicc 2>/dev/null))
MPI_CFLAGS := $(if $(MPICC),-DBF_HAVE_MPI $(shell $(MPICC) --showme:compile 2>/dev/null))
MPI_LIBS := $(if $(MPICC),$(shell $(MPICC) --showme:link 2>/dev/null))
LDLIBS += $(MPI_LIBS)

# The library, one folder per part (docs/ARCHITECTURE.md; lib/layers says
# which part may include which).
LIB_SRC := $(wildcard lib/*/*.c)
CMD_SRC := $(wildcard cmd/bf-*.c)
COMMON_SRC := $(wildcard cmd/common/*.c)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
HEADERS := $(wildcard include/bf/*.h lib/*/*.h)
COMMON_HEADERS := $(wildcard cmd/common/*.h)

LIB_OBJ := $(patsubst lib/%.c,$(BUILD)/obj/lib/%.o,$(LIB_SRC))
COMMON_OBJ := $(patsubst cmd/common/%.c,$(BUILD)/obj/common/%.o,$(COMMON_SRC))
LIBA := $(BUILD)/lib/libbf.a
COMMONA := $(BUILD)/obj/libbfcmd.a
PROGS := $(patsubst cmd/%.c,$(BUILD)/bin/%,$(CMD_SRC))
UNITS := $(patsubst tests/unit/%.c,$(BUILD)/obj/tests/%,$(UNIT_SRC))
HELPERS := $(patsubst tests/tools/%.c,$(BUILD)/obj/tools/%,$(wildcard tests/tools/*.c))

all: $(LIBA) $(PROGS)

$(BUILD)/obj/lib/%.o: lib/%.c $(HEADERS)
	@mkdir -p $(@D)
	$(CC) $(BF_CFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/obj/common/%.o: cmd/common/%.c $(HEADERS) $(COMMON_HEADERS)
	@mkdir -p $(@D)
	$(CC) $(BF_CFLAGS) $(CMD_CFLAGS) $(CFLAGS) -c -o $@ $<

# the one file that speaks MPI (rebuilt when MPI comes or goes)
$(BUILD)/obj/common/job.o: cmd/common/job.c $(HEADERS) $(COMMON_HEADERS) $(BUILD)/obj/mpi-flags
	@mkdir -p $(@D)
	$(CC) $(BF_CFLAGS) $(CMD_CFLAGS) $(MPI_CFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/obj/mpi-flags: FORCE
	@mkdir -p $(@D)
	@echo '$(MPI_CFLAGS) $(MPI_LIBS)' | cmp -s - $@ || echo '$(MPI_CFLAGS) $(MPI_LIBS)' >$@

$(COMMONA): $(COMMON_OBJ)
	@mkdir -p $(@D)
	rm -f $@
	ar rcs $@ $^

$(LIBA): $(LIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/bin/%: cmd/%.c $(COMMONA) $(LIBA) $(HEADERS) $(COMMON_HEADERS)
	@mkdir -p $(@D)
	$(CC) $(BF_CFLAGS) $(CMD_CFLAGS) $(CFLAGS) -o $@ $< $(COMMONA) $(LIBA) $(LDLIBS)

$(BUILD)/obj/tests/%: tests/unit/%.c tests/unit/tap.h tests/unit/kernel_cases.h tests/unit/model_fixture.h $(LIBA) $(HEADERS)
	@mkdir -p $(@D)
	$(CC) $(BF_CFLAGS) $(CFLAGS) -Itests/unit -o $@ $< $(LIBA) $(LDLIBS)

$(BUILD)/obj/tools/%: tests/tools/%.c $(COMMONA) $(LIBA) $(HEADERS) $(COMMON_HEADERS)
	@mkdir -p $(@D)
	$(CC) $(BF_CFLAGS) $(CMD_CFLAGS) $(CFLAGS) -o $@ $< $(COMMONA) $(LIBA) $(LDLIBS)

# The AVX-512 kernels built as the library builds them, in a bootable image
# with no operating system (tests/emu), for tests/emu/kernels-emu.bats to
# run in an emulated processor that has AVX-512.  Not part of `make test`:
# `make check-emu` builds the image and runs it (the tools: scripts/deps-emu).
EMU_CC ?= gcc
EMU_CFLAGS := -std=c11 -O2 -ffreestanding -fno-pic -fno-pie -mno-red-zone -fno-stack-protector \
              -fno-asynchronous-unwind-tables -Wall -Wextra -Wno-psabi -Iinclude
EMU_DIR := $(BUILD)/obj/emu
EMU_ISO := $(EMU_DIR)/emu.iso
SYSLINUX := /usr/lib/syslinux/modules/bios

$(EMU_DIR)/emu.bin: tests/emu/boot.S tests/emu/emu_main.c tests/emu/emu.ld tests/unit/kernel_cases.h lib/kernels/kernels_avx512.c lib/kernels/kernels_avx512.h \
                    lib/kernels/kernels_avx512_body.h
	@mkdir -p $(@D)
	$(EMU_CC) $(EMU_CFLAGS) -c -o $(@D)/boot.o tests/emu/boot.S
	$(EMU_CC) $(EMU_CFLAGS) -c -o $(@D)/emu_main.o tests/emu/emu_main.c
	$(EMU_CC) $(EMU_CFLAGS) -c -o $(@D)/kernels_avx512.o lib/kernels/kernels_avx512.c
	ld -nostdlib -static -no-pie --no-warn-rwx-segments -T tests/emu/emu.ld -o $(@D)/emu.elf \
	  $(@D)/boot.o $(@D)/emu_main.o $(@D)/kernels_avx512.o
	objcopy -O binary $(@D)/emu.elf $@

$(EMU_ISO): $(EMU_DIR)/emu.bin
	rm -rf $(@D)/iso
	mkdir -p $(@D)/iso/isolinux
	cp /usr/lib/ISOLINUX/isolinux.bin $(SYSLINUX)/ldlinux.c32 $(SYSLINUX)/mboot.c32 $(SYSLINUX)/libcom32.c32 $(@D)/iso/isolinux/
	cp $< $(@D)/iso/emu.bin
	printf 'DEFAULT emu\nPROMPT 0\nLABEL emu\n  KERNEL mboot.c32\n  APPEND /emu.bin\n' >$(@D)/iso/isolinux/isolinux.cfg
	xorriso -as mkisofs -quiet -o $@ -b isolinux/isolinux.bin -c isolinux/boot.cat -no-emul-boot -boot-load-size 4 \
	  -boot-info-table $(@D)/iso

emu-image: $(EMU_ISO)

# The AVX-512 kernels on emulated processors (opt-in, never part of test):
# one line and a non-zero exit when the tools are missing or the emulator
# cannot start, prove's report otherwise.
.PHONY: check-emu check-clone check-layers deps-emu
check-emu:
	@tests/emu/check tools
	@$(MAKE) --no-print-directory -q emu-image || $(MAKE) --no-print-directory emu-image
	@BF_EMU_ISO=$(abspath $(EMU_ISO)) tests/emu/check run

# The suite: every unit test is a TAP program; every .bats file speaks TAP.
# BF_BIN tells the bats files which build to test; BF_VECTORS is where the
# test vectors are (tests/vectors, in the repository).
test: all $(UNITS) $(HELPERS)
	BF_BUILD=$(BUILD) BF_BIN=$(abspath $(BUILD)/bin) BF_TOOLS=$(abspath $(BUILD)/obj/tools) BF_VECTORS=$(abspath tests/vectors) \
	  prove -j$(PROVE_JOBS) --exec '$(CURDIR)/tests/run-one' $(UNITS) $(wildcard tests/cli/*.bats)

# The model's loss and gradients against an independent PyTorch reference
# (tests/ref/): every variant, ternary STE, and the test vectors' models.
check-ref: all $(BUILD)/obj/tools/bf-grad
	BF_BUILD=$(BUILD) BF_BIN=$(abspath $(BUILD)/bin) BF_TOOLS=$(abspath $(BUILD)/obj/tools) BF_VECTORS=$(abspath tests/vectors) \
	  tests/ref/check.sh

# A fresh clone of HEAD, alone in a new temporary folder, passes `make test`
# (nothing outside the repository is read).
check-clone:
	+scripts/check-clone

# The parts of lib/ keep to their arrows (lib/layers), and no file of the
# library uses one that uses it back (scripts/check-cycles, on the built
# library); tests/cli/layers.bats runs the same checks inside `make test`.
check-layers: $(LIBA)
	scripts/check-layers
	scripts/check-cycles $(LIBA)

check-asan:
	$(MAKE) BUILD=build-asan CC=clang CFLAGS='-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined' test

# Every program under valgrind's memcheck, on the FAST pipeline's streams
# (made first when they are not there; FRESH=1 makes them again): errors and
# leaks, a row per command in tests/valgrind-results.md.  Not part of test:
# about 15 minutes on one core (scripts/check-valgrind).
check-valgrind: all $(BUILD)/obj/tools/bf-tstat $(BUILD)/obj/tools/bf-dump
	BIN=$(abspath $(BUILD)/bin) TOOLS=$(abspath $(BUILD)/obj/tools) scripts/check-valgrind

# libFuzzer harnesses (tests/fuzz/README): the library is built once with
# coverage and the sanitizers (undefined behaviour stops the run, as a crash
# does), and every tests/fuzz/fuzz_*.c links against it.
FUZZERS := $(patsubst tests/fuzz/%.c,build-fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_CFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_LIB_OBJ := $(patsubst lib/%.c,build-fuzz/obj/%.o,$(LIB_SRC))
build-fuzz/obj/%.o: lib/%.c $(HEADERS)
	@mkdir -p $(@D)
	clang $(BF_CFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<
build-fuzz/libbf.a: $(FUZZ_LIB_OBJ)
	rm -f $@
	ar rcs $@ $^
$(FUZZERS): build-fuzz/%: tests/fuzz/%.c build-fuzz/libbf.a $(HEADERS) $(wildcard tests/fuzz/*.h)
	clang $(BF_CFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< build-fuzz/libbf.a $(LDLIBS)

fuzz: $(FUZZERS)
	@for f in $(FUZZERS); do \
	  n=$$(basename $$f); mkdir -p build-fuzz/corpus-$$n; \
	  echo "fuzz: $$n for $(FUZZ_SECONDS)s"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
	      build-fuzz/corpus-$$n tests/fuzz/corpus/$$n 2>build-fuzz/$$n.log || { tail -40 build-fuzz/$$n.log; exit 1; }; \
	  grep -E 'stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss' build-fuzz/$$n.log; \
	done

bench: all
	@$(MAKE) --no-print-directory -C bench

pipeline: all
	@$(MAKE) --no-print-directory -C examples/pipeline

deps:
	scripts/deps

deps-emu:
	scripts/deps-emu

MAN := $(wildcard man/man1/*.1 man/man5/*.5 man/man7/*.7)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include/bf \
	  $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(PREFIX)/share/man/man7
	install -m 755 $(PROGS) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(LIBA) $(DESTDIR)$(PREFIX)/lib/
	install -m 644 $(wildcard include/bf/*.h) $(DESTDIR)$(PREFIX)/include/bf/
	for m in $(MAN); do install -m 644 $$m $(DESTDIR)$(PREFIX)/share/man/$$(basename $$(dirname $$m))/; done
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(shell sed -n 's/.*BF_VERSION "\(.*\)"/\1/p' cmd/common/cli.h)|' \
	  bitforge.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/bitforge.pc

clean:
	rm -rf bin lib/libbf.a obj build-asan build-fuzz
	@$(MAKE) --no-print-directory -C bench clean 2>/dev/null || true

.PHONY: FORCE all test check-ref check-asan check-valgrind fuzz bench pipeline deps install clean emu-image
.SECONDARY:

# bf-export's and bf-import's files checked by the real clients: gguf's
# reader, llama.cpp (llama-cpp-python) and safetensors (tests/interop/).
# scripts/deps-interop installs them; without them the checks are skipped.
check-interop: all
	tests/interop/run.sh
.PHONY: check-interop
