#!/usr/bin/env bash
# zeroshot: command line and every class of bad input.  Numerical parity is tests/ref/test_zeroshot.py.
source "$(dirname "$0")/lib.sh"
ROOT=${CT_ROOT:-$PWD}
Y=$ROOT/pipelines/ct-rate-abnormalities.yaml

"$PYTHON" - "$T" <<'PY'
import sys, csv, numpy as np
sys.path.insert(0, "tests/ref")
import reflib, yaml
T = sys.argv[1]
y = yaml.safe_load(open("pipelines/ct-rate-abnormalities.yaml"))
items = [{k: i[k] for k in ("organ", "abnormality", "negative", "positive")} for i in y["items"]]
abn = y["abnormalities"]
rng = np.random.default_rng(0)
def unit(*s):
    x = rng.standard_normal(s).astype(np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)
def prompts(path, feat, its=items, temp=0.07, extra=False):
    with open(path, "wb") as f:
        reflib.write_record(f, "ct.prompts/1", "prompts", {"text_feat": feat}, {"items": its, "temp": temp})
        if extra:
            reflib.write_record(f, "ct.prompts/1", "again", {"text_feat": feat}, {"items": its, "temp": temp})
prompts(T + "/p.ctv", unit(16, 2, 256))
prompts(T + "/p-shape.ctv", unit(16, 3, 256))
prompts(T + "/p-count.ctv", unit(15, 2, 256))
prompts(T + "/p-dim.ctv", unit(16, 2, 128))
prompts(T + "/p-temp.ctv", unit(16, 2, 256), temp=0.0)
prompts(T + "/p-two.ctv", unit(16, 2, 256), extra=True)
prompts(T + "/p-other.ctv", unit(16, 2, 256), its=[dict(i, negative="Not " + i["abnormality"] + ".") for i in items])
def organs(path, recs):
    with open(path, "wb") as f:
        for cid, organ, feat in recs:
            reflib.write_record(f, "ct.organ/1", cid, {"feature": feat}, {"organ": organ, "empty": feat.size == 0})
organs(T + "/o.ctv", [("valid_1_a_1", "lung", unit(256)), ("valid_1_a_1", "heart", unit(256)),
                      ("valid_2_a_1", "aorta", unit(256)), ("valid_2_a_1", "heart", np.zeros(0, np.float32))])
organs(T + "/o-dup.ctv", [("valid_1_a_1", "lung", unit(256)), ("valid_2_a_1", "lung", unit(256)),
                          ("valid_1_a_1", "heart", unit(256))])
with open(T + "/o-noorgan.ctv", "wb") as f:
    reflib.write_record(f, "ct.organ/1", "valid_1_a_1", {"feature": unit(256)}, {})
with open(T + "/o-schema.ctv", "wb") as f:
    reflib.write_record(f, "ct.tokens/1", "valid_1_a_1", {"feature": unit(256)}, {"organ": "lung"})
# probabilities and labels for --metrics
cols = ["_".join((i["organ"], i["abnormality"], i["negative"], i["positive"])) for i in items]
names = ["valid_%d_a_1.nii.gz" % k for k in range(40)]
P = rng.random((40, 16)); L = rng.integers(0, 2, (40, 18)); L[:, abn.index("Hiatal hernia")] = 0
def probs_csv(path, head, rows):
    with open(path, "w") as f:
        f.write(",".join(head) + "\n")
        for r in rows:
            f.write(",".join(r) + "\n")
rows = [[n] + [repr(v) for v in p] for n, p in zip(names, P)]
probs_csv(T + "/probs.csv", ["file_name"] + cols, rows)
probs_csv(T + "/probs-extra.csv", ["file_name"] + cols, rows + [["valid_99_a_1.nii.gz"] + rows[0][1:]])
probs_csv(T + "/probs-dup.csv", ["file_name"] + cols, rows + [rows[3]])
probs_csv(T + "/probs-head.csv", ["VolumeName"] + cols, rows)
probs_csv(T + "/probs-col.csv", ["file_name"] + cols[:5] + ["Emphysema"] + cols[6:], rows)
probs_csv(T + "/probs-short.csv", ["file_name"] + cols, rows[:5] + [rows[5][:10]])
probs_csv(T + "/probs-text.csv", ["file_name"] + cols, rows[:5] + [rows[5][:3] + ["high"] + rows[5][4:]])
def labels_csv(path, head, rows):
    with open(path, "w") as f:
        w = csv.writer(f, lineterminator="\n"); w.writerow(head); w.writerows(rows)
