# pipelines/stages.sh - WHAT a dataset run computes: the one place to change when a stage is added.
# Sourced by pipelines/case.sh and pipelines/merge.sh, which make (pipelines/dataset.mk), Slurm
# (pipelines/slurm/) and GNU parallel (pipelines/parallel.sh) all run; they handle the how
# (manifest, resumption, failures, progress).  Settings come from the environment:
#   OUT       output directory                    WEIGHTS  ct.weights/1 file
#   THREADS   -j of the compute stages (1)        KEEP     streams to keep: "case windows tokens organ"
#   RESAMPLE_FLAGS, MASKPOOL_FLAGS, ENCODE_FLAGS, VQ_FLAGS  extra options of each stage
#   LABELS    the dataset's label CSV (VolumeName + 0/1 columns) or ct.labels/1: the metrics
#   ZEROSHOT_FLAGS, METRICS_FLAGS  extra options of zeroshot per case / of zeroshot --metrics
#
# stage_once       run once per run, before any case; writes into $OUT/once
# stage_case ID CT SEG   one case: writes its result to stdout; kept intermediates through `keep NAME`
# stage_merge FILE...    the final step over the results of the cases that succeeded, in manifest
#                  order; writes into $OUT
#
# The chain, CT to probabilities:
#   stage_once:  checks the weights, text-encode -> $OUT/once/prompts.ctv (the prompt features,
#                computed once per run: they depend on the weights only)
#   stage_case:  ct-resample | keep case | mask-pool | keep windows | encode | keep tokens |
#                vq-recon | keep organ | zeroshot --prompts $OUT/once/prompts.ctv
#                result: cases/ID.ctv, the case's ct.probs/1 record; zeroshot --csv also writes
#                the case's row of the released CSV to rows/ID.csv (renamed into place only when
#                the whole pipe succeeded).  The organ features (ct.organ/1: feature, errors,
#                anomaly maps; ~13 kB per small phantom) are kept as keep/ID.organ.ctv when
#                "organ" is in $KEEP, the default of case.sh and dataset.mk (KEEP= keeps none).
#   stage_merge: probs.ctv (the cases' ct.probs/1 records, in manifest order), probs.csv (the
#                released layout: one header, the cases' rows), and with $LABELS the metrics:
#                metrics.txt (table), metrics.csv, metrics.json, roc.svg (zeroshot --metrics)
# To add a stage: put it in the pipe of stage_case (with a `keep NAME` after it if its stream is
# worth keeping), change RESULT_EXT if the result changes kind, and stage_merge accordingly.

RESULT_EXT=ctv
# the tools of this checkout first, as pipelines/demo.sh (CT_BIN overrides)
PATH=${CT_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/${CT_BUILD:-build}/bin}:$PATH

stage_once() {
    # the weights are read by every case: check them once instead of failing 3,039 times
    ct-pick --expect ct.weights/1 "$WEIGHTS" >/dev/null &&
        text-encode -w "$WEIGHTS" -j "$THREADS" -v -o "$OUT/once/prompts.ctv"
}

stage_case() {
    local id=$1 ct=$2 seg=$3 row
    row="$OUT/rows/.$id.csv.$$"
    mkdir -p "$OUT/rows" || return 1
    # shellcheck disable=SC2086  # the *_FLAGS are option lists
    ct-resample "$ct" --label "$seg" --id "$id" -v $RESAMPLE_FLAGS | keep case |
        mask-pool -v $MASKPOOL_FLAGS | keep windows |
        encode -w "$WEIGHTS" -j "$THREADS" -v $ENCODE_FLAGS | keep tokens |
        vq-recon -w "$WEIGHTS" -j "$THREADS" -v ${VQ_FLAGS:-} | keep organ |
        zeroshot --prompts "$OUT/once/prompts.ctv" --csv "$row" -v ${ZEROSHOT_FLAGS:-} ||
        { rm -f "$row"; return 1; }
    mv "$row" "$OUT/rows/$id.csv"
}

# merged FILE: write stdin to $OUT/FILE atomically
merged() { cat >"$OUT/.$1.tmp" && mv "$OUT/.$1.tmp" "$OUT/$1" || { rm -f "$OUT/.$1.tmp"; return 1; }; }

stage_merge() {
    local f rows=()
    for f in "$@"; do
        rows+=("$OUT/rows/$(basename "$f" ".$RESULT_EXT").csv")
        [ -s "${rows[-1]}" ] || { echo "stage_merge: ${rows[-1]}: missing (remove $f to redo the case)" >&2; return 1; }
    done
    cat "$@" | merged probs.ctv || return 1
    # the released CSV: the header once (every row file has it), then each case's row
    { head -n 1 "${rows[0]}" && for f in "${rows[@]}"; do tail -n +2 "$f"; done; } | merged probs.csv || return 1
    echo "merged: $OUT/probs.ctv, $OUT/probs.csv ($# cases)"
    [ -n "${LABELS:-}" ] || { echo "no LABELS: no metrics"; return 0; }
    # shellcheck disable=SC2086
    zeroshot --metrics --labels "$LABELS" --csv "$OUT/metrics.csv" --json "$OUT/metrics.json" \
        --roc "$OUT/roc.svg" -o "$OUT/metrics.txt" ${METRICS_FLAGS:-} "$OUT/probs.ctv" || return 1
    echo "metrics: $OUT/metrics.txt (.csv, .json), $OUT/roc.svg"
}
