#!/usr/bin/env bash
# Run every ctvis test and end with one line: "N passed, N failed".
#
# A test is any of
#   build/tests/test-*        C unit tests          (tests/unit/test-*.c)
#   tests/cli/*.sh            shell tests of the tools
#   tests/ref/test_*.py       parity tests against PyTorch/scipy/nibabel ($PYTHON)
# Each prints one line per case: "ok NAME", "not ok NAME: why" or "skip NAME: why".
# A test program that exits non-zero without a "not ok" line counts as one failure.
#
#   tests/run.sh                 all tests
#   tests/run.sh stream          only tests whose file name contains "stream"
# CT_BUILD (default build) picks the binaries; CT_VALGRIND=1 runs C programs under valgrind.
set -u
cd "$(dirname "$0")/.."
export CT_BUILD=${CT_BUILD:-build}
export CT_BIN=$PWD/$CT_BUILD/bin
export PATH=$CT_BIN:$PATH
export PYTHON=${PYTHON:-/usr/bin/python3}
export CT_ROOT=$PWD
export CT_DATA=${CT_DATA:-$PWD/../shared/data}
export CT_COMPRESS=            # tests choose their codec explicitly
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
filter=${1:-}

pass=0 fail=0 skip=0
failed=()
log=$(mktemp)
trap 'rm -f "$log"' EXIT

run_one() {  # run_one NAME CMD...
    local name=$1; shift
    local t0=$SECONDS
    "$@" >"$log" 2>&1
    local rc=$?
    local p f s
    p=$(grep -c '^ok ' "$log")
    f=$(grep -c '^not ok ' "$log")
    s=$(grep -c '^skip ' "$log")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
        echo "not ok $name: exited with status $rc" >>"$log"
    fi
    pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
    printf '%-40s %3d ok %3d failed %3d skipped  (%ds)\n' "$name" "$p" "$f" "$s" $((SECONDS - t0))
    if [ "$f" -gt 0 ]; then
        failed+=("$name")
        grep -v '^ok ' "$log" | sed 's/^/    /' | head -60
    fi
    grep '^skip ' "$log" | sed 's/^/    /'
}

for t in "$CT_BUILD"/tests/test-*; do
    [ -x "$t" ] || continue
    case "$t" in *.d) continue ;; esac
    [ -n "$filter" ] && [[ "$t" != *"$filter"* ]] && continue
    if [ "${CT_VALGRIND:-0}" = 1 ]; then
        run_one "unit/$(basename "$t")" valgrind -q --error-exitcode=99 --leak-check=full "$t"
    else
        run_one "unit/$(basename "$t")" "$t"
    fi
done
for t in tests/cli/*.sh; do
    [ -f "$t" ] || continue
    [ "$(basename "$t")" = lib.sh ] && continue
    [ -n "$filter" ] && [[ "$t" != *"$filter"* ]] && continue
    run_one "cli/$(basename "$t")" bash "$t"
done
for t in tests/ref/test_*.py; do
    [ -f "$t" ] || continue
    [ -n "$filter" ] && [[ "$t" != *"$filter"* ]] && continue
    run_one "ref/$(basename "$t")" "$PYTHON" "$t"
done

echo
[ "$skip" -gt 0 ] && echo "$skip skipped (see the skip lines above)"
[ ${#failed[@]} -gt 0 ] && echo "failing: ${failed[*]}"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
