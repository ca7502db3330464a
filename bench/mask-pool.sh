#!/usr/bin/env bash
# bench/mask-pool.sh - mask-pool against the torch reference a user would otherwise run
# (ViSD-Boost eval.py's per-organ window: coordinate-grid bounding box, centred crop,
# DivisiblePadd; vit.py's flags: one-hot float masks and F.max_pool3d at the 4 stage cells),
# in the same run, on the same processed cases:
#   phantom  ct-phantom's default chest, preprocessed the fVLM way (112x256x352, 4 organs)
#   real     TotalSegmentator's reference label map, same preprocessing (112x256x352, lung +
#            aorta; heart and esophagus absent), when ../shared/data is there
# Prints, per case: mask-pool wall time and peak RSS (whole process: read the case stream from
# the page cache, write the windows to a discarding sink, and to a pipe), its in-process time, the torch
# reference's in-process time at 1 and 2 threads and its peak RSS, the ratio, whether the flags
# are identical, and mask-pool's share of the encoder's time for the same windows.
#
#   bench/mask-pool.sh                 REPS=9 bench/mask-pool.sh
# Env: REPS (runs per timing, median; default 5), ENC_C_S / ENC_TORCH_S (assumed encoder
# seconds per 112x256x352 window: 2.0 = the C target, 7.0 = torch 1 thread; anchors.md).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${CT_BIN:-$PWD/${CT_BUILD:-build}/bin}
PY=${PYTHON:-/usr/bin/python3}
REPS=${REPS:-5}
ENC_C_S=${ENC_C_S:-2.0}
ENC_TORCH_S=${ENC_TORCH_S:-7.0}
OUT=bench/out/mask-pool
DATA=${CT_DATA:-$PWD/../shared/data}
mkdir -p "$OUT"
# Output sink: a character device that discards writes.  /dev/zero does (as /dev/null should);
# on a machine where /dev/null has become a regular file, writing there costs a disk write.
SINK=${SINK:-/dev/zero}
export PATH=$BIN:$PATH

echo "mask-pool benchmark  $(date -u +%Y-%m-%dT%H:%MZ)  $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "(the cores are shared: timings taken while other jobs run are noisy)"

# ---- the cases (ct.case/1), built with the fVLM preprocessing of tests/ref/test_maskpool.py
ct-phantom -o "$OUT/phantom" >/dev/null
"$PY" - "$OUT" "$DATA" <<'EOF'
import os, sys
sys.path.insert(0, "tests/ref")
import test_maskpool as T
out, data = sys.argv[1], sys.argv[2]
cases = [("phantom", os.path.join(out, "phantom", "ct.nii.gz"), os.path.join(out, "phantom", "seg.nii.gz"))]
d = os.path.join(data, "ct-abdomen-totalseg")
if os.path.isdir(d):
    cases.append(("real", os.path.join(d, "example_ct_sm.nii.gz"), os.path.join(d, "example_seg.nii.gz")))
else:
    print("skip real: ../shared/data absent")
for name, ct, seg in cases:
    image, mask = T.make_case_from_nifti(ct, seg)
    with open(os.path.join(out, name + ".ctv"), "wb") as f:
        T.case_record(f, name, image, mask)
EOF

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# ---- the torch reference, in-process, per case (threads as $1)
cat >"$OUT/ref.py" <<'EOF'
import os, resource, statistics, sys, time
sys.path.insert(0, "tests/ref")
import numpy as np, torch, torch.nn.functional as F
import reflib
ROI, CELLS = (112, 256, 352), [(2, 4, 4), (4, 8, 8), (8, 16, 16), (16, 32, 32)]

def coords_box(m):
    """eval.py's approach: coordinate grids over the whole volume, max of mask*coord and min
    with the background set to +inf."""
    D, H, W = m.shape[-3:]
    grids = torch.meshgrid(*[torch.arange(n, dtype=torch.float) for n in (D, H, W)], indexing="ij")
    lo, hi = [], []
    for g in grids:
        v = m * g
        hi.append(int(v.flatten().max()))
        lo.append(int(v.masked_fill(~m, float("inf")).flatten().min()))
    return lo, hi

