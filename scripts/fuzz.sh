#!/bin/sh
# Run the libFuzzer targets built by `make fuzz-build` (build/fuzz/bin/fuzz-*).
#   scripts/fuzz.sh SECONDS [TARGET...]     (TARGET: fuzz-stream, fuzz-nifti, ...)
# For each target: first every kept crashing input of fuzz/regress/<target>/ once (each
# must pass now), then SECONDS of fuzzing from the seed corpus fuzz/corpus/<target>/ (copied
# to build/fuzz/corpus/<target>, which keeps growing across runs).  Prints one line per
# target: executions, coverage (cov: edges, ft: features), corpus size, and any finding,
# which libFuzzer saves under build/fuzz/artifacts/<target>/.  Exit 1 when a target fails.
# FUZZ_SEED=N fixes libFuzzer's seed; FUZZ_TIMEOUT (default 20 s) is the slowest input allowed.
set -u
secs=${1:?usage: scripts/fuzz.sh SECONDS [TARGET...]}
shift
B=${FUZZ_BUILD:-build/fuzz}
[ $# -gt 0 ] || set -- $(cd "$B/bin" && ls fuzz-* 2>/dev/null | grep -v "\.")
# leaks are reported by the targets' own tests; allocation limits as the tools' policy
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
status=0
for t in "$@"; do
    bin=$B/bin/$t
    [ -x "$bin" ] || { echo "$t: not built (make fuzz-build)"; status=1; continue; }
    mkdir -p "$B/corpus/$t" "$B/artifacts/$t"
    [ -d "fuzz/corpus/$t" ] && cp -n fuzz/corpus/"$t"/* "$B/corpus/$t/" 2>/dev/null
    if [ -d "fuzz/regress/$t" ] && [ -n "$(ls "fuzz/regress/$t")" ]; then
        if ! "$bin" -rss_limit_mb=3072 -malloc_limit_mb=3072 fuzz/regress/"$t"/* >"$B/$t.regress.log" 2>&1; then
            echo "$t: a kept crashing input fails again (see $B/$t.regress.log)"
            status=1
            continue
        fi
    fi
    # shellcheck disable=SC2086
    "$bin" -max_total_time="$secs" -print_final_stats=1 -timeout="${FUZZ_TIMEOUT:-20}" ${FUZZ_SEED:+-seed=$FUZZ_SEED} \
        -rss_limit_mb=3072 -malloc_limit_mb=3072 \
        -artifact_prefix="$B/artifacts/$t/" "$B/corpus/$t" >"$B/$t.log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$B/$t.log" | tail -1)
    cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$B/$t.log" | tail -1)
    n=$(ls "$B/corpus/$t" | wc -l)
    if [ $rc -eq 0 ]; then
        echo "$t: ${execs:-?} executions in ${secs}s, ${cov:-no coverage line}, corpus $n inputs, no finding"
    else
        echo "$t: FINDING after ${execs:-?} executions (exit $rc): $(grep -m1 -E 'ERROR|runtime error|SUMMARY' "$B/$t.log")"
        echo "    input: $(ls -t "$B/artifacts/$t" | head -1)  log: $B/$t.log"
        status=1
    fi
done
exit $status
