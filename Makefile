# ctvis - one non-recursive GNU Makefile.  Every output goes under build/.
#
#   make            build every tool into build/bin
#   make check      install missing Debian packages, build, run all tests
#   make demo       run the main job on the bundled synthetic phantom
#   make asan       build with AddressSanitizer + UBSan into build/asan, run the tests
#   make bench      run the benchmarks in bench/ (slow; not tests)
#   make fuzz       build the libFuzzer targets (clang, ASan+UBSan) into build/fuzz and run
#                   each FUZZ_SECS seconds (default 600) on fuzz/corpus (fuzz/README.md)
#   make deps       install the Debian packages the build and the tests need
#   V=1             show full command lines

OPT    ?= -O2
# -march=native: for this machine only.  ARCH= (x86-64 baseline) or ARCH=-march=x86-64-v3 (AVX2
# CPUs) for binaries that run elsewhere: the Winograd kernels still pick AVX-512 / AVX2 at run
# time and OpenBLAS's kernels follow the CPU (lib/blas.c), so they lose little (docs/encode.md)
ARCH   ?= -march=native
# Debian's python: numpy, torch, scipy, nibabel, sklearn (the python3 on PATH may lack them)
PYTHON ?= /usr/bin/python3
BUILD  ?= build
SANITIZE ?=
PREFIX ?= /usr/local
DESTDIR ?=

PKGS         = msgpack libzstd yaml-0.1 openblas libdeflate jansson libpng
PKG_CFLAGS  := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS    := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# libnifti has no .pc file; link only the NIfTI-2 library (NIfTI-1 and -2 export the same names)
NIFTI_CFLAGS ?= -I/usr/include/nifti
NIFTI_LIBS   ?= -lnifti2 -lznz -lz

# -fno-math-errno lets sqrtf/floorf inline (errno is never read); no -ffast-math anywhere
CFLAGS  = -std=c11 -D_POSIX_C_SOURCE=200809L -g $(OPT) $(ARCH) $(SANITIZE) \
          -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -fno-math-errno
CPPFLAGS = -Ilib $(PKG_CFLAGS) $(NIFTI_CFLAGS) -MMD -MP
LDLIBS   = $(PKG_LIBS) $(NIFTI_LIBS) -lm -lpthread
LDFLAGS  = $(SANITIZE)

ifeq ($(V),1)
Q =
else
Q = @
endif

TOOLS     = $(notdir $(basename $(wildcard tools/*.c)))
LIB_SRC   = $(wildcard lib/*.c)
LIB_OBJ   = $(LIB_SRC:lib/%.c=$(BUILD)/lib/%.o)
LIB       = $(BUILD)/lib/libct.a
BINS      = $(TOOLS:%=$(BUILD)/bin/%)
UNIT_SRC  = $(wildcard tests/unit/test-*.c)
UNITS     = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all check test demo asan bench deps deps-build clean install format lint valgrind fuzz fuzz-build
all: $(BINS) $(UNITS)

$(BUILD)/lib/%.o: lib/%.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJ)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(BUILD)/bin/%: tools/%.c $(LIB)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CCLD    $@")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(LIB)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CCLD    $@")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

# The quick-start commands install what is missing first (CT_NO_DEPS=1 skips it).
deps:
	$(Q)scripts/deps.sh test
deps-build:
	$(Q)scripts/deps.sh build

check test: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)CT_BUILD=$(BUILD) PYTHON=$(PYTHON) tests/run.sh

demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)CT_BUILD=$(BUILD) pipelines/demo.sh $(BUILD)/demo

asan:
	$(Q)$(MAKE) --no-print-directory BUILD=build/asan OPT=-O1 \
	  SANITIZE="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" check

valgrind: all
	$(Q)CT_BUILD=$(BUILD) CT_VALGRIND=1 PYTHON=$(PYTHON) tests/run.sh

bench: all
	$(Q)CT_BUILD=$(BUILD) PYTHON=$(PYTHON) bench/run.sh

install: $(BINS)
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(BINS) $(DESTDIR)$(PREFIX)/bin

format:
	clang-format -i lib/*.c lib/*.h tools/*.c tests/unit/*.c

lint:
	cppcheck --quiet --enable=warning,performance,portability --std=c11 -Ilib lib tools

clean:
	rm -rf build

# ---- fuzzing: clang's libFuzzer under AddressSanitizer + UBSan (Debian: clang, libclang-rt-dev) ----
FUZZ_CC      ?= clang
FUZZ_SECS    ?= 600
FUZZ_BUILD    = build/fuzz
FUZZ_TARGETS  = $(notdir $(basename $(wildcard fuzz/fuzz-*.c)))
FUZZ_SAN      = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
# a 64 MiB tensor limit instead of 4 GiB - 1: a legitimate 4 GiB tensor is not a finding
FUZZ_CFLAGS   = -std=c11 -D_POSIX_C_SOURCE=200809L -g -O1 $(ARCH) $(FUZZ_SAN) -Wall -Wno-unused-command-line-argument \
                -DCT_MAX_TENSOR_BYTES='((size_t)64 << 20)'
FUZZ_LIB_OBJ  = $(LIB_SRC:lib/%.c=$(FUZZ_BUILD)/lib/%.o)

fuzz-build: $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/bin/%)

$(FUZZ_BUILD)/lib/%.o: lib/%.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  FUZZCC  $<")
	$(Q)$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_BUILD)/libct.a: $(FUZZ_LIB_OBJ)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(FUZZ_BUILD)/bin/fuzz-%: fuzz/fuzz-%.c fuzz/fuzz.h $(FUZZ_BUILD)/libct.a
	@mkdir -p $(@D)
	@$(if $(Q),echo "  FUZZLD  $@")
	$(Q)$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -D_DEFAULT_SOURCE -fsanitize=fuzzer -o $@ $< $(FUZZ_BUILD)/libct.a $(LDLIBS)

fuzz: fuzz-build
	$(Q)FUZZ_BUILD=$(FUZZ_BUILD) scripts/fuzz.sh $(FUZZ_SECS) $(FUZZ_TARGETS)

-include $(LIB_OBJ:.o=.d) $(BINS:%=%.d) $(UNITS:%=%.d)
