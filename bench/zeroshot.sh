#!/usr/bin/env bash
# bench/zeroshot.sh - zeroshot --metrics against the same computation with scikit-learn, in the
# same run, pinned to one core: N cases (default 3,039, CT-RATE's validation set) x 16 items,
# the metrics of method.md §7.3 and B (default 1,000) bootstrap resamples for every metric's CI.
#
# The peer is what a user would write with scikit-learn: roc_auc_score, f1_score(average=
# "weighted") and precision_score per item and resample, the threshold search of calc_metrics.py
# vectorised with numpy (the released loop calls confusion_matrix 100 times per item: its cost for
# the point estimates alone is printed separately), np.nanpercentile.  It uses the resample
# indices zeroshot exports (--bootstrap-indices), so the two must agree to 1e-9; the peer's own
# timing excludes loading them.  Prints wall time, the ratio and peak RSS (/usr/bin/time).
#   N=3039 B=1000 bench/zeroshot.sh     (KEEP=1 keeps the inputs in OUT)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${CT_BUILD:-build}/bin
PY=${PYTHON:-/usr/bin/python3}
N=${N:-3039}
B=${B:-1000}
OUT=${OUT:-$(mktemp -d)}
[ -n "${KEEP:-}" ] || trap 'rm -rf "$OUT"' EXIT
mkdir -p "$OUT"
PIN=""
command -v taskset >/dev/null && PIN="taskset -c 0"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1

echo "zeroshot benchmark: N=$N cases x 16 items, B=$B resamples, one core ($PIN); load: $(uptime | sed 's/.*load average/load average/')"
"$PY" - "$OUT" "$N" <<'EOF'
import csv, sys, numpy as np, yaml
out, n = sys.argv[1], int(sys.argv[2])
y = yaml.safe_load(open("pipelines/ct-rate-abnormalities.yaml"))
items, abn = y["items"], y["abnormalities"]
rng = np.random.default_rng(2025)
L = rng.integers(0, 2, (n, len(abn)))
with open(out + "/probs.csv", "w") as f:
    f.write(",".join(["file_name"] + ["_".join((i["organ"], i["abnormality"], i["negative"], i["positive"])) for i in items]) + "\n")
    for c in range(n):
        row = []
        for i in items:
            yv = L[c, abn.index(i["abnormality"])]
            p = float(np.float32(1 / (1 + np.exp(-(rng.standard_normal() + 1.0 * yv - 1.5)))))
            row.append("" if rng.random() < 0.002 else repr(p))
        f.write("valid_%d_a_1.nii.gz," % c + ",".join(row) + "\n")
with open(out + "/labels.csv", "w") as f:
    w = csv.writer(f, lineterminator="\n"); w.writerow(["VolumeName"] + abn)
    for c in range(n):
        w.writerow(["valid_%d_a_1.nii.gz" % c] + list(L[c]))
EOF

cat >"$OUT/peer.py" <<'EOF'
import csv, json, math, sys, time, warnings
import numpy as np
warnings.filterwarnings("ignore")
from sklearn.metrics import confusion_matrix, f1_score, precision_score, roc_auc_score
out, B = sys.argv[1], int(sys.argv[2])
t0 = time.time()
rows = list(csv.reader(open(out + "/probs.csv")))
head, rows = rows[0], rows[1:]
lab = {r[0]: r[1:] for r in list(csv.reader(open(out + "/labels.csv")))[1:]}
abn = next(csv.reader(open(out + "/labels.csv")))[1:]
cols = head[1:]
P = np.array([[float(v) if v else np.nan for v in r[1:]] for r in rows])
Y = np.array([[int(lab[r[0]][abn.index(c.split("_")[1])]) for c in cols] for r in rows])
idx = np.fromfile(out + "/idx.txt", sep=" ", dtype=np.int64).reshape(B, len(rows)) if B else None
t_load = time.time()
GRID = np.linspace(0, 1, 100)
def thr_fast(p, y):
    pred = p[None, :] > GRID[:, None]
    tp = (pred & (y == 1)).sum(1); fp = (pred & (y == 0)).sum(1)
    fn = (~pred & (y == 1)).sum(1); tn = (~pred & (y == 0)).sum(1)
    with np.errstate(all="ignore"):
        d = np.sqrt((1 - tp / (tp + fn)) ** 2 + (fp / (fp + tn)) ** 2)
    best, bt = 10000, 0.0
    for k in range(100):
        if d[k] <= best: best, bt = d[k], GRID[k]
    return bt
def thr_released(p, y):
    best_threshold, best_roc = 0, 10000
    for threshold in np.linspace(0, 1, 100):
        c = confusion_matrix(y, (p > threshold).astype(int))
        TP, TN, FP, FN = c[1, 1], c[0, 0], c[0, 1], c[1, 0]
        r = math.sqrt(((1 - TP / (TP + FN)) ** 2) + ((FP / (FP + TN)) ** 2))
        if r <= best_roc: best_roc, best_threshold = r, threshold
    return best_threshold
