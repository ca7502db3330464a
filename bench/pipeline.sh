#!/usr/bin/env bash
# bench/pipeline.sh - dataset throughput of the whole per-case pipeline (pipelines/stages.sh:
# ct-resample | mask-pool | encode | vq-recon | zeroshot, text-encode once per run) on this
# machine, and the share of each stage.
# Not a test.  On a shared machine run it under the bench lock:
#   flock /tmp/ctvis-bench.lock bench/pipeline.sh
#
#   1. small phantoms (the tests' dataset: pipelines/phantom-dataset.sh, 6 cases, 32x64x64 windows)
#      with make -j 2: cases/hour
#   2. one full case (the default phantom: 112x256x352 after ct-resample, four organs), each stage
#      alone on files: wall time, share, peak RSS (encode -j 2)
#   3. FULL=N full cases with make -j 2 (THREADS=1: one case per core): cases/hour
#   4. projections for CT-RATE's 3,039 validation volumes on one such machine and on 16 of them
#      (linear in the number of nodes: the shards share nothing but the output directory), for
#      1 trunk run per case (the phantom: its four organ windows coincide) and for 4 (one per
#      organ, when the case is larger than the 112x256x352 window, as real chest CTs are)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${CT_BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
FULL=${FULL:-2}
B=bench/out/pipeline
mkdir -p "$B"
export PATH=$PWD/$BUILD/bin:$PATH
[ -x "$BUILD/bin/encode" ] || { echo "bench/pipeline.sh: build first (make)" >&2; exit 1; }
core=$("$PYTHON" -c 'import ctypes; l = ctypes.CDLL("libopenblas.so.0"); l.openblas_get_corename.restype = ctypes.c_char_p; print(l.openblas_get_corename().decode())' 2>/dev/null || echo unknown)
echo "== machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, OpenBLAS core $core"
echo "== uptime at start: $(uptime)"
# seeded random weights of the whole pipeline; the text encoder is small (2 layers, width 256, a
# vocabulary of letters): it runs once per run, not per case, so its size does not enter the rates
if [ ! -s "$B/w-full.ctv" ]; then
    { printf '[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n.\n,\n'
      for c in a b c d e f g h i j k l m n o p q r s t u v w x y z; do printf '%s\n##%s\n' $c $c; done; } >"$B/vocab.txt"
    "$PYTHON" tools/ctvis-convert.py --random 1 --text-layers 2 --text-hidden 256 --text-heads 4 \
        --vocab "$B/vocab.txt" -o "$B/w-full.ctv" 2>/dev/null
fi
W=$PWD/$B/w-full.ctv
ms() { date +%s%N | cut -c1-13; }

echo; echo "== 1. small phantoms, make -j 2"
rm -rf "$B/small" "$B/small-out"
pipelines/phantom-dataset.sh --cases 6 "$B/small" >/dev/null
t0=$(ms)
make -s -f pipelines/dataset.mk -j 2 CT_DIR="$B/small/valid" SEG_DIR="$B/small/masks/valid" OUT="$B/small-out" WEIGHTS="$W" \
    RESAMPLE_FLAGS="--spacing 16,8,8 --pad-to 32,64,64" MASKPOOL_FLAGS="--roi 32,64,64" 2>&1 | tail -2
t1=$(ms)
awk -v t=$((t1 - t0)) 'BEGIN { printf "6 small cases in %.1f s: %.0f cases/hour\n", t / 1000, 6 * 3600000 / t }'

