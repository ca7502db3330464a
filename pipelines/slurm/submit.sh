#!/usr/bin/env bash
# pipelines/slurm/submit.sh - a dataset run on a Slurm cluster, from the manifest that
# pipelines/dataset.mk and pipelines/parallel.sh read (pipelines/manifest.sh makes it).
#
#   OUT=/shared/out WEIGHTS=visd.ctv pipelines/slurm/submit.sh [-n SHARDS] MANIFEST [-- SBATCH-OPTIONS...]
#
# Submits three jobs of pipelines/slurm/step.sbatch and prints their ids (once, array, merge):
#   once    the once-per-run step
#   array   --array=0-(SHARDS-1), --dependency=afterok:once; task I runs the cases of shard I
#           (manifest lines I, I+SHARDS, ...), skipping those that already have a result
#   merge   --dependency=afterok:array; writes $OUT/summary.tsv, the merged probabilities
#           ($OUT/probs.ctv, probs.csv) and, with LABELS set, the metrics ($OUT/metrics.txt ...)
# SHARDS defaults to min(number of cases, 64).  SBATCH-OPTIONS go to every job (--partition,
# --time, --cpus-per-task=N: then THREADS=N per case).  Logs: $OUT/slurm/<job>_<task>.out.
# Re-submitting after an interruption redoes only the cases without a result.  Progress:
#   OUT=... pipelines/case.sh --progress    (or tail -f $OUT/slurm/*.out)
set -euo pipefail
PIPE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../driver.sh
. "$PIPE/driver.sh"
driver_args submit.sh -n "$@"
shards=$count
command -v sbatch >/dev/null || driver_die "sbatch not found (Slurm client)"
n=$(grep -c . "$manifest") || driver_die "$manifest: no case"
[ -n "$shards" ] || shards=$((n < 64 ? n : 64))
[ "$shards" -le "$n" ] || shards=$n
export OUT=${OUT:-out}
mkdir -p "$OUT/slurm"
OUT=$(cd "$OUT" && pwd)
export CTVIS_PIPE=$PIPE MANIFEST
MANIFEST=$(cd "$(dirname "$manifest")" && pwd)/$(basename "$manifest")
[ -z "${WEIGHTS:-}" ] || export WEIGHTS=$(cd "$(dirname "$WEIGHTS")" && pwd)/$(basename "$WEIGHTS")
[ -z "${LABELS:-}" ] || export LABELS=$(cd "$(dirname "$LABELS")" && pwd)/$(basename "$LABELS")

"$PIPE/case.sh" --begin "$MANIFEST"
step=$PIPE/slurm/step.sbatch
log=$OUT/slurm
once=$(sbatch --parsable --export=ALL -o "$log/%j_once.out" "${more[@]}" "$step" once)
array=$(sbatch --parsable --export=ALL -o "$log/%A_%a.out" --array="0-$((shards - 1))" \
        --dependency="afterok:${once%%;*}" "${more[@]}" "$step" shard)
merge=$(sbatch --parsable --export=ALL -o "$log/%j_merge.out" --dependency="afterok:${array%%;*}" "${more[@]}" "$step" merge)
echo "${once%%;*} ${array%%;*} ${merge%%;*}"
