#!/usr/bin/env bash
# The main job on the bundled example: a synthetic chest CT with its
# TotalSegmentator-style label map and a structured report, through every
# ctvis stage that exists, ending in the organ tokens of the image encoder.
#   pipelines/demo.sh [OUTDIR]      (make demo: OUTDIR = build/demo)
# The encoder weights are seeded random (untrained): the authors' checkpoints
# are Git-LFS files that are not downloaded here; tools/ctvis-convert.py turns
# them into a weights file when you have them.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-build/demo}
export PATH=${CT_BIN:-$root/${CT_BUILD:-build}/bin}:$PATH
PYTHON=${PYTHON:-/usr/bin/python3}
mkdir -p "$out"
step() { printf '\n== %s\n' "$*"; }

step "1. the bundled example: synthetic chest CT (HU) + TotalSegmentator-style labels, as NIfTI"
ct-phantom -o "$out/phantom"
ls -l "$out/phantom"

step "2. ct-resample: merge classes into organs, resize to 3x1x1 mm, window, crop, pad (fVLM recipe)"
ct-resample "$out/phantom/ct.nii.gz" --label "$out/phantom/seg.nii.gz" --id phantom \
    --write-nifti "$out/nifti" -o "$out/case.ctv"
ct-ls -S "$out/case.ctv"

step "3. mask-pool: one window per organ, token flags for the 4 encoder stages"
mask-pool "$out/case.ctv" -o "$out/windows.ctv"
ct-ls -S -t tok1/lung -t tok4/lung -t tok4/heart -t tok4/esophagus -t tok4/aorta "$out/windows.ctv" |
    grep -E '^record|tok|window_size'

step "4. encode: 3-D ResNet-18 + proj1..4 on each window (seeded random weights, untrained)"
[ -s "$out/weights-random.ctv" ] ||
    "$PYTHON" "$root/tools/ctvis-convert.py" --random 1 --encoder-only -o "$out/weights-random.ctv"
encode -w "$out/weights-random.ctv" -j "$(nproc)" -v "$out/windows.ctv" -o "$out/tokens.ctv"
ct-ls "$out/tokens.ctv" | grep -E '^record|emb'

step "5. report-label: the phantom's structured report -> per-organ normal/abnormal labels and texts"
report-label "$root/examples/phantom-report.json" -o "$out/report.ctv"
report-label --from-stream -f csv "$out/report.ctv"

step "6. the tokens read from Python (the reader of schemas/README.md), the mask exported for a viewer"
"$PYTHON" "$root/examples/tokens_summary.py" "$out/tokens.ctv"
ct-export -t mask -o "$out/mask.nii.gz" "$out/case.ctv"
ls -l "$out/mask.nii.gz" "$out/nifti"
printf '\ndemo done in %d s; outputs in %s\n' "$SECONDS" "$out"
