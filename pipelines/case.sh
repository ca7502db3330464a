#!/usr/bin/env bash
# pipelines/case.sh - run ONE case of a dataset, the unit that make, Slurm and GNU parallel share.
#
#   pipelines/case.sh ID CT SEG        run the case (pipelines/stages.sh: stage_case) unless done
#   pipelines/case.sh --begin MANIFEST start a run: progress clock, clear old failure markers
#   pipelines/case.sh --once           the once-per-run step (stage_once), into $OUT/once
#   pipelines/case.sh --shard I/N MANIFEST   run the cases of shard I of N (a Slurm array task)
#   pipelines/case.sh --progress       print the progress line of the run in $OUT
#
# Outputs under $OUT (default out):
#   cases/ID.EXT      the case's result, written atomically: its presence means "done"
#                     (today cases/ID.ctv, its ct.probs/1 record; rows/ID.csv its CSV row)
#   keep/ID.NAME.ctv  the streams named in $KEEP (case, windows, tokens, organ; default: organ)
#   log/ID.log        the stages' stderr (their -v timings, or the error)
#   status/ID.ok      "SECONDS" / status/ID.failed "SECONDS<TAB>first error line"
# A failing case leaves no result and no kept file, prints one line "ID: FAILED ..." on stderr
# and exits 1; the others go on.  After each case a progress line goes to stderr:
#   case7 ok 3.1 s | 12/40 done, 1 failed | 2.4 cases/min | ETA 11m
set -uo pipefail
PIPE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export OUT=${OUT:-out} THREADS=${THREADS:-1} KEEP=${KEEP-organ} WEIGHTS=${WEIGHTS:-weights.ctv}
export RESAMPLE_FLAGS=${RESAMPLE_FLAGS:-} MASKPOOL_FLAGS=${MASKPOOL_FLAGS:-} ENCODE_FLAGS=${ENCODE_FLAGS:-}
export VQ_FLAGS=${VQ_FLAGS:-} ZEROSHOT_FLAGS=${ZEROSHOT_FLAGS:-} METRICS_FLAGS=${METRICS_FLAGS:-}
export LABELS=${LABELS:-}
# shellcheck source=stages.sh
. "$PIPE/stages.sh"

die() { echo "case.sh: $*" >&2; exit 1; }
now() { date +%s.%N; }

# count ok|failed: cases with a result / with a failure marker
count() {
    local n
    if [ "$1" = ok ]; then n=$(find "$OUT/cases" -maxdepth 1 -name "*.$RESULT_EXT" 2>/dev/null | wc -l)
    else n=$(find "$OUT/status" -maxdepth 1 -name "*.failed" 2>/dev/null | wc -l); fi
    echo "$n"
}

# progress [PREFIX]: "PREFIX | done/total, failed | rate | ETA" from the markers and $OUT/.run
progress() {
    local run start base total ok failed
    run=$(cat "$OUT/.run" 2>/dev/null) || { echo "${1:-no run started in $OUT}"; return; }
    read -r start base total <<<"$run"
    ok=$(count ok); failed=$(count failed)
    awk -v p="${1:-}" -v s="$start" -v b="$base" -v n="$total" -v ok="$ok" -v f="$failed" -v t="$(now)" 'BEGIN {
        done = ok + f; el = t - s; new = done - b
        line = sprintf("%d/%d done", done, n); if (f) line = line sprintf(", %d failed", f)
        if (new > 0 && el > 0) {
            r = new / el; line = line sprintf(" | %.1f cases/min", 60 * r)
            left = (n - done) / r
            if (left >= 3600) eta = sprintf("%dh%02dm", left / 3600, (left % 3600) / 60)
            else if (left >= 60) eta = sprintf("%dm%02ds", left / 60, left % 60)
            else eta = sprintf("%ds", left)
            if (done < n) line = line " | ETA " eta
        }
        print (p == "" ? "" : p " | ") line
    }'
}

# keep NAME: inside stage_case, pass the stream through, saving it when NAME is in $KEEP
keep() {
    case " $KEEP " in
    *" $1 "*) tee "$OUT/keep/.$CASE_ID.$1.ctv.$$" ;;
    *) cat ;;
    esac
}

run_case() {
    local id=$1 ct=$2 seg=$3 res t0 t1 secs err name
    res="$OUT/cases/$id.$RESULT_EXT"
    [ -e "$res" ] && [ -z "${FORCE:-}" ] && return 0
    mkdir -p "$OUT/cases" "$OUT/log" "$OUT/status" "$OUT/keep" || die "$OUT: cannot create directories"
    CASE_ID=$id
    rm -f "$OUT/status/$id.ok" "$OUT/status/$id.failed"
    trap 'rm -f "$res.tmp.$$" "$OUT"/keep/."$id".*.ctv.$$ "$OUT"/rows/."$id".*.$$; exit 130' INT TERM
    t0=$(now)
    stage_case "$id" "$ct" "$seg" >"$res.tmp.$$" 2>"$OUT/log/$id.log"
    local rc=$?
    t1=$(now)
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    if [ $rc = 0 ]; then
        for name in $KEEP; do
            [ -e "$OUT/keep/.$id.$name.ctv.$$" ] && mv "$OUT/keep/.$id.$name.ctv.$$" "$OUT/keep/$id.$name.ctv"
        done
        mv "$res.tmp.$$" "$res" && echo "$secs" >"$OUT/status/$id.ok"
        echo "$(progress "$id ok $secs s")" >&2
        return 0
    fi
    rm -f "$res.tmp.$$" "$OUT"/keep/."$id".*.ctv.$$
    # the first line of a stage that reports a problem (not its -v chatter nor mask-pool's warning
    # for a missing organ)
    err=$(grep -v -E '[0-9] m?s( |,|\)|$)|peak RSS|untrained|reused|: BLAS: |kernels: |mean err [0-9.]+$|no window for' \
        "$OUT/log/$id.log" | head -1)
    [ -n "$err" ] || err="exit status $rc (see $OUT/log/$id.log)"
    printf '%s\t%s\n' "$secs" "$err" >"$OUT/status/$id.failed"
    echo "$id: FAILED: $err" >&2
    echo "$(progress "$id failed $secs s")" >&2
    return 1
}

case "${1:-}" in
--begin)
    [ $# = 2 ] || die "usage: case.sh --begin MANIFEST"
    total=$(grep -c . "$2") || die "$2: empty or unreadable manifest"
    mkdir -p "$OUT/status" || die "$OUT: cannot create directory"
    rm -f "$OUT"/status/*.failed
    echo "$(now) $(count ok) $total" >"$OUT/.run"
    ;;
--once)
    mkdir -p "$OUT/once" || die "$OUT: cannot create directory"
    stage_once || die "the once-per-run step failed"
    touch "$OUT/once/.done"
    ;;
--shard)
    [ $# = 3 ] || die "usage: case.sh --shard I/N MANIFEST"
    "$PIPE/manifest.sh" --shard "$2" "$3" >"$OUT/.shard.$$" || { rm -f "$OUT/.shard.$$"; exit 1; }
    while IFS=$'\t' read -r id ct seg; do
        run_case "$id" "$ct" "$seg" </dev/null
    done <"$OUT/.shard.$$"
    rm -f "$OUT/.shard.$$"
    ;;     # failed cases are in the markers: the shard itself succeeded
--progress)
    progress
    ;;
-h|--help|"")
    sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//'
    [ -n "${1:-}" ]
    ;;
-*)
    die "unknown option '$1'"
    ;;
*)
    [ $# = 3 ] || die "usage: case.sh ID CT SEG"
    run_case "$@"
    ;;
esac