lrows = [[n] + list(map(int, l)) for n, l in zip(names, L)]
labels_csv(T + "/labels.csv", ["VolumeName"] + abn, lrows)
labels_csv(T + "/labels-fewer.csv", ["VolumeName"] + abn, lrows[:37] + [["valid_77_a_1.nii.gz"] + lrows[0][1:]])
labels_csv(T + "/labels-dup.csv", ["VolumeName"] + abn, lrows + [lrows[7]])
k = abn.index("Cardiomegaly")
labels_csv(T + "/labels-nocol.csv", ["VolumeName"] + abn[:k] + abn[k + 1:], [r[:k + 1] + r[k + 2:] for r in lrows])
labels_csv(T + "/labels-two.csv", ["VolumeName"] + abn, lrows[:3] + [lrows[3][:5] + [2] + lrows[3][6:]])
labels_csv(T + "/labels-other.csv", ["VolumeName"] + abn, [["train_%d.nii.gz" % i] + r[1:] for i, r in enumerate(lrows)])
PY

# ---- probabilities ----
check "probabilities" zeroshot --prompts "$T/p.ctv" "$T/o.ctv" -o "$T/probs.ctv" --csv "$T/res.csv" --abnormalities "$Y"
if [ "$(wc -l <"$T/res.csv")" = 3 ] && head -1 "$T/res.csv" | grep -q '^file_name,lung_Emphysema_Not Emphysema._Emphysema.,' \
   && grep -q '^valid_2_a_1.nii.gz,,,,,,,,,,,,,,,,0\.' "$T/res.csv"; then ok "csv: header, rows, empty cells"
else notok "csv: header, rows, empty cells" "$(head -c 400 "$T/res.csv")"; fi
check "ct-ls reads ct.probs/1" ct-ls "$T/probs.ctv"
check "--csv - writes the CSV on stdout" sh -c "zeroshot --prompts '$T/p.ctv' '$T/o.ctv' --csv - | cmp - '$T/res.csv'"

expect_fail "prompt features of the wrong shape" 1 "text_feat is f32 \[16, 3, 256\], expected f32 \[16, 2, dim\] for 16 items" \
    zeroshot --prompts "$T/p-shape.ctv" "$T/o.ctv"
expect_fail "prompt features of the wrong count" 1 "text_feat is f32 \[15, 2, 256\], expected f32 \[16, 2, dim\]" \
    zeroshot --prompts "$T/p-count.ctv" "$T/o.ctv"
expect_fail "prompt features of another dimension" 1 "record 0 \(id valid_1_a_1\): feature has 256 values, the prompt features 128" \
    zeroshot --prompts "$T/p-dim.ctv" "$T/o.ctv"
expect_fail "temperature 0" 1 "meta temp missing or not a positive number" zeroshot --prompts "$T/p-temp.ctv" "$T/o.ctv"
expect_fail "two prompt records" 1 "more than one record" zeroshot --prompts "$T/p-two.ctv" "$T/o.ctv"
expect_fail "prompts for other items" 1 "item 1 is 'lung_Atelectasis_Not Atelectasis\._Atelectatic\.', .* says 'lung_Atelectasis_Not Atelectatic\._Atelectatic\.'" \
    zeroshot --prompts "$T/p-other.ctv" --abnormalities "$Y" "$T/o.ctv"
expect_fail "duplicate case id in the organ stream" 1 "record 2 \(id valid_1_a_1\): duplicate case id .*first at record 0" \
    zeroshot --prompts "$T/p.ctv" "$T/o-dup.ctv" -o "$T/dup.ctv" --csv "$T/dup.csv"
