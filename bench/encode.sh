#!/usr/bin/env bash
# bench/encode.sh - the ViSD-Boost image encoder on one 112x256x352 window: `encode` against the
# PyTorch reference model (same architecture, same seeded random weights, same input) at 1 and 2
# threads, plus OpenBLAS's sgemm ceiling on this machine.  Prints wall times, the speed ratio,
# effective GFLOP/s over the trunk (conv1 .. layer4: its dense count, 301.7 GMAC, over the time;
# encode does fewer real multiplications: Winograd in layers 1-3, no multiplication on padding in
# layer4), peak RSS and the time of each stage.
# It prints the CPU and the kernels each side runs: encode's OpenBLAS core as chosen by lib/blas.c
# (set no BLAS environment: the point is what users get), torch's oneDNN ISA and the OpenBLAS core
# loaded in its process.
# Not a test.
#
#   bench/encode.sh            (make bench runs every bench/*.sh)
#   THREADS="1 2" REPEAT=1     the thread counts and the forward passes per measurement
#   CORES="Prescott Haswell SkylakeX Cooperlake"   also measure sgemm with each of these OpenBLAS
#                              cores (OPENBLAS_CORETYPE), to see which family is fastest here
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${CT_BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
OUT=bench/out/encode
THREADS=${THREADS:-"1 2"}
mkdir -p "$OUT"
export PATH=$PWD/$BUILD/bin:$PATH
[ -x "$BUILD/bin/encode" ] || { echo "bench/encode.sh: build first (make)" >&2; exit 1; }

cpuf() { grep -m1 "^$1" /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'; }
isa=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -xE 'avx2|fma|avx512(f|bw|dq|vl)|amx_tile' | tr '\n' ' ')
echo "== machine: $(cpuf 'model name') ($(cpuf vendor_id) family $(cpuf 'cpu family') model $(cpuf 'model\s') stepping $(cpuf stepping)), $(nproc) cores"
echo "   features: $isa; load $(cut -d' ' -f1-3 /proc/loadavg)"
for v in OPENBLAS_CORETYPE OPENBLAS_NUM_THREADS OMP_NUM_THREADS; do
    [ -n "${!v:-}" ] && echo "   note: $v=${!v} is set in this environment"
done
cc -O2 -Ilib bench/sgemm-peak.c lib/blas.c $(pkg-config --cflags --libs openblas) -o "$OUT/sgemm-peak"
for c in ${CORES:-}; do
    OPENBLAS_CORETYPE=$c "$OUT/sgemm-peak" 1 | sed "s/^/   [$c] /"
done
declare -A PEAK
for n in $THREADS; do
    "$OUT/sgemm-peak" "$n" | tee "$OUT/sgemm-$n.txt"
    PEAK[$n]=$(awk '/4096\^3/ {print $3}' "$OUT/sgemm-$n.txt")
done

# inputs: seeded random (untrained) weights through the converter, one random 112x256x352 window
# with 10% of the tokens of each stage flagged for one organ
[ -s "$OUT/weights.ctv" ] || "$PYTHON" tools/ctvis-convert.py --random 1 --no-vq --encoder-only -o "$OUT/weights.ctv" 2>/dev/null
[ -s "$OUT/window.ctv" ] || "$PYTHON" - "$OUT/window.ctv" <<'PY'
import sys, numpy as np
sys.path.insert(0, "tests/ref")
import reflib, visd_ref
shape = (112, 256, 352)
rng = np.random.default_rng(0)
t = {"image": rng.random(shape, dtype=np.float32), "mask": np.zeros(shape, np.uint8)}
for s, g in enumerate(visd_ref.grid_sizes(*shape)):
    L = int(np.prod(g))
    t["tok%d/lung" % (s + 1)] = np.sort(rng.choice(L, L // 10, replace=False)).astype(np.int32)
with open(sys.argv[1], "wb") as f:
    reflib.write_record(f, "ct.window/1", "bench", t, {"organ": "lung", "window_organs": ["lung"]})
PY

# the kernels each side runs, as each chooses them by itself
encode -v -w "$OUT/weights.ctv" -o /dev/null /dev/null 2>&1 | sed -n 's/^encode: \(BLAS\|Winograd\)/== encode: \1/p'
DNNL_VERBOSE=1 "$PYTHON" bench/encode_torch.py --info >"$OUT/torch-info.log" 2>&1 || true
sed -n 's/^torch_info /== torch: /p' "$OUT/torch-info.log"
echo "== torch: oneDNN $(sed -n 's/^onednn_verbose,info,cpu,isa:/ISA /p' "$OUT/torch-info.log" | head -1); conv implementations:" \
    "$(awk -F, '$1 == "onednn_verbose" && $2 == "exec" && $4 == "convolution" {print $5}' "$OUT/torch-info.log" | sort -u | tr '\n' ' ')"

printf '\n%-8s %-8s %10s %10s %12s %10s %9s\n' tool threads wall_s compute_s eff_GFLOP/s eff_%peak rss_MB
for n in $THREADS; do
    /usr/bin/time -f "%e %M" -o "$OUT/time-ours-$n" encode -vv -j "$n" -w "$OUT/weights.ctv" "$OUT/window.ctv" \
        -o "$OUT/tokens.ctv" 2>"$OUT/ours-$n.log"
    read -r ow orss <"$OUT/time-ours-$n"
    ot=$(sed -n 's/.*trunk on .* in \([0-9.]*\) s.*/\1/p' "$OUT/ours-$n.log")
    og=$(sed -n 's/.*trunk on .* (\([0-9.]*\) GFLOP.*/\1/p' "$OUT/ours-$n.log")
    OMP_NUM_THREADS=$n /usr/bin/time -f "%e %M" -o "$OUT/time-torch-$n" "$PYTHON" bench/encode_torch.py \
        "$OUT/weights.ctv" "$OUT/window.ctv" "$n" >"$OUT/torch-$n.log"
    read -r tw trss <"$OUT/time-torch-$n"
    tt=$(awk '/torch_seconds/ {print $2}' "$OUT/torch-$n.log")
    tg=$(awk '/torch_gflops/ {print $2}' "$OUT/torch-$n.log")
    awk -v n="$n" -v ow="$ow" -v ot="$ot" -v og="$og" -v orss="$orss" -v tw="$tw" -v tt="$tt" -v tg="$tg" \
        -v trss="$trss" -v peak="${PEAK[$n]}" 'BEGIN {
        printf "%-8s %-8s %10s %10s %12s %9.0f%% %9d\n", "encode", n, ow, ot, og, 100 * og / peak, orss / 1024
        printf "%-8s %-8s %10s %10s %12s %9.0f%% %9d\n", "torch", n, tw, tt, tg, 100 * tg / peak, trss / 1024
        printf "ratio at %d thread(s): torch forward / encode trunk = %.2fx   (whole processes: %.2fx)\n", n, tt / ot, tw / ow
    }'
    # per stage: encode -vv's "trunk: NAME S s" lines, torch's forward hooks
    printf '  stage s:  %-8s' encode
    sed -n 's/.*trunk: \(conv1 + maxpool\|layer[1-4]\) \([0-9.]*\) s$/\2/p' "$OUT/ours-$n.log" | tr '\n' ' '
    printf '\n            %-8s' torch
    awk '/torch_stage/ {printf "%s ", $3}' "$OUT/torch-$n.log"
    printf '  (stem, layer1 .. layer4)\n'
done
echo
echo "compute_s: encode's trunk (conv1..layer4) as logged by -v; torch's forward (trunk + proj1..4 at every"
echo "token) timed in-process.  wall_s: whole processes (encode: + weights load, I/O, proj at flagged"
echo "tokens; torch: + python/torch start-up and loading).  eff_GFLOP/s: the trunk's dense count (301.7 GMAC)"
echo "over compute_s: encode runs layers 1-3 as Winograd F(2x2x2,3x3x3) (3.375x fewer multiplications) and"
echo "skips the multiplications on padding in layer4, so it can pass the sgemm ceiling.  eff_%peak: of"
echo "'sgemm 4096^3' above, same threads."
