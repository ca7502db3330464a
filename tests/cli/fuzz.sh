#!/usr/bin/env bash
# The standing fuzzing campaign, short: build the libFuzzer targets (make fuzz-build, clang +
# ASan/UBSan), replay every kept crashing input of fuzz/regress/ and fuzz each target for
# CT_FUZZ_SECS seconds (default 20) from its seed corpus.  Skips, saying so, when clang or its
# libFuzzer runtime (Debian: clang, libclang-rt-dev) is missing.  `make fuzz` runs the long campaign.
source "$(dirname "$0")/lib.sh"
secs=${CT_FUZZ_SECS:-20}
if ! command -v "${FUZZ_CC:-clang}" >/dev/null 2>&1; then
    skip "fuzz: all targets" "clang not installed (scripts/deps.sh test installs it)"; exit 0
fi
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' >"$T/probe.c"
if ! "${FUZZ_CC:-clang}" -fsanitize=fuzzer,address,undefined -o "$T/probe" "$T/probe.c" >/dev/null 2>&1; then
    skip "fuzz: all targets" "clang's libFuzzer runtime missing (Debian: libclang-rt-dev)"; exit 0
fi
if ! make -s --no-print-directory fuzz-build >"$T/build.log" 2>&1; then
    notok "fuzz: build" "$(grep -m3 error "$T/build.log")"; exit 0
fi
ok "fuzz: build"
for bin in build/fuzz/bin/fuzz-*; do
    case "$bin" in *.d) continue ;; esac
    t=$(basename "$bin")
    # a fixed seed, and a generous per-input timeout for a loaded CI machine
    line=$(FUZZ_BUILD=build/fuzz FUZZ_SEED=1 FUZZ_TIMEOUT=60 scripts/fuzz.sh "$secs" "$t" 2>&1)
    case "$line" in
    *"no finding"*) ok "fuzz: $line" ;;
    *) notok "fuzz: $t" "$line" ;;
    esac
done
