# pipelines/: dataset.mk on small phantoms, CT to probabilities (parallel, resumable, sharded, a bad
# case failing alone without a partial output, progress), the CT-RATE layout with organs missing and
# a corrupt file, an interrupted run resumed, the merged CSV in the released layout and the metrics
# from the label CSV, GNU parallel on the same manifest giving the same result.
# (pipelines/slurm is tested in cluster.sh.)
source "$(dirname "$0")/lib.sh"
ROOT=${CT_ROOT:-$PWD}

mkdir -p "$T/ct" "$T/seg"
for i in 1 2 3; do
    ct-phantom -o "$T/p$i" --shape 48,40,20 --spacing 8,8,16 --seed $i
    mv "$T/p$i/ct.nii.gz" "$T/ct/case$i.nii.gz"
    mv "$T/p$i/seg.nii.gz" "$T/seg/case$i.nii.gz"
done
random_weights "$T/w.ctv" 3 ||
    { notok "setup: random weights" "ctvis-convert failed"; exit 1; }
export RESAMPLE_FLAGS="--spacing 16,8,8 --pad-to 32,64,64" MASKPOOL_FLAGS="--roi 32,64,64"
mk() { make -s -f "$ROOT/pipelines/dataset.mk" CT_DIR="$T/ct" SEG_DIR="$T/seg" OUT="$T/out" WEIGHTS="$T/w.ctv" "$@"; }
nfiles() { find "$@" 2>/dev/null | wc -l; }

check "dataset.mk: three cases with -j 2" mk -j 2 KEEP=tokens
n=$(nfiles "$T/out/cases" -name '*.ctv')
[ "$n" = 3 ] && ok "dataset.mk: one result per case" || notok "dataset.mk: one result per case" "$n files"
ids=$(ct-ls -S "$T/out/keep/case2.tokens.ctv" | awk '/^record/ {print $3}' | sort -u)
[ "$ids" = "id=case2" ] && ok "dataset.mk: records carry the case id" || notok "dataset.mk: records carry the case id" "$ids"
[ "$(nfiles "$T/out/keep" -name 'case*.tokens.ctv')" = 3 ] && [ "$(nfiles "$T/out/keep" -name '*windows*')" = 0 ] &&
    ok "dataset.mk: KEEP=tokens keeps the tokens, nothing else" || notok "dataset.mk: KEEP=tokens keeps the tokens, nothing else" "$(ls "$T/out/keep")"

# the same case through an explicit pipe gives the same tensors (history aside; bit-equal by
# construction: the same tools on the same input with one thread)
ct-resample "$T/ct/case1.nii.gz" --label "$T/seg/case1.nii.gz" --id case1 --spacing 16,8,8 --pad-to 32,64,64 |
    mask-pool --roi 32,64,64 | encode -w "$T/w.ctv" 2>/dev/null | tee "$T/pipe1.ctv" | vq-recon -w "$T/w.ctv" 2>/dev/null |
    zeroshot --prompts <(text-encode -w "$T/w.ctv" 2>/dev/null) --csv "$T/pipe1.csv" >"$T/probs1.ctv"
crcs() { ct-ls -S --crc "$1" | grep crc32 | sed 's/^ *//'; }
a=$(crcs "$T/pipe1.ctv"); b=$(crcs "$T/out/keep/case1.tokens.ctv")
[ -n "$a" ] && [ "$a" = "$b" ] && ok "pipe: same tensors as the make target" || notok "pipe: same tensors as the make target" "differ"
a=$(crcs "$T/probs1.ctv"); b=$(crcs "$T/out/cases/case1.ctv")
[ -n "$a" ] && [ "$a" = "$b" ] && [ "$(ct-ls "$T/out/cases/case1.ctv" | grep '^record' | tr -s ' ')" = "record 0 id=case1 schema=ct.probs/1" ] &&
    ok "dataset.mk: the result is the case's ct.probs/1 record, as the pipe's" ||
    notok "dataset.mk: the result is the case's ct.probs/1 record, as the pipe's" "$(ct-ls "$T/out/cases/case1.ctv" | head -3)"
