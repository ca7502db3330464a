#!/usr/bin/env bash
# bench/vq-recon.sh - the VQ-VAE normality model and organ head on one case's four organ windows
# with realistic token counts (the lung's stage 1 at 10^5 keys): `vq-recon` against the PyTorch
# reference (tests/ref/vq_ref.py, same seeded random weights, same tokens) at 1 and 2 threads.
# Prints the compute time (vq-recon -v: VQ-VAE + head; torch: the per-organ forward), the whole
# process time, the ratio and peak RSS.  The weights carry a 94 MB stand-in for BERT's word
# embeddings, which vq-recon must skip while reading.  Not a test.
#
#   bench/vq-recon.sh          THREADS="1 2"
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${CT_BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
OUT=bench/out/vq-recon
THREADS=${THREADS:-"1 2"}
mkdir -p "$OUT"
export PATH=$PWD/$BUILD/bin:$PATH
[ -x "$BUILD/bin/vq-recon" ] || { echo "bench/vq-recon.sh: build first (make)" >&2; exit 1; }
echo "== machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"

[ -s "$OUT/weights.ctv" ] || "$PYTHON" - "$OUT/weights.ctv" <<'PY'
import subprocess, sys, tempfile, os, numpy as np
sys.path.insert(0, "tests/ref")
import reflib
with tempfile.TemporaryDirectory() as d:
    subprocess.run([sys.executable, "tools/ctvis-convert.py", "--random", "1", "-o", d + "/w.ctv"], check=True,
                   stderr=subprocess.DEVNULL)
    w = next(reflib.read_stream(open(d + "/w.ctv", "rb")))
t = dict(w["tensors"])
t["text_encoder.embeddings.word_embeddings.weight"] = np.ones((30522, 768), np.float32)
with open(sys.argv[1], "wb") as f:
    reflib.write_record(f, "ct.weights/1", w["id"], t, w["meta"])
PY
# one case: a window per organ, token counts of a 112x256x352 window (stage grids 56x64x88 ...
# 7x8x11): the lung ~ a third of stage 1, the others smaller
[ -s "$OUT/tokens.ctv" ] || "$PYTHON" - "$OUT/tokens.ctv" <<'PY'
import sys, numpy as np
sys.path.insert(0, "tests/ref")
import reflib
grids = [[56, 64, 88], [28, 32, 44], [14, 16, 22], [7, 8, 11]]
counts = {"lung": (100000, 14000, 2000, 300), "heart": (25000, 3600, 560, 90),
          "esophagus": (3000, 500, 110, 30), "aorta": (9000, 1400, 260, 50)}
rng = np.random.default_rng(0)
with open(sys.argv[1], "wb") as f:
    for o, n in counts.items():
        t = {}
        for s in range(4):
            L = int(np.prod(grids[s]))
            t["tok%d/%s" % (s + 1, o)] = np.sort(rng.choice(L, n[s], replace=False)).astype(np.int32)
            t["emb%d/%s" % (s + 1, o)] = (rng.standard_normal((n[s], 256)) * 0.5 + 0.1).astype(np.float32)
        reflib.write_record(f, "ct.tokens/1", "bench", t, {
            "organ": o, "window_organs": [o], "organs": list(counts), "window_offset": [0, 0, 0],
            "stage_grids": grids, "weights_id": "visd-random-1"})
PY
ls -l "$OUT/weights.ctv" "$OUT/tokens.ctv" | awk '{print "input", $9, $5, "bytes"}'

printf '\n%-9s %-8s %10s %10s %9s %9s\n' tool threads compute_s process_s rss_MB load
for n in $THREADS; do
    /usr/bin/time -f "%e %M" -o "$OUT/time-ours-$n" vq-recon -v -j "$n" -w "$OUT/weights.ctv" "$OUT/tokens.ctv" \
        -o "$OUT/organs.ctv" 2>"$OUT/ours-$n.log"
    read -r ow orss <"$OUT/time-ours-$n"
    oc=$(sed -n 's/.*VQ-VAE \([0-9.]*\) s, head \([0-9.]*\) s.*/\1 \2/p' "$OUT/ours-$n.log" | awk '{print $1 + $2}')
    l1=$(cut -d' ' -f1 /proc/loadavg)
    OMP_NUM_THREADS=$n /usr/bin/time -f "%e %M" -o "$OUT/time-torch-$n" "$PYTHON" bench/vq_recon_torch.py \
        "$OUT/weights.ctv" "$OUT/tokens.ctv" "$n" >"$OUT/torch-$n.log"
    read -r tw trss <"$OUT/time-torch-$n"
    tc=$(awk '/torch_seconds/ {print $2}' "$OUT/torch-$n.log")
    printf '%-9s %-8s %10.3f %10.2f %9d %9s\n' vq-recon "$n" "$oc" "$ow" $((orss / 1024)) "$l1"
    printf '%-9s %-8s %10.3f %10.2f %9d %9s\n' torch "$n" "$tc" "$tw" $((trss / 1024)) "$(cut -d' ' -f1 /proc/loadavg)"
    awk -v a="$tc" -v b="$oc" -v c="$tw" -v d="$ow" -v n="$n" \
        'BEGIN {printf "ratio torch/vq-recon at %s thread(s): compute %.1fx, whole process %.1fx\n", n, a / b, c / d}'
done
