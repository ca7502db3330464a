# pipelines/: dataset.mk on small phantoms (parallel, resumable, sharded, a bad case failing alone
# without a partial output, progress), the CT-RATE layout with organs missing and a corrupt file,
# an interrupted run resumed, GNU parallel on the same manifest giving the same result.
# (pipelines/slurm is tested in cluster.sh.)
source "$(dirname "$0")/lib.sh"
ROOT=${CT_ROOT:-$PWD}

mkdir -p "$T/ct" "$T/seg"
for i in 1 2 3; do
    ct-phantom -o "$T/p$i" --shape 48,40,20 --spacing 8,8,16 --seed $i
    mv "$T/p$i/ct.nii.gz" "$T/ct/case$i.nii.gz"
    mv "$T/p$i/seg.nii.gz" "$T/seg/case$i.nii.gz"
done
"$PYTHON" "$ROOT/tools/ctvis-convert.py" --random 3 --encoder-only -o "$T/w.ctv" 2>/dev/null ||
    { notok "setup: random weights" "ctvis-convert failed"; exit 1; }
export RESAMPLE_FLAGS="--spacing 16,8,8 --pad-to 32,64,64" MASKPOOL_FLAGS="--roi 32,64,64"
mk() { make -s -f "$ROOT/pipelines/dataset.mk" CT_DIR="$T/ct" SEG_DIR="$T/seg" OUT="$T/out" WEIGHTS="$T/w.ctv" "$@"; }
nfiles() { find "$@" 2>/dev/null | wc -l; }

check "dataset.mk: three cases with -j 2" mk -j 2 KEEP=tokens
n=$(nfiles "$T/out/cases" -name '*.json')
[ "$n" = 3 ] && ok "dataset.mk: one result per case" || notok "dataset.mk: one result per case" "$n files"
ids=$(ct-ls -S "$T/out/keep/case2.tokens.ctv" | awk '/^record/ {print $3}' | sort -u)
[ "$ids" = "id=case2" ] && ok "dataset.mk: records carry the case id" || notok "dataset.mk: records carry the case id" "$ids"
[ "$(nfiles "$T/out/keep" -name 'case*.tokens.ctv')" = 3 ] && [ "$(nfiles "$T/out/keep" -name '*windows*')" = 0 ] &&
    ok "dataset.mk: KEEP=tokens keeps the tokens, nothing else" || notok "dataset.mk: KEEP=tokens keeps the tokens, nothing else" "$(ls "$T/out/keep")"

# the same case through an explicit pipe gives the same tensors (history aside)
ct-resample "$T/ct/case1.nii.gz" --label "$T/seg/case1.nii.gz" --id case1 --spacing 16,8,8 --pad-to 32,64,64 |
    mask-pool --roi 32,64,64 | encode -w "$T/w.ctv" >"$T/pipe1.ctv"