same "dataset.mk: the case's CSV row is the pipe's" "$T/pipe1.csv" "$T/out/rows/case1.csv"

touch -d '1 hour ago' "$T/ct"/* "$T/seg"/* "$T/w.ctv"
before=$(stat -c %Y "$T/out/cases/case1.ctv")
once=$(stat -c %Y "$T/out/once/.done")
sleep 1
mk -j 2
[ "$(stat -c %Y "$T/out/cases/case1.ctv")" = "$before" ] && [ "$(stat -c %Y "$T/out/once/.done")" = "$once" ] &&
    ok "dataset.mk: done cases and the once-per-run step are not redone" ||
    notok "dataset.mk: done cases and the once-per-run step are not redone" "rewritten"

s0=$(mk SHARD=0/2 list | tr '\n' ' ')
s1=$(mk SHARD=1/2 list | tr '\n' ' ')
[ "$s0" = "case1 case3 " ] && [ "$s1" = "case2 " ] && ok "dataset.mk: SHARD=i/N splits the cases" ||
    notok "dataset.mk: SHARD=i/N splits the cases" "'$s0' / '$s1'"

head -c 2000 "$T/ct/case3.nii.gz" >"$T/ct/case4.nii.gz"
cp "$T/seg/case3.nii.gz" "$T/seg/case4.nii.gz"
mk -j 2 KEEP=tokens >"$T/mk.out" 2>"$T/mk.err"
rc=$?
if [ $rc != 0 ] && [ ! -e "$T/out/cases/case4.ctv" ] && [ "$(nfiles "$T/out" -name '*case4*' \( -path '*keep*' -o -path '*rows*' \))" = 0 ] &&
   [ "$(nfiles "$T/out" -name '*.tmp*')" = 0 ] && [ "$(nfiles "$T/out/cases" -name '*.ctv')" = 3 ] &&
   grep -q "^case4: FAILED: ct-resample: .*truncated file" "$T/mk.err"; then
    ok "dataset.mk: a bad case fails alone and leaves no partial output"
else notok "dataset.mk: a bad case fails alone and leaves no partial output" "rc $rc: $(ls -R "$T/out" | tr '\n' ' ')"; fi
if grep -q "^summary: 3 of 4 cases done, 1 failed, 0 missing" "$T/mk.out" && grep -q "^  failed case4: ct-resample: .*truncated" "$T/mk.out" &&
   [ "$(awk -F '\t' '$1 == "case4" {print $2}' "$T/out/summary.tsv")" = failed ] &&
   [ "$(awk -F '\t' '$2 == "ok"' "$T/out/summary.tsv" | wc -l)" = 3 ]; then
    ok "dataset.mk: the summary lists the failed case"
else notok "dataset.mk: the summary lists the failed case" "$(cat "$T/mk.out" "$T/out/summary.tsv")"; fi

# repaired, only the failed case runs again, and the run succeeds
cp "$T/ct/case3.nii.gz" "$T/ct/case4.nii.gz"
mk -j 2 >"$T/mk.out" 2>"$T/mk.err"
rc=$?
if [ $rc = 0 ] && [ -e "$T/out/cases/case4.ctv" ] && [ -e "$T/out/rows/case4.csv" ] && [ "$(stat -c %Y "$T/out/cases/case1.ctv")" = "$before" ] &&
   [ ! -e "$T/out/status/case4.failed" ] && [ "$(grep -c ' ok ' "$T/mk.err")" = 1 ] &&
   grep -q "^summary: 4 of 4 cases done, 0 failed" "$T/mk.out"; then
    ok "dataset.mk: a repaired case alone is redone"
else notok "dataset.mk: a repaired case alone is redone" "rc $rc: $(cat "$T/mk.err" "$T/mk.out")"; fi

cp "$T/w.ctv" "$T/bad.ctv"; truncate -s 5000 "$T/bad.ctv"
make -s -f "$ROOT/pipelines/dataset.mk" CT_DIR="$T/ct" SEG_DIR="$T/seg" OUT="$T/out-bad" WEIGHTS="$T/bad.ctv" >/dev/null 2>"$T/mk.err"
rc=$?
[ $rc != 0 ] && grep -q "once-per-run step failed" "$T/mk.err" && [ "$(nfiles "$T/out-bad/cases" -type f)" = 0 ] &&
    [ "$(nfiles "$T/out-bad/log" -type f)" = 0 ] &&
    ok "dataset.mk: bad weights stop the run once, before any case" ||
    notok "dataset.mk: bad weights stop the run once, before any case" "rc $rc: $(head -c 300 "$T/mk.err")"

# ---- CT-RATE's layout: varied sizes, organs missing, a corrupt CT; interrupted and resumed ----
"$ROOT/pipelines/phantom-dataset.sh" --cases 6 --corrupt "$T/rate" >"$T/rate.txt" ||
    { notok "phantom-dataset.sh" "failed"; exit 1; }
"$ROOT/pipelines/manifest.sh" "$T/rate/valid" "$T/rate/masks/valid" >"$T/manifest.tsv"
if [ "$(cut -f1 "$T/manifest.tsv" | tr '\n' ' ')" = "valid_1_a_1 valid_2_a_1 valid_3_a_1 valid_4_a_1 valid_5_a_1 valid_6_a_1 " ] &&
   [ "$(awk -F '\t' '$2 == T "/rate/valid/valid_2/valid_2_a/valid_2_a_1.nii.gz" &&
                       $3 == T "/rate/masks/valid/valid_2/valid_2_a/valid_2_a_1.nii.gz"' T="$T" "$T/manifest.tsv" | wc -l)" = 1 ] &&
   [ "$(head -1 "$T/rate/multi_abnormality_labels/"*.csv | tr ',' '\n' | wc -l)" = 19 ]; then
    ok "manifest.sh: CT-RATE's tree, one line per case (id, CT, mask)"
else notok "manifest.sh: CT-RATE's tree, one line per case (id, CT, mask)" "$(cat "$T/manifest.tsv")"; fi
expect_fail "manifest.sh: missing directory" 1 "manifest.sh: $T/nope: not a directory" \
    "$ROOT/pipelines/manifest.sh" "$T/nope" "$T/seg"
expect_fail "manifest.sh: bad shard" 1 "manifest.sh: --shard: expected I/N" \
    "$ROOT/pipelines/manifest.sh" --shard 2/2 "$T/manifest.tsv"
expect_fail "ct-phantom: --unlabel out of range" 2 "ct-phantom: --unlabel: expected class ids 1..255" \
    ct-phantom -o "$T/x" --unlabel 15,0

LABELS=$(echo "$T/rate/multi_abnormality_labels/"*.csv)
mkr() { make -s -f "$ROOT/pipelines/dataset.mk" MANIFEST="$T/manifest.tsv" OUT="$T/rout" WEIGHTS="$T/w.ctv" LABELS="$LABELS" "$@"; }
setsid make -s -f "$ROOT/pipelines/dataset.mk" MANIFEST="$T/manifest.tsv" OUT="$T/rout" WEIGHTS="$T/w.ctv" LABELS="$LABELS" -j 2 \
    >/dev/null 2>&1 &
pid=$!
for _ in $(seq 600); do [ "$(nfiles "$T/rout/cases" -name '*.ctv')" -ge 1 ] && break; sleep 0.1; done
kill -TERM -- -"$pid" 2>/dev/null; wait "$pid" 2>/dev/null
sleep 0.5
first=$(find "$T/rout/cases" -name '*.ctv' | sort)
declare -A mt
for f in $first; do mt[$f]=$(stat -c %Y "$f"); done
n1=$(echo "$first" | grep -c ctv)
# no temporary file left: *.tmp* (ct_atomic's, the results'), .ID.NAME.ctv.PID (kept streams, CSV rows)
if [ "$n1" -ge 1 ] && [ "$n1" -lt 6 ] && [ "$(nfiles "$T/rout" \( -name '*.tmp*' -o -name '.*.[0-9]*' \))" = 0 ]; then
    ok "dataset.mk: an interrupted run leaves whole results only ($n1 of 6)"
else notok "dataset.mk: an interrupted run leaves whole results only ($n1 of 6)" "$(ls -R "$T/rout" | tr '\n' ' ')"; fi
mkr summary >"$T/r.out" 2>/dev/null
[ $? != 0 ] && [ "$(grep -c '^  missing valid_[0-9]_a_1: not run or interrupted' "$T/r.out")" = $((6 - n1)) ] &&
    ok "dataset.mk: the summary of an interrupted run lists the missing cases" ||
    notok "dataset.mk: the summary of an interrupted run lists the missing cases" "$(cat "$T/r.out")"
sleep 1
mkr -j 2 >"$T/r.out" 2>"$T/r.err"
rc=$?
redone=0
for f in $first; do [ "$(stat -c %Y "$f")" = "${mt[$f]}" ] || redone=1; done
[ $rc != 0 ] && [ $redone = 0 ] && [ "$(grep -cE '^valid_[0-9]_a_1 (ok|failed) ' "$T/r.err")" = $((6 - n1)) ] &&
    ok "dataset.mk: the re-run does only what was missing" ||
    notok "dataset.mk: the re-run does only what was missing" "rc $rc redone $redone: $(cat "$T/r.err")"
if grep -qE '^valid_[0-9]_a_1 ok [0-9.]+ s \| [0-9]/6 done( , 1 failed)? \| [0-9.]+ cases/min \| ETA [0-9]+(s|m)' "$T/r.err" &&
   grep -qE '^valid_[0-9]_a_1 (ok|failed) [0-9.]+ s \| 6/6 done, 1 failed \| [0-9.]+ cases/min$' "$T/r.err"; then
    ok "dataset.mk: progress lines: done/total, rate, ETA"
else notok "dataset.mk: progress lines: done/total, rate, ETA" "$(cat "$T/r.err")"; fi
if grep -q "^summary: 5 of 6 cases done, 1 failed, 0 missing" "$T/r.out" &&
   grep -q "^  failed valid_6_a_1: ct-resample: .*truncated file" "$T/r.out"; then
    ok "dataset.mk: the corrupt file fails alone, listed in the summary"
else notok "dataset.mk: the corrupt file fails alone, listed in the summary" "$(cat "$T/r.out")"; fi

# the organ results of every case (kept by default): the missing organs have none, the others all theirs
cat "$T/rout/keep/"*.organ.ctv | ct-ls --json >"$T/organs.jsonl"
"$PYTHON" - "$T/organs.jsonl" >"$T/organs.txt" <<'PY'
import json, sys
seen = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["meta"]["organ"] not in seen.setdefault(r["id"], []): seen[r["id"]].append(r["meta"]["organ"])
for k in sorted(seen): print(k, ",".join(seen[k]))
PY
printf '%s\n' "valid_1_a_1 lung,heart,esophagus,aorta" "valid_2_a_1 lung,heart,aorta" "valid_3_a_1 lung,heart,esophagus" \
    "valid_4_a_1 lung,esophagus,aorta" "valid_5_a_1 lung,heart,esophagus,aorta" >"$T/organs.want"
same "dataset.mk: a case without an organ has no organ result for it" "$T/organs.want" "$T/organs.txt"

# the merged CSV: the released header (organ_abnormality_negative_positive of the item list), one
# row per done case in manifest order, empty cells exactly for the missing organs; its values are
# the p_pos of probs.ctv
CT_ROOT=$ROOT "$PYTHON" - "$ROOT/pipelines/ct-rate-abnormalities.yaml" "$T/rout/probs.csv" "$T/organs.want" "$T/rout/probs.ctv" \
    "$ROOT/tests/ref" >"$T/csv.err" 2>&1 <<'PY'
import csv, math, sys, yaml
sys.path.insert(0, sys.argv[5])
import reflib
items = yaml.safe_load(open(sys.argv[1]))["items"]
rows = list(csv.reader(open(sys.argv[2])))
want = ["file_name"] + ["%s_%s_%s_%s" % (i["organ"], i["abnormality"], i["negative"], i["positive"]) for i in items]
assert rows[0] == want, ("header", rows[0])
organs = {l.split()[0]: l.split()[1].split(",") for l in open(sys.argv[3])}
assert [r[0] for r in rows[1:]] == [k + ".nii.gz" for k in sorted(organs)], [r[0] for r in rows[1:]]
for r in rows[1:]:
    for it, v in zip(items, r[1:]):
        assert (v == "") == (it["organ"] not in organs[r[0][:-7]]), (r[0], it, v)
recs = list(reflib.read_stream(open(sys.argv[4], "rb")))
assert [r["schema"] for r in recs] == ["ct.probs/1"] * len(organs) and [r["id"] + ".nii.gz" for r in recs] == [r[0] for r in rows[1:]]
# the CSV holds Python's repr of each f64, which reads back exactly
for rec, r in zip(recs, rows[1:]):
    p = [float(v) if v else math.nan for v in r[1:]]
    assert all((a == b) or (math.isnan(a) and math.isnan(b)) for a, b in zip(p, rec["tensors"]["p_pos"])), r[0]
PY
[ $? = 0 ] && ok "dataset.mk: probs.csv: the released header, a row per done case, empty cells for missing organs" ||
    notok "dataset.mk: probs.csv: the released header, a row per done case, empty cells for missing organs" "$(cat "$T/csv.err")"

# the metrics from the label CSV: a table of the 16 items and their mean on the 5 done cases (the
# failed one warned about), the same as zeroshot --metrics on the merged CSV, and AUCs equal to
# scikit-learn's on the merged CSV and the labels (1e-12: the same ranks, summed differently)
grep -q "^metrics: $T/rout/metrics.txt" "$T/r.out" && grep -q "have no probabilities in .*(valid_6_a_1)" "$T/r.err" &&
    [ "$(grep -cE '^(Emphysema|Cardiomegaly|Hiatal hernia|Arterial wall calcification|mean) ' "$T/rout/metrics.txt")" = 10 ] &&
    grep -q '^5 cases' "$T/rout/metrics.txt" && [ -s "$T/rout/metrics.json" ] && grep -q '<svg' "$T/rout/roc.svg" &&
    [ "$(wc -l <"$T/rout/metrics.csv")" = 18 ] &&
    ok "dataset.mk: LABELS: the metrics table, CSV, JSON and ROC curves" ||
    notok "dataset.mk: LABELS: the metrics table, CSV, JSON and ROC curves" "$(ls "$T/rout"; head -3 "$T/rout/metrics.txt")"
zeroshot --metrics --labels "$LABELS" --csv "$T/mcsv.csv" -o /dev/null "$T/rout/probs.csv" 2>/dev/null
same "dataset.mk: the metrics of probs.ctv are those of the merged probs.csv" "$T/rout/metrics.csv" "$T/mcsv.csv"
"$PYTHON" - "$T/rout/probs.csv" "$LABELS" "$T/rout/metrics.csv" >"$T/auc.err" 2>&1 <<'PY'
import csv, math, sys
from sklearn.metrics import roc_auc_score
probs = list(csv.DictReader(open(sys.argv[1])))
labels = {r["VolumeName"]: r for r in csv.DictReader(open(sys.argv[2]))}
n = 0
for m in csv.DictReader(open(sys.argv[3])):
    if m["item"] == "mean" or not m["item"]: continue
    pairs = [(float(r[m["item"]]), int(labels[r["file_name"]][m["abnormality"]])) for r in probs if r[m["item"]]]
    assert len(pairs) == int(m["n"]), (m["item"], len(pairs), m["n"])
    ys = {y for _, y in pairs}
    if len(ys) < 2: continue
    want = roc_auc_score([y for _, y in pairs], [p for p, _ in pairs])
    assert abs(float(m["auc"]) - want) <= 1e-12, (m["item"], m["auc"], want)
    n += 1
assert n >= 10, n
PY
[ $? = 0 ] && ok "dataset.mk: the AUCs are scikit-learn's on the merged CSV and the labels" ||
    notok "dataset.mk: the AUCs are scikit-learn's on the merged CSV and the labels" "$(tail -3 "$T/auc.err")"

# GNU parallel on the same manifest: the same result
if command -v parallel >/dev/null; then
    OUT="$T/pout" WEIGHTS="$T/w.ctv" LABELS="$LABELS" "$ROOT/pipelines/parallel.sh" -j 2 "$T/manifest.tsv" >"$T/p.out" 2>"$T/p.err"
    rc=$?
    [ $rc = 1 ] && grep -q "^summary: 5 of 6 cases done, 1 failed" "$T/p.out" &&
        grep -qE '^valid_[0-9]_a_1 ok [0-9.]+ s \| [0-9]/6 done' "$T/p.err" &&
        ok "parallel.sh: the manifest's cases, the failed one listed" ||
        notok "parallel.sh: the manifest's cases, the failed one listed" "rc $rc: $(cat "$T/p.out" "$T/p.err" | head -c 600)"
    same "parallel.sh: the same merged CSV as make" "$T/rout/probs.csv" "$T/pout/probs.csv"
    same "parallel.sh: the same probabilities as make" <(crcs "$T/rout/probs.ctv") <(crcs "$T/pout/probs.ctv")
    same "parallel.sh: the same metrics as make" "$T/rout/metrics.csv" "$T/pout/metrics.csv"
    cut -f1,2,4 "$T/rout/summary.tsv" >"$T/rsum"; cut -f1,2,4 "$T/pout/summary.tsv" >"$T/psum"
    cmp -s "$T/rsum" "$T/psum" && ok "parallel.sh: the same summary as make" ||
        notok "parallel.sh: the same summary as make" "$(diff "$T/rsum" "$T/psum" | tr '\n' ' ')"
    before=$(stat -c %Y "$T/pout/cases/valid_1_a_1.ctv")
    OUT="$T/pout" WEIGHTS="$T/w.ctv" "$ROOT/pipelines/parallel.sh" -j 2 "$T/manifest.tsv" >/dev/null 2>"$T/p.err"
    [ "$(stat -c %Y "$T/pout/cases/valid_1_a_1.ctv")" = "$before" ] && [ "$(grep -c ' ok ' "$T/p.err")" = 0 ] &&
        ok "parallel.sh: a re-run skips the done cases" || notok "parallel.sh: a re-run skips the done cases" "$(cat "$T/p.err")"
else
    skip "parallel.sh" "GNU parallel is not installed (scripts/deps.sh test installs it)"
fi
expect_fail "parallel.sh: unreadable manifest" 1 "parallel.sh: $T/none.tsv: cannot read the manifest" \
    "$ROOT/pipelines/parallel.sh" "$T/none.tsv"
expect_fail "parallel.sh: bad -j" 1 "parallel.sh: -j: expected a positive count" \
    "$ROOT/pipelines/parallel.sh" -j 0 "$T/manifest.tsv"
expect_fail "slurm/submit.sh: unreadable manifest" 1 "submit.sh: $T/none.tsv: cannot read the manifest" \
    "$ROOT/pipelines/slurm/submit.sh" -n 2 "$T/none.tsv"
