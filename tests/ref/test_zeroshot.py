"""zeroshot against scikit-learn and numpy (method.md §7).

- metrics: AUC = sklearn.roc_auc_score, F1 = f1_score(average="weighted"), precision =
  precision_score, the threshold rule = a direct transcription of calc_metrics.py's find_threshold
  (method.md §7.3, with sklearn's confusion_matrix), ACC/spec/sens as the released script computes
  them; unweighted means with np.mean.  Tolerance 1e-9 absolute (the two sides sum in different
  orders); the chosen threshold must be the same grid point exactly.
- bootstrap: the generator re-implemented from its documentation must give the indices zeroshot
  exports; metrics of every resample computed in Python on probs[idx], then np.nanpercentile,
  must give the same intervals (1e-9).
- probabilities: from random organ and prompt features, softmax in numpy float64 (1e-12) and the
  released float32 torch computation (2e-6); the CSV's header is the '_'.join of the items byte for
  byte (also against the header of fVLM's published CSV) and each cell is Python's repr of the value.
- the published fVLM CSV (tests/data/zeroshot: 300 rows of lavsendahal/fvlm rate_res/epoch_17.csv)
  scored against a seeded label CSV of the same volumes, with the released script's NaN -> 0 rule.
"""
import csv, io, json, math, os, sys, tempfile, warnings

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import reflib
from reflib import check, not_ok, ok, run, skip, write_record, read_stream

warnings.filterwarnings("ignore")
from sklearn.metrics import confusion_matrix, f1_score, precision_score, roc_auc_score

T = tempfile.mkdtemp(prefix="zs-")
TOL = 1e-9
NAMES = ["auc", "acc", "spec", "sens", "f1", "prec", "threshold"]
GRID = np.linspace(0, 1, 100)

ABN18 = ["Medical material", "Arterial wall calcification", "Cardiomegaly", "Pericardial effusion",
         "Coronary artery wall calcification", "Hiatal hernia", "Lymphadenopathy", "Emphysema", "Atelectasis",
         "Lung nodule", "Lung opacity", "Pulmonary fibrotic sequela", "Pleural effusion",
         "Mosaic attenuation pattern", "Peribronchial thickening", "Consolidation", "Bronchiectasis",
         "Interlobular septal thickening"]


def load_items():
    import yaml
    d = yaml.safe_load(open(os.path.join(reflib.ROOT, "pipelines", "ct-rate-abnormalities.yaml")))
    return [(i["organ"], i["abnormality"], i["negative"], i["positive"]) for i in d["items"]]


ITEMS = load_items()


# ---- the reference: calc_metrics.py transcribed (method.md §7.3) ----

def find_threshold(probabilities, true_labels):
    best_threshold = 0
    best_roc = 10000
    for threshold in np.linspace(0, 1, 100):
        predictions = (probabilities > threshold).astype(int)
        confusion = confusion_matrix(true_labels, predictions, labels=[0, 1])   # 2x2 even for one class
        TP = confusion[1, 1]; TN = confusion[0, 0]; FP = confusion[0, 1]; FN = confusion[1, 0]
        with np.errstate(all="ignore"):
            TP_r = TP / (TP + FN)
            FP_r = FP / (FP + TN)
        current_roc = math.sqrt(((1 - TP_r) ** 2) + (FP_r ** 2))
        if current_roc <= best_roc:
            best_roc = current_roc
            best_threshold = threshold
    return best_threshold


def find_threshold_fast(p, y):
    """The same rule vectorised (for the bootstrap); checked equal to find_threshold below."""
    pred = p[None, :] > GRID[:, None]
    tp = (pred & (y == 1)).sum(1); fp = (pred & (y == 0)).sum(1)
    fn = (~pred & (y == 1)).sum(1); tn = (~pred & (y == 0)).sum(1)
    best, bt = 10000, 0
    with np.errstate(all="ignore"):
        tpr = tp / (tp + fn); fpr = fp / (fp + tn)
    for k in range(100):
        d = math.sqrt(((1 - tpr[k]) ** 2) + (fpr[k] ** 2))
        if d <= best:
            best, bt = d, GRID[k]
    return bt


