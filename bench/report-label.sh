#!/usr/bin/env bash
# bench/report-label.sh - report-label against a Python (json + re + csv) implementation of the
# same work, on generated CT-RATE-sized inputs, in the same run, pinned to one core:
#
#   1. 50,000 structured reports (JSON lines) -> per-organ labels and texts (fVLM rule)
#   2. the same 50,000 as raw LLM answers (code fences, prose, synonyms) -> labels
#   3. a 50,000-row CT-RATE label CSV -> label records -> CSV again
#   4. a 50,000-row CT-RATE report CSV (multi-line quoted fields) -> structuring prompts
#
# Prints wall time, the ratio and peak RSS (/usr/bin/time -f %M) per case, and checks that the
# two implementations agree on every label and text.  Not a test; `make bench` runs it.
#   N=50000 bench/report-label.sh        (N reports/rows; OUT=dir keeps the inputs)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${CT_BUILD:-build}/bin
PY=${PYTHON:-/usr/bin/python3}
N=${N:-50000}
OUT=${OUT:-$(mktemp -d)}
[ -n "${KEEP:-}" ] || trap 'rm -rf "$OUT"' EXIT
mkdir -p "$OUT"
PIN=""
command -v taskset >/dev/null && PIN="taskset -c 0"

echo "report-label benchmark: N=$N, one core ($PIN), $(nproc) cores shared with other work"
"$PY" - "$OUT" "$N" <<'EOF'
import csv, json, random, sys
out, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(7)
S = {
 "lung": ["Both lungs are clear.", "Centrilobular emphysema in both upper lobes.", "A 6 mm solid nodule in the right lower lobe (series 3, image 112).",
          "Linear atelectasis at the left base.", "Ground-glass opacities in the lower lobes.", "Small bilateral pleural effusions.",
          "Peribronchial thickening and mild bronchiectasis.", "Interlobular septal thickening at the bases.", "No consolidation."],
 "heart": ["Heart size is normal.", "Cardiomegaly.", "Minimal pericardial effusion (8 mm).", "Coronary artery calcification in the LAD.",
           "The heart is not enlarged; no \"pericardial\" fluid."],
 "esophagus": ["The esophagus is normal.", "Small sliding hiatal hernia.", "Patulous esophagus with an air-fluid level."],
 "aorta": ["Normal thoracic aorta.", "Calcified atherosclerotic plaques in the aortic arch.", "Ascending aorta measures 41 mm ('ectatic')."],
}
I = {"lung": ["Emphysema.", "6 mm nodule; follow-up CT is advised", "Bilateral lower-lobe pneumonia."],
     "heart": ["Cardiomegaly", "Pericardial effusion."], "esophagus": ["Hiatal hernia."], "aorta": ["Aortic atherosclerosis"]}
SYN = {"lung": ["Lungs", "lung", "Lung"], "heart": ["Heart", "heart"], "esophagus": ["Oesophagus", "esophagus"], "aorta": ["Thoracic aorta", "aorta"]}
names = ["Medical material", "Arterial wall calcification", "Cardiomegaly", "Pericardial effusion", "Coronary artery wall calcification",
         "Hiatal hernia", "Lymphadenopathy", "Emphysema", "Atelectasis", "Lung nodule", "Lung opacity", "Pulmonary fibrotic sequela",
         "Pleural effusion", "Mosaic attenuation pattern", "Peribronchial thickening", "Consolidation", "Bronchiectasis",
         "Interlobular septal thickening"]
