#!/usr/bin/env bash
# pipelines/parallel.sh - a dataset with GNU parallel (Debian's `parallel`), from the manifest that
# pipelines/dataset.mk and the Slurm scripts read; same per-case step, markers and final step.
#
#   OUT=out WEIGHTS=visd.ctv pipelines/parallel.sh [-j N] MANIFEST [-- PARALLEL-OPTIONS...]
#
# Runs the once-per-run step, then `pipelines/case.sh ID CT SEG` for every manifest line, N at a
# time (default: the number of cores), then pipelines/merge.sh.  Settings are the environment
# variables of pipelines/stages.sh.  Re-running skips the cases that have a result; the
# PARALLEL-OPTIONS go to parallel (e.g. -S node1,node2 --sshdelay 0.1 with a shared $OUT, or
# --joblog FILE).  Exit status: merge.sh's (1 when a case failed or is missing).
set -uo pipefail
PIPE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() { echo "parallel.sh: $*" >&2; exit 1; }
jobs=$(nproc)
if [ "${1:-}" = -j ]; then
    [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "-j: expected a positive count"
    jobs=$2; shift 2
fi
case "${1:-}" in -h|--help) sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;; esac
[ $# -ge 1 ] || die "usage: parallel.sh [-j N] MANIFEST [-- PARALLEL-OPTIONS...]"
manifest=$1; shift
[ "${1:-}" = -- ] && shift
[ -r "$manifest" ] || die "$manifest: cannot read the manifest"
command -v parallel >/dev/null || die "GNU parallel is not installed (Debian: apt-get install parallel)"
export OUT=${OUT:-out}
mkdir -p "$OUT" || die "$OUT: cannot create directory"

"$PIPE/case.sh" --begin "$manifest" || exit 1
if [ ! -e "$OUT/once/.done" ] || [ "${WEIGHTS:-weights.ctv}" -nt "$OUT/once/.done" ]; then
    "$PIPE/case.sh" --once || exit 1
fi
# case.sh exits 1 for a failed case: recorded in its markers, so parallel's count is not needed
parallel --will-cite --colsep '\t' -j "$jobs" "$@" "$PIPE/case.sh" {1} {2} {3} :::: "$manifest" || :
"$PIPE/merge.sh" "$manifest"
