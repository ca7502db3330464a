#!/usr/bin/env bash
# The main job on the bundled example: a synthetic chest CT with its TotalSegmentator-style
# label map and a structured report, through every ctvis stage, from the CT to per-abnormality
# probabilities, anomaly maps and pictures.
#   pipelines/demo.sh [OUTDIR]      (make demo: OUTDIR = build/demo)
#
# THE WEIGHTS ARE SEEDED RANDOM, UNTRAINED: the authors' checkpoints are Git-LFS files that are
# not downloaded here, so every feature and probability below means nothing; the demo shows the
# pipeline, the formats and the pictures.  With the real checkpoints (ViSD-Boost's
# checkpoint.pth and checkpoint_vqvae.pth, CXR-BERT-specialized's vocab.txt):
#   tools/ctvis-convert.py --checkpoint checkpoint.pth --vqvae checkpoint_vqvae.pth \
#       --vocab vocab.txt -o visd-boost.ctv
#   WEIGHTS=visd-boost.ctv pipelines/demo.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-build/demo}
export PATH=${CT_BIN:-$root/${CT_BUILD:-build}/bin}:$PATH
PYTHON=${PYTHON:-/usr/bin/python3}
mkdir -p "$out"
step() { printf '\n== %s\n' "$*"; }
j=$(nproc)

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

weights=${WEIGHTS:-}
if [ -z "$weights" ]; then
    step "4. weights: SEEDED RANDOM, UNTRAINED (encoder, VQ-VAE, organ head, a small text encoder)"
    weights=$out/weights-random.ctv
    if [ ! -s "$weights" ]; then
        # the real vocabulary (CXR-BERT's vocab.txt) is not shipped: a small one made of the
        # prompts' words and letters stands in, with a 2-layer text encoder of width 256
        "$PYTHON" - "$root/pipelines/ct-rate-abnormalities.yaml" "$out/vocab.txt" <<'PY'
import re, sys, yaml
items = yaml.safe_load(open(sys.argv[1]))["items"]
words = sorted({w for it in items for p in (it["negative"], it["positive"])
                for w in re.findall(r"[a-z]+", p.lower())})
letters = "abcdefghijklmnopqrstuvwxyz"
toks = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ","] + words + list(letters) + ["##" + c for c in letters]
open(sys.argv[2], "w").write("\n".join(dict.fromkeys(toks)) + "\n")
PY
        "$PYTHON" "$root/tools/ctvis-convert.py" --random 1 --text-layers 2 --text-hidden 256 --text-heads 4 \
            --vocab "$out/vocab.txt" -o "$weights"
    fi
else
    step "4. weights: $weights"
fi
ct-ls "$weights" | grep -E "^record|untrained|seed"

step "5. encode: 3-D ResNet-18 + proj1..4 on each window"
encode -w "$weights" -j "$j" -v "$out/windows.ctv" -o "$out/tokens.ctv"
ct-ls "$out/tokens.ctv" | grep -E '^record|emb4'

step "6. vq-recon: VQ-VAE normality model + organ head -> organ features, reconstruction errors, anomaly maps"
vq-recon -w "$weights" -j "$j" -v "$out/tokens.ctv" -o "$out/organs.ctv"
ct-ls "$out/organs.ctv" | grep -E '^record|feature|anomaly|mean_err'

step "7. text-encode: the 16 CT-RATE prompt pairs through the text encoder (once per weights)"
text-encode -w "$weights" -j "$j" -v -o "$out/prompts.ctv"
text-encode -w "$weights" --tokens | sed -n 1,4p

step "8. zeroshot: per-abnormality probabilities (UNTRAINED WEIGHTS: these numbers mean nothing)"
zeroshot --prompts "$out/prompts.ctv" --csv "$out/probs.csv" -o "$out/probs.ctv" "$out/organs.ctv"
"$PYTHON" - "$out/probs.csv" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
for col, val in zip(rows[0][1:], rows[1][1:]):
    organ, abn = col.split("_")[:2]
    print("  %-10s %-36s %s" % (organ, abn, ("%.4f" % float(val)) if val else "(organ missing)"))
PY

step "9. report-label: the phantom's structured report -> per-organ normal/abnormal labels and texts"
report-label "$root/examples/phantom-report.json" -o "$out/report.ctv"
report-label --from-stream -f csv "$out/report.ctv"

step "10. pictures (ct-view) and NIfTI for a viewer (ct-export)"
ct-view -p a,c,s -O heart -m -o "$out/heart.png" "$out/case.ctv"
cat "$out/case.ctv" "$out/windows.ctv" |
    ct-view --sheet -f 4 -a "$out/organs.ctv" --probs "$out/probs.ctv" -o "$out/sheet.png"
ct-export -t mask -o "$out/mask.nii.gz" "$out/case.ctv"
ct-export -t anomaly -o "$out/anomaly-%s.nii.gz" -r 0 "$out/organs.ctv"
ls -l "$out"/*.png "$out"/*.nii.gz

step "11. the streams read from Python (the reader of schemas/README.md)"
"$PYTHON" "$root/examples/tokens_summary.py" "$out/tokens.ctv"
printf '\ndemo done in %d s; outputs in %s\n' "$SECONDS" "$out"
[ -n "${WEIGHTS:-}" ] || printf 'the weights were SEEDED RANDOM (untrained): see the top of pipelines/demo.sh for real checkpoints\n'