echo; echo "== 2. one full case, stage by stage (files between the stages); uptime: $(uptime | sed 's/.*load/load/')"
ct-phantom -o "$B/full" >/dev/null
st() {  # st NAME CMD... : wall s and peak RSS MB of one stage
    /usr/bin/time -f "%e %M" -o "$B/time.txt" "$@" 2>>"$B/stages.log"
    read -r s kb <"$B/time.txt"; printf '%s %s %s\n' "$1" "$s" $((kb / 1024)) >>"$B/stages.txt"
}
: >"$B/stages.txt"; : >"$B/stages.log"
st ct-resample "$B/full/ct.nii.gz" --label "$B/full/seg.nii.gz" --id full -v -o "$B/case.ctv"
st mask-pool -v "$B/case.ctv" -o "$B/windows.ctv"
st encode -w "$W" -j 2 -v "$B/windows.ctv" -o "$B/tokens.ctv"
st vq-recon -w "$W" -j 2 -v "$B/tokens.ctv" -o "$B/organ.ctv"
text-encode -w "$W" -o "$B/prompts.ctv" 2>>"$B/stages.log"      # once per run: not a case stage
st zeroshot --prompts "$B/prompts.ctv" -v "$B/organ.ctv" -o "$B/probs.ctv"
grep -E 'loaded|trunk runs' "$B/stages.log" | sed 's/^/  /'
awk '{ t[NR] = $1; s[NR] = $2; m[NR] = $3; tot += $2 }
     END { printf "%-12s %8s %7s %8s\n", "stage", "wall s", "share", "peak MB"
           for (i = 1; i <= NR; i++) printf "%-12s %8.2f %6.1f%% %8d\n", t[i], s[i], 100 * s[i] / tot, m[i]
           printf "%-12s %8.2f\n", "total", tot }' "$B/stages.txt"
echo "tokens of the case: $(du -m "$B/tokens.ctv" | cut -f1) MB (streamed, not kept by the dataset run); kept: organ $(du -k "$B/organ.ctv" | cut -f1) kB, probs $(du -k "$B/probs.ctv" | cut -f1) kB"

echo; echo "== 3. $FULL full cases, make -j 2, THREADS=1; uptime: $(uptime | sed 's/.*load/load/')"
rm -rf "$B/fulls" "$B/fulls-out"
pipelines/phantom-dataset.sh --cases "$FULL" --full "$B/fulls" >/dev/null
t0=$(ms)
make -s -f pipelines/dataset.mk -j 2 CT_DIR="$B/fulls/valid" SEG_DIR="$B/fulls/masks/valid" OUT="$B/fulls-out" WEIGHTS="$W" 2>&1 | tail -1
t1=$(ms)
rate=$(awk -v t=$((t1 - t0)) -v n="$FULL" 'BEGIN { printf "%.1f", n * 3600000 / t }')
echo "$FULL full cases in $(awk -v t=$((t1 - t0)) 'BEGIN { printf "%.1f", t / 1000 }') s: $rate cases/hour"
cut -f1,3 "$B/fulls-out/summary.tsv" | tail -n +2 | sed 's/^/  case time: /'

echo; echo "== 4. projection, CT-RATE validation (3,039 volumes)"
# mean case time and mean trunk time (encode -j 1) of section 3
ct=$(awk -F '\t' 'NR > 1 && $2 == "ok" { s += $3; n++ } END { printf "%.2f", s / n }' "$B/fulls-out/summary.tsv")
tt=$(cat "$B"/fulls-out/log/*.log | sed -n 's/.*trunk runs.* in \([0-9.]*\) s.*/\1/p' | awk '{ s += $1; n++ } END { printf "%.2f", s / n }')
echo "mean case time $ct s, of which the trunk (one run, one core) $tt s"
awk -v r="$rate" -v ct="$ct" -v tt="$tt" 'BEGIN {
    for (k = 1; k <= 4; k += 3) {
        rr = r * ct / (ct + (k - 1) * tt)      # k trunk runs per case: the case time grows by (k-1) trunks
        printf "%d trunk run%s per case: %6.1f cases/hour per 2-core machine: %6.1f h on one, %5.1f h on 16 nodes\n",
               k, k == 1 ? " " : "s", rr, 3039 / rr, 3039 / rr / 16
    } }'
echo "== uptime at end: $(uptime)"
