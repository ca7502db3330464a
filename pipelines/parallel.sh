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
# shellcheck source=driver.sh
. "$PIPE/driver.sh"
driver_args parallel.sh -j "$@"
jobs=${count:-$(nproc)}
command -v parallel >/dev/null || driver_die "GNU parallel is not installed (Debian: apt-get install parallel)"
export OUT=${OUT:-out}
mkdir -p "$OUT" || driver_die "$OUT: cannot create directory"

"$PIPE/case.sh" --begin "$manifest" || exit 1
if [ ! -e "$OUT/once/.done" ] || [ "${WEIGHTS:-weights.ctv}" -nt "$OUT/once/.done" ]; then
    "$PIPE/case.sh" --once || exit 1
fi
# case.sh exits 1 for a failed case: recorded in its markers, so parallel's count is not needed
parallel --will-cite --colsep '\t' -j "$jobs" "${more[@]}" "$PIPE/case.sh" {1} {2} {3} :::: "$manifest" || :
"$PIPE/merge.sh" "$manifest"