def metrics(p, y, thr):
    keep = ~np.isnan(p); p, y = p[keep], y[keep]
    try: auc = roc_auc_score(y, p)
    except ValueError: auc = np.nan
    t = thr(p, y); pr = (p > t).astype(int)
    tp = int(((pr == 1) & (y == 1)).sum()); fp = int(((pr == 1) & (y == 0)).sum())
    tn = int(((pr == 0) & (y == 0)).sum()); fn = int(((pr == 0) & (y == 1)).sum())
    return [auc, (tp + tn) / len(y), tn / (tn + fp) if tn + fp else np.nan, tp / (tp + fn) if tp + fn else np.nan,
            f1_score(y, pr, average="weighted"), precision_score(y, pr), t]
t1 = time.time()
point_rel = np.array([metrics(P[:, j], Y[:, j], thr_released) for j in range(len(cols))])
t2 = time.time()
point = np.array([metrics(P[:, j], Y[:, j], thr_fast) for j in range(len(cols))])
vals = np.empty((B, len(cols) + 1, 7))
for b in range(B):
    for j in range(len(cols)):
        vals[b, j] = metrics(P[idx[b], j], Y[idx[b], j], thr_fast)
    vals[b, -1] = vals[b, :-1].mean(0)
ci = np.stack([np.nanpercentile(vals, 2.5, axis=0), np.nanpercentile(vals, 97.5, axis=0)], -1) if B else None
t3 = time.time()
json.dump({"point": point.tolist(), "point_released": point_rel.tolist(), "ci": ci.tolist() if B else None,
           "t_load": t_load - t0, "t_released_point": t2 - t1, "t_compute": t3 - t2}, open(out + "/peer.json", "w"))
EOF

timed() {  # timed NAME CMD... -> "wall rss_kb"
    local name=$1; shift
    /usr/bin/time -f "%e %M" -o "$OUT/$name.time" "$@"
    cat "$OUT/$name.time"
}
c=$(timed ours $PIN "$BIN/zeroshot" --metrics --labels "$OUT/labels.csv" "$OUT/probs.csv" -B "$B" --seed 1 \
      --json "$OUT/ours.json" --roc "$OUT/roc.svg" -o "$OUT/table.txt")
# the same run again exporting the indices for the peer (not timed: writing them is test-only work)
"$BIN/zeroshot" --metrics --labels "$OUT/labels.csv" "$OUT/probs.csv" -B "$B" --seed 1 --bootstrap-indices "$OUT/idx.txt" -o /dev/null
p=$(timed peer $PIN "$PY" "$OUT/peer.py" "$OUT" "$B")
read -r c_s c_kb <<<"$c"
read -r p_s p_kb <<<"$p"
"$PY" - "$OUT" "$c_s" "$c_kb" "$p_s" "$p_kb" <<'EOF'
import json, math, sys
out, cs, ck, ps, pk = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
o, p = json.load(open(out + "/ours.json")), json.load(open(out + "/peer.json"))
names = ["auc", "acc", "spec", "sens", "f1", "prec", "threshold"]
def eq(a, b):
    a = float("nan") if a is None else a; b = float("nan") if b is None else b
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= 1e-9
nodes = o["items"] + [o["mean"]]
pt = all(eq(o["items"][j]["metrics"][m], p["point"][j][k]) and eq(p["point"][j][k], p["point_released"][j][k])
         for j in range(len(o["items"])) for k, m in enumerate(names))
ci = p["ci"] is None or all(eq(nodes[j]["ci"][m][0], p["ci"][j][k][0]) and eq(nodes[j]["ci"][m][1], p["ci"][j][k][1])
                            for j in range(len(nodes)) for k, m in enumerate(names) if not (j == len(nodes) - 1 and m == "threshold"))
print("%-46s %8s %9s" % ("", "wall", "peak RSS"))
print("%-46s %7.2fs %6.0f MB" % ("zeroshot --metrics (read, metrics, bootstrap, SVG)", cs, ck / 1024))
print("%-46s %7.2fs %6.0f MB   (compute %.2f s, loading %.2f s)" % ("scikit-learn + numpy, same resamples", ps, pk / 1024,
      p["t_compute"], p["t_load"]))
print("ratio (peer wall / ours): %.1fx; peer compute only / ours: %.1fx" % (ps / cs, p["t_compute"] / cs))
print("released calc_metrics.py threshold loop (confusion_matrix x 100), point estimates only: %.2f s" % p["t_released_point"])
print("agreement to 1e-9: point metrics %s (incl. the released loop's thresholds), bootstrap CIs %s" % (pt, ci))
EOF