if [ -e "$T/dup.ctv" ] || [ -e "$T/dup.csv" ]; then notok "no partial outputs" "dup.ctv or dup.csv exists"
else ok "no partial outputs"; fi
expect_fail "organ record without organ" 1 "meta organ missing" zeroshot --prompts "$T/p.ctv" "$T/o-noorgan.ctv"
expect_fail "not ct.organ records" 1 "record 0 \(id valid_1_a_1\): .*ct.organ" zeroshot --prompts "$T/p.ctv" "$T/o-schema.ctv"
expect_fail "organ records as prompts" 1 "ct.prompts" zeroshot --prompts "$T/o.ctv" "$T/o.ctv"
expect_fail "no --prompts" 2 "missing --prompts" zeroshot "$T/o.ctv"

# ---- metrics ----
check "metrics" zeroshot --metrics --labels "$T/labels.csv" "$T/probs.csv" -B 50 -o "$T/table.txt" \
    --csv "$T/m.csv" --json "$T/m.json" --roc "$T/roc.svg"
if grep -q '^Hiatal hernia .*undef.*single class (no positives): AUC undefined' "$T/table.txt"; then ok "single-class column said in the table"
else notok "single-class column said in the table" "$(grep Hiatal "$T/table.txt")"; fi
if [ "$(wc -l <"$T/m.csv")" = 18 ] && grep -q '<svg' "$T/roc.svg" && "$PYTHON" -c "import json,sys; json.load(open(sys.argv[1]))" "$T/m.json"
then ok "csv, json and svg written"; else notok "csv, json and svg written" "$(wc -l <"$T/m.csv")"; fi
if "$PYTHON" -c "
import sys, xml.etree.ElementTree as E
r = E.parse(sys.argv[1]).getroot(); ns = '{http://www.w3.org/2000/svg}'
g = r.findall(ns + 'g'); t = ''.join(x.text or '' for x in r.iter(ns + 'text'))
sys.exit(not (len(g) == 16 and len(r.findall('.//' + ns + 'polyline')) == 15 and 'single class: no positives' in t and t.count('AUC ') == 15))
" "$T/roc.svg"; then ok "roc svg: well-formed XML, 16 panels, 15 curves, the single-class panel says so"
else notok "roc svg: well-formed XML, 16 panels, 15 curves, the single-class panel says so" "$(head -c 300 "$T/roc.svg")"; fi
if command -v rsvg-convert >/dev/null; then check "roc svg renders (rsvg-convert)" rsvg-convert -o "$T/roc.png" "$T/roc.svg"
else skip "roc svg renders" "rsvg-convert (librsvg2-bin) not installed"; fi
check "-j 2 gives the same numbers as -j 1" bash -c "zeroshot --metrics --labels '$T/labels.csv' '$T/probs.csv' -B 300 -j 2 --json '$T/j2.json' -o /dev/null && zeroshot --metrics --labels '$T/labels.csv' '$T/probs.csv' -B 300 --json '$T/j1.json' -o /dev/null && cmp '$T/j1.json' '$T/j2.json'"
check "metrics from the ct.probs/1 stream" zeroshot --metrics --labels "$T/labels.csv" "$T/probs.ctv" -B 0
check "labels from ct.labels/1 records" bash -c "report-label --labels '$T/labels.csv' -o '$T/labels.ctv' && zeroshot --metrics --labels '$T/labels.ctv' '$T/probs.csv' -B 0 -o '$T/t2.txt' && zeroshot --metrics --labels '$T/labels.csv' '$T/probs.csv' -B 0 -o '$T/t1.txt' && diff <(tail -n +2 '$T/t1.txt') <(tail -n +2 '$T/t2.txt')"

# cases in one input and not the other: listed, counted, metrics on the intersection
zeroshot --metrics --labels "$T/labels-fewer.csv" "$T/probs-extra.csv" -B 0 >"$T/inter.txt" 2>"$T/inter.err"
rc=$?
if [ $rc = 0 ] && [ "$(wc -l <"$T/inter.err")" = 2 ] \
   && grep -q "^zeroshot: warning: 1 of 38 cases of .*labels-fewer.csv have no probabilities in .*probs-extra.csv (valid_77_a_1); metrics on the 37 common cases$" "$T/inter.err" \
   && grep -q "^zeroshot: warning: 4 of 41 cases of .*probs-extra.csv have no labels in .*labels-fewer.csv (valid_37_a_1, valid_38_a_1, valid_39_a_1, valid_99_a_1); metrics on the 37 common cases$" "$T/inter.err" \
   && grep -q '^Emphysema  *37 ' "$T/inter.txt"; then ok "cases missing on one side: warned, listed, intersection"
