#!/usr/bin/env bash
# bench/mask-pool.sh - mask-pool against the torch reference a user would otherwise run
# (ViSD-Boost eval.py's per-organ window: coordinate-grid bounding box, centred crop,
# DivisiblePadd; vit.py's flags: one-hot float masks and F.max_pool3d at the 4 stage cells),
# in the same run, on the same processed cases:
#   phantom  ct-phantom's default chest, preprocessed the fVLM way (112x256x352, 4 organs)
#   real     TotalSegmentator's reference label map, same preprocessing (112x256x352, lung +
#            aorta; heart and esophagus absent), when ../shared/data is there
# Prints, per case: mask-pool wall time and peak RSS (whole process: read the case stream from
# the page cache, write the windows to /dev/null, and to a pipe), its in-process time, the torch
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
    times, splits = [], []
    for _ in range(reps):
        split = {"box": 0.0, "crop": 0.0, "flags": 0.0}
        t0 = time.perf_counter()
        flags = window_and_flags(image, mask, split)
        times.append(time.perf_counter() - t0)
        splits.append(split)
    best = splits[times.index(statistics.median_low(times))]
    # the flags as index lists, for the identity check against mask-pool's output
    lists = {(k, s): torch.nonzero(f[0]).flatten().numpy() for k, fl in flags.items() for s, f in enumerate(fl)}
    np.savez(path + ".ref%d.npz" % threads, **{"%d_%d" % key: v for key, v in lists.items()})
    print("%s %.1f %d %.1f %.1f %.1f" % (os.path.basename(path), 1e3 * statistics.median_low(times), len(flags),
                                         1e3 * best["box"], 1e3 * best["crop"], 1e3 * best["flags"]))
print("rss_import_kb %d" % rss0)
EOF

splits=()
printf '\n%-8s %3s | %8s %8s %8s %8s %7s | %8s %8s %7s | %6s %6s | %7s %7s | %s\n' case win "mp wall" \
    "mp pipe" "mp/case" "mp in-pr" "mp RSS" "torch 1T" "torch 2T" "t RSS" "x 1T" "x 2T" "enc C" "enc pt" "flags"
for case in phantom real; do
    f=$OUT/$case.ctv
    [ -f "$f" ] || continue
    walls=() ; pipes=() ; inproc=() ; rss=0
    for i in $(seq "$REPS"); do
        /usr/bin/time -f '%e %M' -o "$OUT/time.txt" mask-pool -v "$f" >/dev/null 2>"$OUT/v.txt"
        walls+=("$(cut -d' ' -f1 "$OUT/time.txt")")
        rss=$(cut -d' ' -f2 "$OUT/time.txt")
        inproc+=("$(awk '/windows?, plan/ {gsub(",", ""); print $(NF-4) + $(NF-1)}' "$OUT/v.txt")")
        t0=$(date +%s.%N)
        mask-pool "$f" | cat >/dev/null
        pipes+=("$(echo "$(date +%s.%N) - $t0" | bc)")
    done
    wall_ms=$(printf '%s\n' "${walls[@]}" | median | awk '{printf "%.0f", $1 * 1000}')
    pipe_ms=$(printf '%s\n' "${pipes[@]}" | median | awk '{printf "%.0f", $1 * 1000}')
    in_ms=$(printf '%s\n' "${inproc[@]}" | median)
    for i in 1 2 3 4 5 6 7 8; do cat "$f"; done >"$OUT/stream8.ctv"
    streams=()
    for i in $(seq "$REPS"); do
        /usr/bin/time -f '%e' -o "$OUT/time.txt" mask-pool "$OUT/stream8.ctv" >/dev/null
        streams+=("$(cat "$OUT/time.txt")")
    done
    stream_ms=$(printf '%s\n' "${streams[@]}" | median | awk '{printf "%.0f", $1 * 1000 / 8}')
    rm -f "$OUT/stream8.ctv"
    mask-pool "$f" -o "$OUT/$case.win.ctv"
    t1=$(/usr/bin/time -f '%M' -o "$OUT/t1.txt" "$PY" "$OUT/ref.py" 1 "$REPS" "$f" | head -1)
    t2=$(/usr/bin/time -f '%M' -o "$OUT/t2.txt" "$PY" "$OUT/ref.py" 2 "$REPS" "$f" | head -1)
    nwin=$(echo "$t1" | cut -d' ' -f3)
    t1_ms=$(echo "$t1" | cut -d' ' -f2)
    t2_ms=$(echo "$t2" | cut -d' ' -f2)
    splits+=("$(echo "$t1" | awk -v c="$case" '{printf "%-8s torch 1T: box %.0f ms, crop+pad %.0f ms, one-hot+max_pool3d %.0f ms", c, $4, $5, $6}')")
    same=$("$PY" - "$OUT/$case.win.ctv" "$f.ref1.npz" <<'EOF'
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
EOF
)
    awk -v c="$case" -v n="$nwin" -v w="$wall_ms" -v p="$pipe_ms" -v st="$stream_ms" -v i="$in_ms" -v r="$rss" \
        -v a="$t1_ms" -v b="$t2_ms" -v tr="$(cat "$OUT/t1.txt")" -v ec="$ENC_C_S" -v et="$ENC_TORCH_S" -v s="$same" 'BEGIN {
        printf "%-8s %3d | %5d ms %5d ms %5d ms %5.1f ms %4.0f MB | %5.0f ms %5.0f ms %4.0f MB | %5.1fx %5.1fx | %6.2f%% %6.2f%% | %s\n",
            c, n, w, p, st, i, r / 1024, a, b, tr / 1024, a / w, b / w, 100 * st / 1000 / (n * ec),
            100 * st / 1000 / (n * et), s }'
done
echo
printf '%s\n' "${splits[@]}"
echo
echo "mp wall: one mask-pool process on the case (median of $REPS): read the case stream from the page"
echo "  cache, write the windows to /dev/null; mp pipe: the same into a pipe (| cat); mp/case: wall time"
echo "  per case of one mask-pool process over a stream of 8 copies of the case (batch use);"
echo "  mp in-pr: its own -v timings (plan + write) in the single-case run."
echo "torch 1T/2T: the reference's windowing + flags in-process (median of $REPS), input already in"
echo "  memory; t RSS: that python process's peak (torch import alone: $(tail -1 <<<"$("$PY" "$OUT/ref.py" 1 1)" | awk '{printf "%.0f MB", $2/1024}'))."
echo "x 1T/2T: torch in-process time / mask-pool wall time."
echo "enc C / enc pt: mp/case / (windows x encoder time per window), encoder assumed ${ENC_C_S} s (C target)"
echo "  and ${ENC_TORCH_S} s (torch, 1 thread) per 112x256x352 window (anchors.md); the aim is < 2%."