with open(out + "/reports.jsonl", "w") as plain, open(out + "/answers.jsonl", "w") as messy, \
     open(out + "/labels.csv", "w", newline="") as lab, open(out + "/reports.csv", "w", newline="") as rep:
    lw = csv.writer(lab, lineterminator="\n"); lw.writerow(["VolumeName"] + names)
    rw = csv.writer(rep, lineterminator="\n"); rw.writerow(["VolumeName", "ClinicalInformation_EN", "Technique_EN", "Findings_EN", "Impressions_EN"])
    for i in range(n):
        scan = "train_%d_%s" % (i // 2, "ab"[i % 2])
        f = {o: " ".join(rng.sample(S[o], rng.randint(1, min(3, len(S[o]))))) for o in S if rng.random() < 0.9}
        im = {o: rng.choice(I[o]) for o in I if rng.random() < 0.3}
        plain.write(json.dumps({"scan_id": scan, "findings": f, "impression": im}) + "\n")
        body = json.dumps({"findings": {rng.choice(SYN[o]): t for o, t in f.items()},
                           "impression": {rng.choice(SYN[o]): t for o, t in im.items()}}, indent=2)
        if rng.random() < 0.5:
            body = "Here is the report split by organ:\n```json\n" + body + "\n```"
        messy.write(json.dumps({"scan_id": scan + "_1", "answer": body}) + "\n")
        lw.writerow(["train_%d_%s_%d.nii.gz" % (i // 2, "ab"[i % 2], 1)] + [rng.randint(0, 1) for _ in names])
        rw.writerow(["train_%d_%s_1.nii.gz" % (i // 2, "ab"[i % 2]), "Cough.", "Non-contrast chest CT.",
                     "\n".join(f.values()), "\n".join(im.values()) or "No acute findings."])
EOF

cat >"$OUT/ref.py" <<'EOF'
# The peer: the same work in plain Python (json, re, csv), as a user would write it.
import csv, json, re, sys
ORGANS = ["lung", "heart", "esophagus", "aorta"]
SYN = {"lungs": "lung", "oesophagus": "esophagus", "thoracic aorta": "aorta"}
RM = re.compile("[\"'()]")
def rule(o, desc, conc):
    normal = f"{o} shows no significant abnormalities."
    if desc and not desc.endswith("."): desc += "."
    if conc and not conc.endswith("."): conc += "."
    text = RM.sub("", (conc or normal) + desc)
    return int(not text.startswith(normal)), text
def organs(m):
    return {SYN.get(k.lower(), k.lower()): v for k, v in m.items()}
mode, src, dst = sys.argv[1:4]
with open(dst, "w") as out:
    if mode in ("reports", "answers"):
        for line in open(src):
            r = json.loads(line)
            if mode == "answers":
                a = r["answer"]
                m = re.search(r"```(?:json)?\n(.*?)\n```", a, re.S)
                body = json.loads(m.group(1) if m else a)
                sid = re.sub(r"_\d+$", "", r["scan_id"])
                f, im = organs(body["findings"]), organs(body["impression"])
            else:
                sid, f, im = r["scan_id"], r["findings"], r["impression"]
            res = [rule(o, f.get(o, ""), im.get(o, "")) for o in ORGANS]
            out.write(json.dumps({"scan_id": sid, "abnormal": dict(zip(ORGANS, [a for a, _ in res])),
                                  "texts": dict(zip(ORGANS, [t for _, t in res]))}, ensure_ascii=False) + "\n")
    elif mode == "labels":
        rows = csv.reader(open(src, newline=""))
        w = csv.writer(out, lineterminator="\n")
        head = next(rows); w.writerow(head)
        for row in rows:
            assert all(v in ("0", "1") for v in row[1:])
            w.writerow([row[0]] + [int(v) for v in row[1:]])
    elif mode == "prompts":
        seen = set()
        for row in csv.DictReader(open(src, newline="")):
            sid = re.sub(r"_\d+$", "", row["VolumeName"].replace(".nii.gz", ""))
            if sid in seen: continue
            seen.add(sid)
            out.write(json.dumps({"scan_id": sid, "volume": row["VolumeName"],
                                  "prompt": "...\nFINDINGS:\n" + row["Findings_EN"] + "\n\nIMPRESSION:\n" + row["Impressions_EN"] + "\n"},
                                 ensure_ascii=False) + "\n")
EOF

# timed NAME CMD... -> "wall rss_kb" of one run
timed() {
    local name=$1; shift
    /usr/bin/time -f "%e %M" -o "$OUT/$name.time" "$@"
    cat "$OUT/$name.time"
}

row() {  # row CASE OURS_TIME PY_TIME
    read -r c_s c_kb <<<"$2"
    read -r p_s p_kb <<<"$3"
    awk -v c="$1" -v cs="$c_s" -v ck="$c_kb" -v ps="$p_s" -v pk="$p_kb" 'BEGIN {
        printf "%-44s %7.2f s %7.0f MB | %7.2f s %7.0f MB | %5.1fx\n", c, cs, ck/1024, ps, pk/1024, (cs > 0 ? ps/cs : 0) }'
}

printf '%-44s %19s | %19s | %s\n' "case" "report-label" "python" "speed-up"
t1=$(timed c1 $PIN "$BIN/report-label" -o "$OUT/r.ctv" "$OUT/reports.jsonl")
t1j=$(timed c1j $PIN "$BIN/report-label" -f jsonl -o "$OUT/r.jsonl" "$OUT/reports.jsonl")
p1=$(timed p1 $PIN "$PY" "$OUT/ref.py" reports "$OUT/reports.jsonl" "$OUT/p.jsonl")
row "1. $N reports -> ct.report/1 stream" "$t1" "$p1"
row "1. $N reports -> JSON lines" "$t1j" "$p1"
t1c=$(timed c1c $PIN "$BIN/report-label" -f csv -o "$OUT/r.csv" "$OUT/reports.jsonl")
row "1. $N reports -> CSV" "$t1c" "$p1"
t2=$(timed c2 $PIN "$BIN/report-label" -f jsonl -o "$OUT/a.jsonl" "$OUT/answers.jsonl")
p2=$(timed p2 $PIN "$PY" "$OUT/ref.py" answers "$OUT/answers.jsonl" "$OUT/pa.jsonl")
row "2. $N raw LLM answers -> JSON lines" "$t2" "$p2"
t3=$(timed c3 $PIN "$BIN/report-label" --labels -o "$OUT/l.ctv" "$OUT/labels.csv")
t3b=$(timed c3b $PIN "$BIN/report-label" --from-stream -f csv -o "$OUT/l.csv" "$OUT/l.ctv")
p3=$(timed p3 $PIN "$PY" "$OUT/ref.py" labels "$OUT/labels.csv" "$OUT/pl.csv")
row "3. $N-row label CSV -> ct.labels/1" "$t3" "$p3"
row "3. ct.labels/1 -> CSV" "$t3b" "$p3"
t4=$(timed c4 $PIN "$BIN/report-label" --prompts -o "$OUT/pr.jsonl" "$OUT/reports.csv")
p4=$(timed p4 $PIN "$PY" "$OUT/ref.py" prompts "$OUT/reports.csv" "$OUT/ppr.jsonl")
row "4. $N-row report CSV -> prompts" "$t4" "$p4"

# agreement
"$PY" - "$OUT" <<'EOF'
import json, sys
out = sys.argv[1]
def load(p, keep=("scan_id", "abnormal", "texts")):
    return [{k: json.loads(l)[k] for k in keep} for l in open(p)]
a, b = load(out + "/r.jsonl"), load(out + "/p.jsonl")
c, d = load(out + "/a.jsonl"), load(out + "/pa.jsonl")
print("agreement: reports %s (%d), answers %s (%d)" % (a == b, len(a), c == d, len(c)))
print("labels CSV round trip: %s, equals Python's csv rewrite: %s" % (
    open(out + "/l.csv", "rb").read() == open(out + "/labels.csv", "rb").read(),
    open(out + "/l.csv", "rb").read() == open(out + "/pl.csv", "rb").read()))
p, q = [json.loads(l) for l in open(out + "/pr.jsonl")], [json.loads(l) for l in open(out + "/ppr.jsonl")]
print("prompts: %d vs %d, same scans and report texts: %s" % (len(p), len(q), all(
    x["scan_id"] == y["scan_id"] and x["prompt"].endswith(y["prompt"][4:]) for x, y in zip(p, q))))
EOF
ls -l "$OUT/reports.jsonl" "$OUT/r.ctv" | awk '{printf "%s %.1f MB\n", $NF, $5/1e6}'