def ref_metrics(p, y, fast=False):
    p = np.asarray(p, float); y = np.asarray(y, int)
    try:
        auc = roc_auc_score(y, p)
    except ValueError:
        auc = float("nan")                       # one class: undefined
    thr = (find_threshold_fast if fast else find_threshold)(p, y)
    pd_l = (p > thr).astype(int)
    tp = int(((pd_l == 1) & (y == 1)).sum()); fp = int(((pd_l == 1) & (y == 0)).sum())
    tn = int(((pd_l == 0) & (y == 0)).sum()); fn = int(((pd_l == 0) & (y == 1)).sum())
    spec = tn / (tn + fp) if tn + fp else float("nan")
    sens = tp / (tp + fn) if tp + fn else float("nan")
    f1 = f1_score(y, pd_l, average="weighted")
    prec = precision_score(y, pd_l)
    acc = (tp + tn) / (tp + tn + fp + fn)
    return {"auc": auc, "acc": acc, "spec": spec, "sens": sens, "f1": f1, "prec": prec, "threshold": thr}


def close(a, b, tol=TOL):
    if a is None:
        a = float("nan")
    if b is None:
        b = float("nan")
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= tol


# ---- writing inputs ----

def write_probs_csv(path, names, cols, P):
    """P [n_cases, n_items] with NaN = empty cell, floats as repr (what pandas writes)."""
    with open(path, "w") as f:
        f.write(",".join(["file_name"] + cols) + "\n")
        for n, row in zip(names, P):
            f.write(",".join([n] + ["" if math.isnan(v) else repr(float(v)) for v in row]) + "\n")


def write_labels_csv(path, names, abns, Y):
    with open(path, "w") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["VolumeName"] + abns)
        for n, row in zip(names, Y):
            w.writerow([n] + [int(v) for v in row])


def zeroshot_metrics(probs, labels, *extra):
    js = os.path.join(T, "m.json")
    out, err, rc = run(["zeroshot", "--metrics", "--labels", labels, probs, "--json", js] + list(extra),
                       check_rc=False)
    if rc != 0:
        raise RuntimeError(err)
    return json.load(open(js)), err


def compare_case(name, P, Y, nan="skip", fast=False):
    """P, Y [n_cases, n_items]; every metric of every item and the means against the reference."""
    n, m = P.shape
    names = ["valid_%d_a_1.nii.gz" % i for i in range(n)]
    items = [ITEMS[i % len(ITEMS)] for i in range(m)]
    cols = ["_".join(it) if i < len(ITEMS) else "_".join((it[0], it[1] + " %d" % i) + it[2:])
            for i, it in enumerate(items)]
    abns = [c.split("_")[1] for c in cols]
    pc = os.path.join(T, name + ".csv"); lc = os.path.join(T, name + "-labels.csv")
    write_probs_csv(pc, names, cols, P)
    write_labels_csv(lc, names, abns, Y)
    got, _ = zeroshot_metrics(pc, lc, "--nan", nan, "-B", "0")
    bad = []
    per = {k: [] for k in NAMES}
    for j in range(m):
        p = P[:, j].copy(); y = Y[:, j]
        if nan == "skip":
            keep = ~np.isnan(p); p, y = p[keep], y[keep]
        else:
            p[np.isnan(p)] = 0
        ref = ref_metrics(p, y, fast)
        g = got["items"][j]
        for k in NAMES:
            per[k].append(ref[k])
            if not close(g["metrics"][k], ref[k]):
                bad.append("%s %s: %r vs sklearn %r" % (cols[j][:30], k, g["metrics"][k], ref[k]))
        if g["metrics"]["threshold"] != ref["threshold"]:        # exact: the same grid value
            bad.append("%s threshold %r vs %r (not the same grid point)" % (cols[j], g["metrics"]["threshold"],
                                                                           ref["threshold"]))
    for k in NAMES[:-1]:
        if not close(got["mean"]["metrics"][k], float(np.mean(per[k]))):
            bad.append("mean %s: %r vs %r" % (k, got["mean"]["metrics"][k], np.mean(per[k])))
    check("metrics " + name, not bad, "; ".join(bad[:4]))
    return got


