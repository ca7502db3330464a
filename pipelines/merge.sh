#!/usr/bin/env bash
# pipelines/merge.sh - the final step of a dataset run (make, Slurm or GNU parallel):
#
#   OUT=out pipelines/merge.sh MANIFEST
#
# Looks up every case of MANIFEST in $OUT (pipelines/case.sh's markers), writes $OUT/summary.tsv
# (id, status ok|failed|missing, seconds, error), runs stage_merge (pipelines/stages.sh) on the
# results of the cases that succeeded, in manifest order, and prints the summary, listing every
# failed or missing case.  Exit status 1 when any case failed or is missing (after writing all of
# the above), so a scheduler sees it; 0 when all are done.
set -uo pipefail
PIPE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export OUT=${OUT:-out}
# shellcheck source=stages.sh
. "$PIPE/stages.sh"
die() { echo "merge.sh: $*" >&2; exit 1; }
[ $# = 1 ] || die "usage: OUT=DIR merge.sh MANIFEST"
[ -r "$1" ] || die "$1: cannot read the manifest"

results=() ok=0 failed=0 missing=0
tmp="$OUT/summary.tsv.tmp"
printf 'id\tstatus\tseconds\terror\n' >"$tmp" || die "$OUT: cannot write"
while IFS=$'\t' read -r id _; do
    [ -n "$id" ] || continue
    res="$OUT/cases/$id.$RESULT_EXT"
    if [ -e "$res" ]; then
        results+=("$res"); ok=$((ok + 1))
        printf '%s\tok\t%s\t\n' "$id" "$(cat "$OUT/status/$id.ok" 2>/dev/null)" >>"$tmp"
    elif [ -e "$OUT/status/$id.failed" ]; then
        failed=$((failed + 1))
        printf '%s\tfailed\t%s\n' "$id" "$(head -1 "$OUT/status/$id.failed")" >>"$tmp"
    else
        missing=$((missing + 1))
        printf '%s\tmissing\t\tnot run or interrupted\n' "$id" >>"$tmp"
    fi
done <"$1"
mv "$tmp" "$OUT/summary.tsv"

if [ $ok -gt 0 ]; then stage_merge "${results[@]}" || die "the merge step failed"; fi
total=$((ok + failed + missing))
secs=$(awk -F '\t' '$2 == "ok" { s += $3 } END { printf "%.0f", s }' "$OUT/summary.tsv")
echo "summary: $ok of $total cases done, $failed failed, $missing missing ($secs s of case time); $OUT/summary.tsv"
awk -F '\t' '$2 == "failed" || $2 == "missing" { printf "  %s %s: %s\n", $2, $1, $4 }' "$OUT/summary.tsv"
[ $((failed + missing)) = 0 ]