else notok "cases missing on one side: warned, listed, intersection" "rc $rc: $(cat "$T/inter.err")"; fi
zeroshot --metrics --labels "$T/labels.csv" "$T/probs.csv" -B 0 --json "$T/i.json" >/dev/null 2>"$T/inter2.err"
if [ ! -s "$T/inter2.err" ]; then ok "no warning when the cases match"; else notok "no warning when the cases match" "$(cat "$T/inter2.err")"; fi

expect_fail "label column missing for an item" 1 "labels-nocol.csv: no label column 'Cardiomegaly' for item 'heart_Cardiomegaly_Not Cardiomegaly._Cardiomegaly.'" \
    zeroshot --metrics --labels "$T/labels-nocol.csv" "$T/probs.csv" --json "$T/nocol.json"
if [ -e "$T/nocol.json" ]; then notok "no partial json" "exists"; else ok "no partial json"; fi
if [ -w /dev/full ]; then
    expect_fail "a full disk for --json: nothing on stdout, no files" 1 "^zeroshot: /dev/full: write: No space left on device$" \
        zeroshot --metrics --labels "$T/labels.csv" "$T/probs.csv" -B 5 --csv "$T/full.csv" --json /dev/full
    if [ -e "$T/full.csv" ]; then notok "no metrics CSV after the failure" "exists"; else ok "no metrics CSV after the failure"; fi
else skip "a full disk" "no /dev/full"; fi
expect_fail "duplicate case in the probabilities" 1 "probs-dup.csv:42: duplicate case valid_3_a_1 \(first at .*probs-dup.csv:5\)" \
    zeroshot --metrics --labels "$T/labels.csv" "$T/probs-dup.csv"
expect_fail "duplicate case in the labels" 1 "labels-dup.csv:42: duplicate case valid_7_a_1 \(first at .*labels-dup.csv:9\)" \
    zeroshot --metrics --labels "$T/labels-dup.csv" "$T/probs.csv"
expect_fail "header without file_name" 1 "probs-head.csv:1: header must be file_name followed by" \
    zeroshot --metrics --labels "$T/labels.csv" "$T/probs-head.csv"
expect_fail "header column not organ_abnormality_negative_positive" 1 "probs-col.csv:1: column 7 'Emphysema' is not organ_abnormality_negative_positive" \
    zeroshot --metrics --labels "$T/labels.csv" "$T/probs-col.csv"
expect_fail "short row" 1 "probs-short.csv:7: 10 fields, the header has 17" zeroshot --metrics --labels "$T/labels.csv" "$T/probs-short.csv"
expect_fail "text in a probability cell" 1 "probs-text.csv:7: column 'lung_Lung nodule_Not Lung nodule._Lung nodule.': 'high' is not a probability" \
    zeroshot --metrics --labels "$T/labels.csv" "$T/probs-text.csv"
expect_fail "label other than 0/1" 1 "labels-two.csv:5: column 'Coronary artery wall calcification': label '2' is not 0 or 1" \
    zeroshot --metrics --labels "$T/labels-two.csv" "$T/probs.csv"
expect_fail "no case in common" 1 "no case in common" zeroshot --metrics --labels "$T/labels-other.csv" "$T/probs.csv"
expect_fail "missing probabilities file" 1 "nothere.csv" zeroshot --metrics --labels "$T/labels.csv" "$T/nothere.csv"
expect_fail "--metrics without --labels" 2 "needs --labels" zeroshot --metrics "$T/probs.csv"
expect_fail "bad --nan" 2 "--nan: expected skip or zero" zeroshot --metrics --labels "$T/labels.csv" --nan drop "$T/probs.csv"
expect_fail "bad --ci" 2 "--ci: expected a level" zeroshot --metrics --labels "$T/labels.csv" --ci 95 "$T/probs.csv"
expect_fail "--roc without --metrics" 2 "need --metrics" zeroshot --prompts "$T/p.ctv" --roc "$T/x.svg" "$T/o.ctv"
check "--help" zeroshot --help