def test_metrics():
    rng = np.random.default_rng(13)
    n = 400
    # random probabilities, random labels
    compare_case("random", rng.random((n, 4)), rng.integers(0, 2, (n, 4)))
    # tie-heavy: probabilities on a coarse grid, some exactly on threshold grid points (strict >)
    P = np.round(rng.random((n, 4)) * 10) / 10
    P[:50, 0] = GRID[rng.integers(0, 100, 50)]
    P[:, 3] = GRID[rng.integers(0, 100, n)]
    Y = (rng.random((n, 4)) < np.clip(P + 0.2 * rng.standard_normal((n, 4)), 0, 1)).astype(int)
    compare_case("tie-heavy", P, Y)
    # ties between probabilities across classes (every value twice, once per class)
    v = rng.random(n // 2)
    P = np.stack([np.concatenate([v, v])] * 2, 1)
    Y = np.stack([np.r_[np.zeros(n // 2), np.ones(n // 2)], rng.integers(0, 2, n)], 1).astype(int)
    compare_case("ties", P, Y)
    # all-equal probabilities (AUC 0.5), including 0, 1 and a grid point
    P = np.stack([np.full(n, 0.3), np.zeros(n), np.ones(n), np.full(n, GRID[40])], 1)
    compare_case("all-equal", P, rng.integers(0, 2, (n, 4)))
    # single-class label columns (AUC undefined, said in the table)
    Y = rng.integers(0, 2, (n, 3)); Y[:, 1] = 0; Y[:, 2] = 1
    got = compare_case("single-class", rng.random((n, 3)), Y)
    check("single-class flagged", got["items"][1]["single_class"] and got["items"][2]["single_class"]
          and not got["items"][0]["single_class"] and got["items"][1]["metrics"]["auc"] is None)
    # NaN cells: skipped (ViSD) and set to 0 (fVLM)
    P = rng.random((n, 4)); P[rng.random((n, 4)) < 0.1] = np.nan
    Y = rng.integers(0, 2, (n, 4))
    compare_case("nan-skip", P, Y, "skip")
    compare_case("nan-zero", P, Y, "zero")
    # 3,000 cases x 16 items, informative scores
    Y = rng.integers(0, 2, (3000, 16))
    P = 1 / (1 + np.exp(-(rng.standard_normal((3000, 16)) + 1.2 * Y - 0.6)))
    compare_case("3000x16", P, Y, fast=True)


def test_threshold_transcriptions():
    rng = np.random.default_rng(5)
    bad = 0
    for t in range(60):
        n = int(rng.integers(2, 60))
        p = np.round(rng.random(n) * rng.integers(1, 30)) / 29
        y = rng.integers(0, 2, n)
        if find_threshold(p, y) != find_threshold_fast(p, y):
            bad += 1
    check("threshold: vectorised transcription equals the loop", bad == 0, "%d differ" % bad)


# ---- bootstrap ----

M64 = (1 << 64) - 1


class SplitMix64:
    """docs/zeroshot.md: state += golden gamma; mix; below(n) rejects x >= 2^64 - 2^64 % n."""
    def __init__(self, seed):
        self.s = seed & M64

    def next(self):
        self.s = (self.s + 0x9E3779B97F4A7C15) & M64
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return z ^ (z >> 31)

    def below(self, n):
        lim = (1 << 64) - (1 << 64) % n
        while True:
            x = self.next()
            if x < lim:
                return x % n


def test_bootstrap():
    rng = np.random.default_rng(21)
    n, m, B, seed = 150, 3, 150, 987654321
    Y = rng.integers(0, 2, (n, m))
    P = np.round(1 / (1 + np.exp(-(rng.standard_normal((n, m)) + Y))) * 20) / 20     # ties too
    P[rng.random((n, m)) < 0.05] = np.nan
    Y[:, 2] = (rng.random(n) < 0.06)                   # rare positives: some resamples single-class
    names = ["valid_%d_a_1.nii.gz" % i for i in range(n)]
    cols = ["_".join(ITEMS[i]) for i in range(m)]
    pc, lc, ic = (os.path.join(T, f) for f in ("boot.csv", "boot-labels.csv", "boot-idx.txt"))
    write_probs_csv(pc, names, cols, P)
    write_labels_csv(lc, names, [c.split("_")[1] for c in cols], Y)
    got, _ = zeroshot_metrics(pc, lc, "-B", str(B), "--seed", str(seed), "--bootstrap-indices", ic)
    idx = np.loadtxt(ic, dtype=np.int64).reshape(B, n)
    g = SplitMix64(seed)
    mine = np.array([[g.below(n) for _ in range(n)] for _ in range(B)])
    check("bootstrap: indices equal the documented SplitMix64 generator", np.array_equal(idx, mine))
    vals = np.full((B, m + 1, len(NAMES)), np.nan)
    for b in range(B):
        for j in range(m):
            p = P[idx[b], j]; y = Y[idx[b], j]
            keep = ~np.isnan(p)
            r = ref_metrics(p[keep], y[keep], fast=True)
            vals[b, j] = [r[k] for k in NAMES]
        vals[b, m] = vals[b, :m].mean(0)             # np.mean over items (NaN when one is NaN)
    bad = []
    for j in range(m + 1):
        node = got["items"][j] if j < m else got["mean"]
        for k, name in enumerate(NAMES):
            v = vals[:, j, k]
            ndef = int((~np.isnan(v)).sum())
            lo, hi = (np.nanpercentile(v, [2.5, 97.5]) if ndef else (np.nan, np.nan))
            glo, ghi, gn = node["ci"][name]
            if not (close(glo, lo) and close(ghi, hi) and gn == ndef):
                bad.append("%d %s: [%r, %r] n=%d vs [%r, %r] n=%d" % (j, name, glo, ghi, gn, lo, hi, ndef))
    check("bootstrap: percentile CIs equal numpy on the same resamples", not bad, "; ".join(bad[:3]))


# ---- probabilities from features ----

def unit(rng, *shape):
    x = rng.standard_normal(shape).astype(np.float32)
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def write_prompts(path, items, feat, temp, rid="prompts"):
    with open(path, "wb") as f:
        write_record(f, "ct.prompts/1", rid, {"text_feat": feat},
                     {"items": [{"organ": o, "abnormality": a, "negative": n, "positive": p} for o, a, n, p in items],
                      "temp": temp, "weights_id": "random-test", "weights_untrained": True, "max_length": 384})


def organ_record(f, cid, organ, feat, empty=False):
    meta = {"organ": organ, "organ_index": ["lung", "heart", "esophagus", "aorta"].index(organ),
            "window_organ": organ, "organs": [organ], "mode": "per-organ", "mean_err": 0.0, "empty": empty,
            "weights_id": "random-test", "weights_untrained": True, "codebook": "global"}
    if empty:
        meta["empty_reason"] = "no stage-4 token"
    n4 = 5
    write_record(f, "ct.organ/1", cid, {"feature": feat, "err4": np.zeros(n4, np.float32),
                                        "code4": np.zeros(n4, np.int32), "tok4": np.arange(n4, dtype=np.int32),
                                        "anomaly": np.zeros((2, 2, 2), np.float32)}, meta)


def test_probabilities():
    rng = np.random.default_rng(3)
    D, temp = 256, 0.003                   # a small temp spreads p from ~1e-30 to 1.0 (repr's forms)
    tf = unit(rng, len(ITEMS), 2, D)
    pp = os.path.join(T, "prompts.ctv")
    write_prompts(pp, ITEMS, tf, temp)
    organs = ["lung", "heart", "esophagus", "aorta"]
    cases = []                              # (id, [(organ, feature or None)])
    for c in range(40):
        recs = []
        for o in organs:
            if rng.random() < 0.15:
                continue                     # organ absent: empty cells
            for _ in range(1 + int(rng.random() < 0.2)):      # sometimes two windows
                recs.append((o, unit(rng, D)))
        if c == 3:
            recs.append(("heart", None))     # an empty result
        cases.append(("valid_%d_a_%d" % (c // 2, c % 2 + 1), recs))
    op = os.path.join(T, "organs.ctv")
    with open(op, "wb") as f:
        for cid, recs in cases:
            for o, ft in recs:
                organ_record(f, cid, o, np.zeros(0, np.float32) if ft is None else ft, ft is None)
    cp = os.path.join(T, "res.csv")
    out, err, _ = run(["zeroshot", "--prompts", pp, "--abnormalities",
                       os.path.join(reflib.ROOT, "pipelines", "ct-rate-abnormalities.yaml"), op, "--csv", cp])
    recs = reflib.records(out)
    import torch
    e64 = e32 = 0.0
    bad_nan = 0
    ref_rows = []
    for (cid, rl), r in zip(cases, recs):
        row = []
        for i, (o, a, n, p) in enumerate(ITEMS):
            fs = [ft for oo, ft in rl if oo == o and ft is not None]
            got = r["tensors"]["p_pos"][i]
            if not fs:
                bad_nan += not (math.isnan(got) and r["tensors"]["n_windows"][i] == 0)
                row.append(float("nan"))
                continue
            F = np.stack(fs).astype(np.float64)
            lg = F @ tf[i].astype(np.float64).T / temp
            lg -= lg.max(1, keepdims=True)
            pr = np.exp(lg) / np.exp(lg).sum(1, keepdims=True)
            ref = pr[:, 1].mean()
            e64 = max(e64, abs(ref - got))
            # the released code: float32 torch, softmax over (neg, pos), mean over windows
            t = torch.softmax(torch.from_numpy(np.stack(fs)) @ torch.from_numpy(tf[i]).T / torch.tensor(temp,
                              dtype=torch.float32), dim=1)[:, 1].mean().item()
            e32 = max(e32, abs(t - got))
            bad_nan += r["tensors"]["n_windows"][i] != len(fs)
            row.append(got)
        ref_rows.append(row)
    check("probabilities: %d cases, one ct.probs/1 record each, ids in order" % len(cases),
          [r["id"] for r in recs] == [c for c, _ in cases])
    check("probabilities vs numpy float64 (max err %.1e <= 1e-12)" % e64, e64 <= 1e-12)
    check("probabilities vs torch float32 as released (max err %.1e <= 2e-6)" % e32, e32 <= 2e-6)
    check("probabilities: NaN and n_windows 0 exactly where the organ has no result", bad_nan == 0)
    import yaml
    doc = yaml.safe_load(open(os.path.join(reflib.ROOT, "schemas", "ct.probs.v1.yaml")))
    req = {k for k, v in doc["meta"].items() if v.get("required") is True}
    keys_ok = all(set(r["tensors"]) == set(doc["tensors"]) and req <= set(r["meta"]) <= set(doc["meta"])
                  and r["schema"] == "ct.probs/1" and r["meta"]["file_name"] == r["id"] + ".nii.gz"
                  and r["meta"]["columns"] == ["_".join(it) for it in ITEMS] for r in recs)
    check("ct.probs/1 records carry exactly the keys of schemas/ct.probs.v1.yaml", keys_ok)
    text = open(cp).read()
    lines = text.split("\n")
    head = "file_name," + ",".join("_".join(it) for it in ITEMS)
    check("csv: header is file_name + '_'.join(item) byte for byte", lines[0] == head, lines[0][:80])
    bad = []
    for (cid, _), r, line in zip(cases, recs, lines[1:]):
        cells = line.split(",")
        if cells[0] != cid + ".nii.gz":
            bad.append("file_name " + cells[0])
        for v, cell in zip(r["tensors"]["p_pos"], cells[1:]):
            want = "" if math.isnan(v) else repr(float(v))
            if cell != want:
                bad.append("%r vs repr %r" % (cell, want))
    check("csv: every cell is Python's repr of the stream value, empty when missing", not bad, "; ".join(bad[:3]))
    forms = set()
    for line in lines[1:]:
        for cell in line.split(",")[1:]:
            forms.add("e" if "e" in cell else "empty" if not cell else "1.0" if cell == "1.0" else "fixed")
    check("csv: the values exercise every repr form (%s)" % sorted(forms), forms >= {"e", "empty", "fixed"})
    check("csv: LF line endings, one row per case", text.endswith("\n") and len(lines) == len(cases) + 2)
    # the stream read back by --metrics equals the CSV read back
    Y = rng.integers(0, 2, (len(cases), len(ABN18)))
    lc = os.path.join(T, "prob-labels.csv")
    write_labels_csv(lc, [c + ".nii.gz" for c, _ in cases], ABN18, Y)
    sp = os.path.join(T, "probs.ctv")
    open(sp, "wb").write(out)
    a, _ = zeroshot_metrics(cp, lc, "-B", "20")
    b, _ = zeroshot_metrics(sp, lc, "-B", "20")
    check("metrics: the ct.probs/1 stream and the CSV give the same numbers",
          json.dumps(a["items"]) == json.dumps(b["items"]))
    # fVLM's prompts give fVLM's published header byte for byte
    fx = os.path.join(reflib.ROOT, "tests", "data", "zeroshot", "fvlm_epoch_17_subset.csv")
    fitems = [(o, a, "Not Nodule.", "Nodule.") if a == "Lung nodule" else
              (o, a, "Not Opacity.", "Opacity.") if a == "Lung opacity" else (o, a, n, p) for o, a, n, p in ITEMS]
    write_prompts(pp, fitems, tf, temp)
    run(["zeroshot", "--prompts", pp, op, "--csv", cp, "-o", "/dev/null"])
    check("csv: fVLM's items give the header of fVLM's published epoch_17.csv byte for byte",
          open(cp).readline() == open(fx).readline())


# ---- the published fVLM CSV ----

def test_published():
    fx = os.path.join(reflib.ROOT, "tests", "data", "zeroshot", "fvlm_epoch_17_subset.csv")
    rows = list(csv.reader(open(fx)))
    head, rows = rows[0], rows[1:]
    names = [r[0] for r in rows]
    rng = np.random.default_rng(17)
    P = np.array([[float(v) if v else np.nan for v in r[1:]] for r in rows])
    # labels that depend on the published scores, so the metrics are not all 0.5
    cols = head[1:]
    abn_of = [c.split("_")[1] for c in cols]
    Y = np.zeros((len(rows), len(ABN18)), int)
    for k, a in enumerate(ABN18):
        if a in abn_of:
            j = abn_of.index(a)
            pj = np.nan_to_num(P[:, j], nan=0.0)
            z = (pj - pj.mean()) / (pj.std() + 1e-12)
            Y[:, k] = rng.random(len(rows)) < 1 / (1 + np.exp(-(z - 0.5)))
        else:
            Y[:, k] = rng.integers(0, 2, len(rows))
    # VolumeName in a different order than the results, as in CT-RATE's file
    order = rng.permutation(len(rows))
    lc = os.path.join(T, "fvlm-labels.csv")
    write_labels_csv(lc, [names[i] for i in order], ABN18, Y[order])
    for nan in ("zero", "skip"):
        got, _ = zeroshot_metrics(fx, lc, "--nan", nan, "-B", "0")
        bad = []
        # the released calc_metrics.py loop (label lookup by VolumeName, NaN -> 0 for fVLM)
        lab = {n: Y[i] for i, n in enumerate(names)}
        per = {k: [] for k in NAMES}
        for j, col in enumerate(cols):
            abnormality = col.split("_")[1]
            probs, labels = [], []
            for fn, prob in zip(names, P[:, j]):
                if np.isnan(prob):
                    if nan == "skip":
                        continue
                    prob = 0
                probs.append(prob)
                labels.append(lab[fn][ABN18.index(abnormality)])
            ref = ref_metrics(probs, labels)
            for k in NAMES:
                per[k].append(ref[k])
                if not close(got["items"][j]["metrics"][k], ref[k]):
                    bad.append("%s %s %r vs %r" % (abnormality, k, got["items"][j]["metrics"][k], ref[k]))
        for k in NAMES[:-1]:
            if not close(got["mean"]["metrics"][k], float(np.mean(per[k]))):
                bad.append("mean " + k)
        check("published fVLM epoch_17 (%d rows) --nan %s equals calc_metrics.py with sklearn" % (len(rows), nan),
              not bad, "; ".join(bad[:3]))


def main():
    if not os.path.exists(os.path.join(reflib.BIN, "zeroshot")):
        skip("zeroshot", "build/bin/zeroshot not built")
        return reflib.done()
    for t in (test_threshold_transcriptions, test_metrics, test_bootstrap, test_probabilities, test_published):
        try:
            t()
        except Exception as e:              # one failing part must not hide the others
            import traceback
            not_ok(t.__name__, "%s: %s" % (type(e).__name__, str(e).strip().splitlines()[-1][:300]))
            traceback.print_exc(file=sys.stderr)
    reflib.done()


main()
