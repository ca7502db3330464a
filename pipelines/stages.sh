# pipelines/stages.sh - WHAT a dataset run computes: the one place to change when a stage is added.
# Sourced by pipelines/case.sh and pipelines/merge.sh, which make (pipelines/dataset.mk), Slurm
# (pipelines/slurm/) and GNU parallel (pipelines/parallel.sh) all run; they handle the how
# (manifest, resumption, failures, progress).  Settings come from the environment:
#   OUT       output directory                    WEIGHTS  ct.weights/1 file
#   THREADS   -j of the compute stages (1)        KEEP     intermediates to keep: "case windows tokens"
#   RESAMPLE_FLAGS, MASKPOOL_FLAGS, ENCODE_FLAGS  extra options of each stage
#   LABELS    the dataset's label CSV (for the metrics, later)
#
# stage_once       run once per run, before any case; writes into $OUT/once (prompt features later)
# stage_case ID CT SEG   one case: writes its result to stdout; kept intermediates through `keep NAME`
# stage_merge FILE...    the final step over the results of the cases that succeeded, in manifest
#                  order; writes into $OUT
#
# Today the cases end at the encoder, whose tokens are large (86 MB for a 112x256x352 case, 4 TB for
# CT-RATE), so they stream through the pipe and the kept result is ct-ls's JSON summary of them
# (ids, organs, token counts, per-tensor statistics).  When vq-recon and zeroshot land:
#   stage_once:   text-encode -w "$WEIGHTS" -v -o "$OUT/once/prompts.ctv"
#   stage_case:   ... encode ... | keep tokens | vq-recon -w "$WEIGHTS" -j "$THREADS" -v | keep organ \
#                   | zeroshot --prompts "$OUT/once/prompts.ctv" -v
#   RESULT_EXT=ctv (the ct.probs/1 record of the case)
#   stage_merge:  cat "$@" >"$OUT/probs.ctv", then the probabilities CSV and the metrics from $LABELS

RESULT_EXT=json
# the tools of this checkout first, as pipelines/demo.sh (CT_BIN overrides)
PATH=${CT_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/${CT_BUILD:-build}/bin}:$PATH

stage_once() {
    # the weights are read by every case: check them once instead of failing 3,039 times
    ct-pick --expect ct.weights/1 "$WEIGHTS" >/dev/null
}

stage_case() {
    local id=$1 ct=$2 seg=$3
    # shellcheck disable=SC2086  # the *_FLAGS are option lists
    ct-resample "$ct" --label "$seg" --id "$id" -v $RESAMPLE_FLAGS | keep case |
        mask-pool -v $MASKPOOL_FLAGS | keep windows |
        encode -w "$WEIGHTS" -j "$THREADS" -v $ENCODE_FLAGS | keep tokens |
        ct-ls --json
}

stage_merge() {
    cat "$@" >"$OUT/result.jsonl.tmp" && mv "$OUT/result.jsonl.tmp" "$OUT/result.jsonl"
    echo "merged: $OUT/result.jsonl ($# cases, $(wc -l <"$OUT/result.jsonl") records)"
}