def window_and_flags(image, mask, split):
    t0 = time.perf_counter()
    whole = [torch.eq(mask, k + 1).sum().item() for k in range(4)]
    out = {}
    for k in range(4):
        if whole[k] == 0:
            continue
        m = torch.eq(mask, k + 1)
        lo, hi = coords_box(m[0, 0])
        t1 = time.perf_counter()
        sl = []
        for a in range(3):
            size = max(ROI[a], hi[a] - lo[a])
            start = max(0, (lo[a] + hi[a]) // 2 - size // 2)
            end = min(m.shape[2 + a], start + size)
            if end - start < size:
                start = max(0, end - size)
            sl.append(slice(start, end))
        win_img = image[..., sl[0], sl[1], sl[2]]
        win_mask = m[..., sl[0], sl[1], sl[2]].float()
        win_mask[win_mask == 1] = k + 1
        pad = []
        for n, mult in zip(reversed(win_mask.shape[2:]), (32, 32, 16)):
            pad += [0, (-n) % mult]
        win_img, win_mask = F.pad(win_img, pad), F.pad(win_mask, pad)
        t2 = time.perf_counter()
        y = win_mask[0, 0]
        labels = torch.unique(y)
        labels = labels[labels != 0]
        onehot = torch.stack([torch.eq(y, v) for v in labels]).float().unsqueeze(1)
        flags = [F.max_pool3d(onehot, kernel_size=c, stride=c).flatten(1) > 0 for c in CELLS]
        out[k] = flags
        t3 = time.perf_counter()
        split["box"] += t1 - t0
        split["crop"] += t2 - t1
        split["flags"] += t3 - t2
        t0 = t3
    return out

threads, reps, paths = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
torch.set_num_threads(threads)
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for path in paths:
    rec = next(reflib.read_stream(open(path, "rb")))
    image = torch.from_numpy(rec["tensors"]["image"].copy())[None, None]
    mask = torch.from_numpy(rec["tensors"]["mask"].astype(np.float32))[None, None]   # eval.py: float labels
    times, cpus, splits = [], [], []
    for _ in range(reps):
        split = {"box": 0.0, "crop": 0.0, "flags": 0.0}
        t0, c0 = time.perf_counter(), time.process_time()
        flags = window_and_flags(image, mask, split)
        times.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        splits.append(split)
    best = splits[times.index(statistics.median_low(times))]
    # the flags as index lists, for the identity check against mask-pool's output
    lists = {(k, s): torch.nonzero(f[0]).flatten().numpy() for k, fl in flags.items() for s, f in enumerate(fl)}
    np.savez(path + ".ref%d.npz" % threads, **{"%d_%d" % key: v for key, v in lists.items()})
    print("%s %.1f %d %.1f %.1f %.1f %.1f" % (os.path.basename(path), 1e3 * statistics.median_low(times), len(flags),
                                              1e3 * best["box"], 1e3 * best["crop"], 1e3 * best["flags"],
                                              1e3 * statistics.median_low(cpus)))
print("rss_import_kb %d" % rss0)
EOF

splits=()
printf '\n%-8s %3s | %-36s | %-15s | %-33s | %-11s | %s\n' "" "" "mask-pool, one case" "stream of 8" \
    "torch reference, in-process" "torch / mp" "share of encoder"
printf '%-8s %3s | %6s %6s %6s %5s %7s | %6s %6s | %7s %7s %7s %7s | %5s %5s | %6s %6s | %s\n' case win wall cpu \
    in-pr pipe RSS wall/c cpu/c "1T wall" "1T cpu" "2T wall" RSS wall cpu "2 s C" "7 s pt" flags
for case in phantom real; do
    f=$OUT/$case.ctv
    [ -f "$f" ] || continue
    walls=() ; cpus=() ; pipes=() ; inproc=() ; rss=0
    for i in $(seq "$REPS"); do
        /usr/bin/time -f '%e %U %S %M' -o "$OUT/time.txt" mask-pool -v "$f" >"$SINK" 2>"$OUT/v.txt"
        read -r e u sy rss <"$OUT/time.txt"
        walls+=("$e")
        cpus+=("$(echo "$u + $sy" | bc)")
        inproc+=("$(awk '/windows?, plan/ {gsub(",", ""); print $(NF-4) + $(NF-1)}' "$OUT/v.txt")")
        t0=$(date +%s.%N)
        mask-pool "$f" | cat >"$SINK"
        pipes+=("$(echo "$(date +%s.%N) - $t0" | bc)")
    done
    for i in 1 2 3 4 5 6 7 8; do cat "$f"; done >"$OUT/stream8.ctv"
    swall=() ; scpu=()
    for i in $(seq "$REPS"); do
        /usr/bin/time -f '%e %U %S' -o "$OUT/time.txt" mask-pool "$OUT/stream8.ctv" >"$SINK"
        read -r e u sy <"$OUT/time.txt"
        swall+=("$e")
        scpu+=("$(echo "$u + $sy" | bc)")
    done
    rm -f "$OUT/stream8.ctv"
    ms() { median | awk -v d="${1:-1}" '{printf "%.0f", $1 * 1000 / d}'; }
    wall_ms=$(printf '%s\n' "${walls[@]}" | ms)
    cpu_ms=$(printf '%s\n' "${cpus[@]}" | ms)
    pipe_ms=$(printf '%s\n' "${pipes[@]}" | ms)
    in_ms=$(printf '%s\n' "${inproc[@]}" | median)
    swall_ms=$(printf '%s\n' "${swall[@]}" | ms 8)
    scpu_ms=$(printf '%s\n' "${scpu[@]}" | ms 8)
    mask-pool "$f" -o "$OUT/$case.win.ctv"
    /usr/bin/time -f '%M' -o "$OUT/t1.txt" "$PY" "$OUT/ref.py" 1 "$REPS" "$f" >"$OUT/r1.txt"
    /usr/bin/time -f '%M' -o "$OUT/t2.txt" "$PY" "$OUT/ref.py" 2 "$REPS" "$f" >"$OUT/r2.txt"
    t1=$(sed -n 1p "$OUT/r1.txt")
    t2=$(sed -n 1p "$OUT/r2.txt")
    read -r _ t1_ms nwin _ _ _ t1_cpu <<<"$t1"
    read -r _ t2_ms _ <<<"$t2"
    splits+=("$(echo "$t1" | awk -v c="$case" '{printf "%-8s torch 1T: box %.0f ms, crop+pad %.0f ms, one-hot+max_pool3d %.0f ms", c, $4, $5, $6}')")
    same=$("$PY" - "$OUT/$case.win.ctv" "$f.ref1.npz" <<'EOF2'
import sys
sys.path.insert(0, "tests/ref")
import numpy as np, reflib
ORG = ["lung", "heart", "esophagus", "aorta"]
ref = np.load(sys.argv[2])
recs = list(reflib.read_stream(open(sys.argv[1], "rb")))
n = 0
for r in recs:
    k = r["meta"]["organ_index"]
    for s in range(4):
        if not np.array_equal(r["tensors"]["tok%d/%s" % (s + 1, ORG[k])], ref["%d_%d" % (k, s)]):
            print("DIFFER"); sys.exit()
        n += 1
print("identical" if n == len(ref.files) else "DIFFER (%d of %d lists)" % (n, len(ref.files)))
EOF2
)
    awk -v c="$case" -v n="$nwin" -v w="$wall_ms" -v cp="$cpu_ms" -v i="$in_ms" -v p="$pipe_ms" -v r="$rss" \
        -v sw="$swall_ms" -v sc="$scpu_ms" -v a="$t1_ms" -v ac="$t1_cpu" -v b="$t2_ms" -v tr="$(cat "$OUT/t1.txt")" \
        -v ec="$ENC_C_S" -v et="$ENC_TORCH_S" -v s="$same" 'BEGIN {
        printf "%-8s %3d | %6d %6d %6.0f %5d %4.0f MB | %6d %6d | %7.0f %7.0f %7.0f %4.0f MB | %4.0fx %4.0fx | %5.2f%% %5.2f%% | %s\n",
            c, n, w, cp, i, p, r / 1024, sw, sc, a, ac, b, tr / 1024, a / w, ac / cp,
            100 * sc / 1000 / (n * ec), 100 * sc / 1000 / (n * et), s }'
done
echo
printf '%s\n' "${splits[@]}"
echo
echo "Times in ms, medians of $REPS runs.  mask-pool, one case: one process on the case file (page cache)"
echo "  writing its windows to $SINK (discarded): wall, cpu (user + sys), in-pr (its own -v plan + write time),"
echo "  pipe (wall, output through | cat), peak RSS.  stream of 8: one process over 8 copies of the case,"
echo "  wall and cpu per case (batch use)."
echo "torch reference: eval.py's windowing + vit.py's flags on tensors already in memory, 1 and 2 threads;"
echo "  RSS is the python process's peak (torch import alone: $(awk '/^rss_import_kb/ {printf "%.0f MB", $2/1024}' "$OUT/r1.txt"))."
echo "torch / mp: torch 1T in-process time / mask-pool one-case process time (wall, cpu)."
echo "share of encoder: mask-pool cpu per case (stream) / (windows x encoder seconds per 112x256x352"
echo "  window), encoder assumed ${ENC_C_S} s (the C target) and ${ENC_TORCH_S} s (torch, 1 thread; anchors.md);"
echo "  the aim is < 2%."