a=$(ct-ls -S --crc "$T/pipe1.ctv" | grep crc32 | sed 's/^ *//')
b=$(ct-ls -S --crc "$T/out/keep/case1.tokens.ctv" | grep crc32 | sed 's/^ *//')
[ -n "$a" ] && [ "$a" = "$b" ] && ok "pipe: same tensors as the make target" || notok "pipe: same tensors as the make target" "differ"
# the result is ct-ls's summary of the tokens: the one of the pipe's stream, record for record
nohist() { "$PYTHON" -c 'import json, sys
for l in open(sys.argv[1]): r = json.loads(l); r["meta"].pop("history"); print(json.dumps(r, sort_keys=True))' "$1"; }
ct-ls --json "$T/pipe1.ctv" >"$T/pipe1.json"
nohist "$T/pipe1.json" >"$T/pipe1.nh"
nohist "$T/out/cases/case1.json" >"$T/res1.nh"
same "dataset.mk: the result is the summary of the case's stream" "$T/pipe1.nh" "$T/res1.nh"

touch -d '1 hour ago' "$T/ct"/* "$T/seg"/* "$T/w.ctv"
before=$(stat -c %Y "$T/out/cases/case1.json")
once=$(stat -c %Y "$T/out/once/.done")
sleep 1
mk -j 2
[ "$(stat -c %Y "$T/out/cases/case1.json")" = "$before" ] && [ "$(stat -c %Y "$T/out/once/.done")" = "$once" ] &&
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
if [ $rc != 0 ] && [ ! -e "$T/out/cases/case4.json" ] && [ "$(nfiles "$T/out" -name '*case4*' -path '*keep*')" = 0 ] &&
   [ "$(nfiles "$T/out" -name '*.tmp*')" = 0 ] && [ "$(nfiles "$T/out/cases" -name '*.json')" = 3 ] &&
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
if [ $rc = 0 ] && [ -e "$T/out/cases/case4.json" ] && [ "$(stat -c %Y "$T/out/cases/case1.json")" = "$before" ] &&
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

mkr() { make -s -f "$ROOT/pipelines/dataset.mk" MANIFEST="$T/manifest.tsv" OUT="$T/rout" WEIGHTS="$T/w.ctv" "$@"; }
setsid make -s -f "$ROOT/pipelines/dataset.mk" MANIFEST="$T/manifest.tsv" OUT="$T/rout" WEIGHTS="$T/w.ctv" -j 2 \
    >/dev/null 2>&1 &
pid=$!
for _ in $(seq 600); do [ "$(nfiles "$T/rout/cases" -name '*.json')" -ge 1 ] && break; sleep 0.1; done
kill -TERM -- -"$pid" 2>/dev/null; wait "$pid" 2>/dev/null
sleep 0.5
first=$(find "$T/rout/cases" -name '*.json' | sort)
declare -A mt
for f in $first; do mt[$f]=$(stat -c %Y "$f"); done
n1=$(echo "$first" | grep -c json)
if [ "$n1" -ge 1 ] && [ "$n1" -lt 6 ] && [ "$(nfiles "$T/rout" -name '*.tmp*')" = 0 ]; then
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

# the organ windows of every case: the missing organs have none, the others all theirs
"$PYTHON" - "$T/rout/result.jsonl" >"$T/organs.txt" <<'PY'
import json, sys
seen = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    seen.setdefault(r["id"], []).append(r["meta"]["organ"])
for k in sorted(seen): print(k, ",".join(seen[k]))
PY
printf '%s\n' "valid_1_a_1 lung,heart,esophagus,aorta" "valid_2_a_1 lung,heart,aorta" "valid_3_a_1 lung,heart,esophagus" \
    "valid_4_a_1 lung,esophagus,aorta" "valid_5_a_1 lung,heart,esophagus,aorta" >"$T/organs.want"
same "dataset.mk: a case without an organ has no window for it" "$T/organs.want" "$T/organs.txt"

# GNU parallel on the same manifest: the same result
if command -v parallel >/dev/null; then
    OUT="$T/pout" WEIGHTS="$T/w.ctv" "$ROOT/pipelines/parallel.sh" -j 2 "$T/manifest.tsv" >"$T/p.out" 2>"$T/p.err"
    rc=$?
    [ $rc = 1 ] && grep -q "^summary: 5 of 6 cases done, 1 failed" "$T/p.out" &&
        grep -qE '^valid_[0-9]_a_1 ok [0-9.]+ s \| [0-9]/6 done' "$T/p.err" &&
        ok "parallel.sh: the manifest's cases, the failed one listed" ||
        notok "parallel.sh: the manifest's cases, the failed one listed" "rc $rc: $(cat "$T/p.out" "$T/p.err" | head -c 600)"
    same "parallel.sh: the same merged result as make" "$T/rout/result.jsonl" "$T/pout/result.jsonl"
    same "parallel.sh: the same summary as make" <(cut -f1,2,4 "$T/rout/summary.tsv") <(cut -f1,2,4 "$T/pout/summary.tsv")
    before=$(stat -c %Y "$T/pout/cases/valid_1_a_1.json")
    OUT="$T/pout" WEIGHTS="$T/w.ctv" "$ROOT/pipelines/parallel.sh" -j 2 "$T/manifest.tsv" >/dev/null 2>"$T/p.err"
    [ "$(stat -c %Y "$T/pout/cases/valid_1_a_1.json")" = "$before" ] && [ "$(grep -c ' ok ' "$T/p.err")" = 0 ] &&
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
