#!/usr/bin/env bash
# report-label: every mode on the hand-written corpus (tests/data/reports),
# hand-derived labels, round trips, and one test per class of bad input.
source "$(dirname "$0")/lib.sh"
D=$PWD/tests/data/reports
RL=report-label

# ---- labels on the corpus, against the hand-derived table ----
{
    $RL -f csv "$D"/valid_101_a.json "$D"/valid_102_a.yaml "$D"/valid_103_a.md "$D"/valid_104_a.json \
        "$D"/answers.jsonl "$D"/batch.yaml
    $RL -f csv --desc "$D"/desc_info.json --conc "$D"/conc_info.json | tail -n +2
} | cut -d, -f1-5 >"$T/labels.csv"
same "corpus: labels equal the hand-derived ones" "$T/labels.csv" "$D/expected-labels.csv"
$RL -f csv --released-empty --desc "$D"/desc_info.json --conc "$D"/conc_info.json | cut -d, -f1-5 >"$T/rel.csv"
same "fvlm pair: --released-empty labels" "$T/rel.csv" "$D/expected-labels-released.csv"

# ---- output formats agree: direct CSV/JSONL == stream -> CSV/JSONL ----
IN=("$D"/valid_101_a.json "$D"/valid_102_a.yaml "$D"/valid_103_a.md "$D"/answers.jsonl "$D"/batch.yaml)
$RL "${IN[@]}" >"$T/r.ctv"
$RL "${IN[@]}" -f csv >"$T/direct.csv"
$RL --from-stream -f csv "$T/r.ctv" >"$T/via.csv"
same "formats: stream -> csv equals direct csv" "$T/direct.csv" "$T/via.csv"
$RL "${IN[@]}" -f jsonl >"$T/direct.jsonl"
$RL --from-stream "$T/r.ctv" >"$T/via.jsonl"
same "formats: stream -> jsonl equals direct jsonl" "$T/direct.jsonl" "$T/via.jsonl"
$RL "${IN[@]}" -o "$T/out.csv"
same "formats: -o FILE.csv writes CSV" "$T/direct.csv" "$T/out.csv"
check "formats: stream records are ct.report/1" ct-ls --expect ct.report/1 "$T/r.ctv"
cat "$D"/answers.jsonl | $RL -f csv - >"$T/stdin.csv"
$RL -f csv "$D"/answers.jsonl | sed 's/,[^,]*$//' >"$T/a.csv"
sed 's/,[^,]*$//' "$T/stdin.csv" >"$T/b.csv"
same "input: JSON lines on stdin detected" "$T/a.csv" "$T/b.csv"
cp "$D"/answers.jsonl "$T/lines.json"
$RL -f csv "$T/lines.json" | sed 's/,[^,]*$//' >"$T/c.csv"
same "input: JSON lines in a .json file detected" "$T/a.csv" "$T/c.csv"
cp "$D"/valid_101_a.json "$T/report.txt"
$RL -f csv --input json "$T/report.txt" | cut -d, -f2-5 >"$T/in.csv"
printf 'lung,heart,esophagus,aorta\n0,0,0,0\n' >"$T/in.want"
same "input: --input json on a .txt file" "$T/in.csv" "$T/in.want"

# an LLM answer in bare YAML (no code fence) reads as the same answer in JSON (issue 15 item 15)
printf '%s\n' '{"scan_id": "y1", "answer": "```json\n{\"findings\": {\"lung\": \"Small nodule.\", \"heart\": \"Normal size.\"}, \"impression\": {\"lung\": \"Pulmonary nodule.\"}}\n```"}' >"$T/ans-json.jsonl"
printf '%s\n' '{"scan_id": "y1", "answer": "findings:\n  lung: Small nodule.\n  heart: Normal size.\nimpression:\n  lung: Pulmonary nodule.\n"}' >"$T/ans-yaml.jsonl"
$RL -f csv "$T/ans-json.jsonl" | cut -d, -f1-9 >"$T/ans-json.csv"
$RL -f csv "$T/ans-yaml.jsonl" >"$T/ans-yaml.full.csv"
cut -d, -f1-9 "$T/ans-yaml.full.csv" >"$T/ans-yaml.csv"
same "input: an answer in bare YAML gives the labels and texts of its JSON form" "$T/ans-json.csv" "$T/ans-yaml.csv"
grep -q 'answer read as YAML' "$T/ans-yaml.full.csv" && ok "input: a bare-YAML answer is listed as normalised" ||
    notok "input: bare-YAML answer noted" "$(cat "$T/ans-yaml.full.csv")"

# ---- CT-RATE label CSV: round trip ----
$RL --labels "$D"/ct-rate-labels.csv >"$T/l.ctv"
$RL --from-stream -f csv "$T/l.ctv" >"$T/l.csv"
same "labels: CSV -> stream -> CSV is byte-identical" "$D/ct-rate-labels.csv" "$T/l.csv"
$RL --labels -f csv "$D"/ct-rate-labels.csv >"$T/l2.csv"
same "labels: CSV -> CSV directly is byte-identical" "$D/ct-rate-labels.csv" "$T/l2.csv"
sed 's/$/\r/' "$D"/ct-rate-labels.csv >"$T/crlf.csv"
$RL --labels -f csv "$T/crlf.csv" >"$T/l3.csv"
same "labels: CRLF input gives LF output" "$D/ct-rate-labels.csv" "$T/l3.csv"
check "labels: records are ct.labels/1" ct-ls --expect ct.labels/1 "$T/l.ctv"
n=$(ct-ls --json "$T/l.ctv" | grep -c '"id": "valid_104_a_2"')
[ "$n" = 1 ] && ok "labels: record id is VolumeName without .nii.gz" || notok "labels: record id" "$n"

# ---- prompts ----
$RL --prompts "$D"/ct-rate-reports.csv >"$T/p.jsonl"
n=$(wc -l <"$T/p.jsonl")
[ "$n" = 3 ] && ok "prompts: one per scan (4 volumes, 3 scans)" || notok "prompts: one per scan" "$n lines"
grep -q '"scan_id": "valid_301_a", "volume": "valid_301_a_1.nii.gz"' "$T/p.jsonl" &&
    ok "prompts: scan id and first volume" || notok "prompts: scan id" "$(head -c 200 "$T/p.jsonl")"
printf 'My prompt for {{organs}}.\n{{findings}}\n--\n{{impression}}\n' >"$T/tmpl.txt"
$RL --prompts --template "$T/tmpl.txt" "$D"/ct-rate-reports.csv | head -1 >"$T/p1.jsonl"
grep -q '"prompt": "My prompt for lung, heart, esophagus, aorta.\\nTrachea' "$T/p1.jsonl" &&
    ok "prompts: --template" || notok "prompts: --template" "$(head -c 200 "$T/p1.jsonl")"

# ---- validate ----
$RL --validate "$D"/valid_101_a.json "$D"/answers.jsonl >"$T/v.txt" 2>"$T/v.err"
rc=$?
[ $rc = 0 ] && grep -q 'answers.jsonl:4: scan valid_108_a: normalised: organ key .LUNG. read as lung' "$T/v.txt" &&
    grep -q '7 answers: 0 invalid, 0 with warnings, 5 normalised, 2 as asked' "$T/v.err" &&
    ok "validate: corpus passes, normalisations listed" || notok "validate: corpus" "rc=$rc $(cat "$T/v.err")"
$RL --validate --strict "$D"/answers.jsonl >/dev/null 2>&1
[ $? = 1 ] && ok "validate: --strict fails on normalised answers" || notok "validate: --strict" "exit 0"
printf '{"scan_id": "a", "answer": "{\\"findings\\": {\\"lung\\": 1, \\"brain\\": \\"x\\"}, \\"impression\\": {\\"heart\\": \\"N/A\\"}}"}\n' >"$T/bad-answers.jsonl"
$RL --validate "$T/bad-answers.jsonl" >"$T/v2.txt" 2>/dev/null
rc=$?
[ $rc = 1 ] && [ "$(grep -c ': error: ' "$T/v2.txt")" = 2 ] && grep -q "warning: impression.heart is 'N/A'" "$T/v2.txt" &&
    ok "validate: every problem of an answer listed" || notok "validate: problems" "rc=$rc $(cat "$T/v2.txt")"

# ---- custom organ set ----
cat >"$T/organs.yaml" <<'EOF'
organs: [lung, heart]
aliases: {lungs: lung}
ignore: [esophagus, aorta, thoracic aorta, oesophagus]
EOF
$RL -f csv --organs "$T/organs.yaml" "$D"/valid_103_a.md | cut -d, -f1-3 >"$T/o.csv"
printf 'scan_id,lung,heart\nvalid_103_a,0,0\n' >"$T/o.want"
same "organs: custom organ set with an ignore list" "$T/o.csv" "$T/o.want"

# ---- keep going ----
printf '{"scan_id": "x1", "findings": {}, "impression": {}}\n{"scan_id": "x2", "findings": {"spleen": "big"}, "impression": {}}\nnot json\n{"scan_id": "x1", "findings": {}, "impression": {}}\n{"scan_id": "x3", "findings": {}, "impression": {}}\n' >"$T/kg.jsonl"
$RL -k -f csv "$T/kg.jsonl" >"$T/kg.csv" 2>"$T/kg.err"
rc=$?
[ $rc = 1 ] && [ "$(cut -d, -f1 "$T/kg.csv" | tr '\n' ' ')" = "scan_id x1 x3 " ] && [ "$(wc -l <"$T/kg.err")" = 4 ] &&
    grep -q 'kg.jsonl:2: scan x2: findings: unknown organ .spleen.' "$T/kg.err" &&
    grep -q 'kg.jsonl:4: scan x1: duplicated scan id (first at .*kg.jsonl:1)' "$T/kg.err" &&
    grep -q 'skipped 3 of 5 inputs' "$T/kg.err" &&
    ok "keep-going: good records written, skipped ones listed, exit 1" ||
    notok "keep-going" "rc=$rc $(cat "$T/kg.err")"

{ head -3 "$D"/ct-rate-labels.csv; printf '"valid_9_a_1,0\n'; } >"$T/kq.csv"
$RL -k --labels -f csv "$T/nope.csv" "$T/kq.csv" >"$T/kq.out" 2>"$T/kq.err"
rc=$?
[ $rc = 1 ] && [ "$(wc -l <"$T/kq.out")" = 3 ] && grep -q 'nope.csv: No such file' "$T/kq.err" &&
    grep -q 'kq.csv:4:1: unterminated quoted field .*(the rest of this file is skipped)' "$T/kq.err" &&
    grep -q 'skipped 2 of 4 inputs' "$T/kq.err" &&
    ok "keep-going: a missing file and a broken CSV tail are listed" || notok "keep-going: CSV" "rc=$rc $(cat "$T/kq.err")"

# ---- bad input: one line on stderr, nothing on stdout, exit 1 ----
printf '{"scan_id": "a",\n "findings": {"lung": "x"},\n "impression": {\n' >"$T/trunc.json"
expect_fail "bad: invalid JSON names file and line" 1 '^report-label: .*trunc.json:4:' $RL -f csv "$T/trunc.json"
printf '{"scan_id": "a", "findings": {"lung": "x\xc3("}, "impression": {}}\n' >"$T/utf.json"
expect_fail "bad: invalid UTF-8 in JSON" 1 'utf.json:1:41: invalid UTF-8' $RL -f csv "$T/utf.json"
printf 'scan_id: a\nfindings:\n  lung: "\xe9t\xe9"\nimpression: {}\n' >"$T/utf.yaml"
expect_fail "bad: invalid UTF-8 in YAML" 1 'utf.yaml:3:10: invalid UTF-8' $RL -f csv "$T/utf.yaml"
printf 'scan_id: a\nfindings: {lung: [x\nimpression: {}\n' >"$T/syn.yaml"
expect_fail "bad: invalid YAML" 1 'syn.yaml:[0-9]+:[0-9]+: ' $RL -f csv "$T/syn.yaml"
printf '{"scan_id": "a", "findings": {"mediastinum": "x"}, "impression": {}}\n' >"$T/organ.json"
expect_fail "bad: unknown organ" 1 "organ.json: scan a: findings: unknown organ 'mediastinum'" $RL -f csv "$T/organ.json"
printf '{"scan_id": "valid_5_a", "findings": {}, "impression": {}}\n' >"$T/d1.json"
printf '{"scan_id": "valid_5_a_2.nii.gz", "findings": {}, "impression": {}}\n' >"$T/d2.json"
expect_fail "bad: duplicated scan id across files" 1 'd2.json: scan valid_5_a: duplicated scan id \(first at .*d1.json\)' \
    $RL -f csv "$T/d1.json" "$T/d2.json"
printf '{"scan_id": "a", "findings": {}}\n' >"$T/miss.json"
expect_fail "bad: missing field" 1 "miss.json: scan a: missing field 'impression'" $RL -f csv "$T/miss.json"
printf '{"findings": {}, "impression": {}}\n' | expect_fail "bad: no scan id on stdin" 1 "missing field 'scan_id'" $RL -f csv -
printf '{"scan_id": "a", "findings": {"lung": {"x": 1}}, "impression": {"lung": 2}}\n' >"$T/types.json"
expect_fail "bad: several problems, first shown and counted" 1 'findings.lung is a map.*\(and 1 more problems' \
    $RL -f csv "$T/types.json"
printf '{"scan_id": "a", "answer": "```json\\n{}\\n```\\nand\\n```\\n{}\\n```"}\n' >"$T/two.jsonl"
expect_fail "bad: answer with two code blocks" 1 'two.jsonl:1: scan a: answer:1: more than one code block' \
    $RL -f csv "$T/two.jsonl"
expect_fail "bad: missing file" 1 'nope.json: No such file' $RL -f csv "$T/nope.json"
printf '{"valid_1_a": {"lung": null}}' >"$T/desc.json"
printf '{}' >"$T/conc.json"
expect_fail "bad: fvlm null value" 1 'desc.json\[valid_1_a\]: scan valid_1_a: findings.lung is null' \
    $RL -f csv --desc "$T/desc.json" --conc "$T/conc.json"
printf '{"valid_1_a": {"lung": "a"},\n "valid_1_a": {}}' >"$T/desc2.json"
expect_fail "bad: fvlm duplicated scan id" 1 'desc2.json:2:.*duplicate object key' \
    $RL -f csv --desc "$T/desc2.json" --conc "$T/conc.json"

# label CSV
head -1 "$D"/ct-rate-labels.csv | sed 's/,Emphysema//' >"$T/miss.csv"
expect_fail "labels: missing column" 1 "miss.csv:1: missing column 'Emphysema'" $RL --labels -f csv "$T/miss.csv"
{ head -2 "$D"/ct-rate-labels.csv; echo "valid_9_a_1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0.5"; } >"$T/val.csv"
expect_fail "labels: value not 0/1" 1 "val.csv:3: Interlobular septal thickening: '0.5' is not 0 or 1" \
    $RL --labels -f csv "$T/val.csv"
{ head -3 "$D"/ct-rate-labels.csv; sed -n 2p "$D"/ct-rate-labels.csv | sed 's/.nii.gz//'; } >"$T/dupv.csv"
expect_fail "labels: duplicated volume" 1 'dupv.csv:4: duplicated volume valid_101_a_1 \(first at .*dupv.csv:2\)' \
    $RL --labels -f csv "$T/dupv.csv"
{ head -2 "$D"/ct-rate-labels.csv; printf '"valid_9_a_1,0\n'; } >"$T/q.csv"
expect_fail "labels: unterminated quote" 1 'q.csv:3:1: unterminated quoted field' $RL --labels -f csv "$T/q.csv"
{ head -2 "$D"/ct-rate-labels.csv; printf 'valid_\xff_a_1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0\n'; } >"$T/u.csv"
expect_fail "labels: invalid UTF-8" 1 'u.csv:3:7: invalid UTF-8' $RL --labels -f csv "$T/u.csv"

# report CSV for prompts
{ cat "$D"/ct-rate-reports.csv; printf 'valid_301_a_3.nii.gz,,,Other text.,Other impression.\n'; } >"$T/conflict.csv"
expect_fail "prompts: reconstructions with different reports" 1 \
    'conflict.csv:[0-9]+: volume valid_301_a_3.nii.gz: its report differs from that of scan valid_301_a' \
    $RL --prompts "$T/conflict.csv"
printf 'VolumeName,Findings_EN\nx,y\n' >"$T/nocol.csv"
expect_fail "prompts: missing column" 1 "nocol.csv:1: missing column 'Impressions_EN'" $RL --prompts "$T/nocol.csv"
printf '{{findings}} {{impresion}}\n' >"$T/bad-tmpl.txt"
expect_fail "prompts: bad template" 1 "unknown placeholder '\{\{impresion\}\}'" \
    $RL --prompts --template "$T/bad-tmpl.txt" "$D"/ct-rate-reports.csv

# streams
ct-phantom -o "$T/ph" >/dev/null 2>&1 && ct-import "$T/ph/ct.nii.gz" >"$T/img.ctv"
expect_fail "from-stream: wrong schema" 1 "record 0 \(id ct\): schema 'ct.image/1'" $RL --from-stream -f csv "$T/img.ctv"
cat "$T/r.ctv" "$T/l.ctv" >"$T/mixed.ctv"
expect_fail "from-stream: mixed record types" 1 'ct.report/1 and ct.labels/1 records mixed' \
    $RL --from-stream -f csv "$T/mixed.ctv"

# config files
printf 'organs: [lung, heart]\naliases: {lungs: liver}\n' >"$T/bad-organs.yaml"
expect_fail "config: alias to an unknown organ" 1 "bad-organs.yaml:2:[0-9]+: alias 'lungs' maps to 'liver'" \
    $RL -f csv --organs "$T/bad-organs.yaml" "$D"/valid_101_a.json
printf 'organs: [lung]\n' >"$T/one.yaml"
expect_fail "config: abnormality on an organ outside the set" 1 "scored on organ 'heart'" \
    $RL --labels -f csv --organs "$T/one.yaml" "$D"/ct-rate-labels.csv

# nothing half-written on disk; write errors
$RL "$T/organ.json" -o "$T/never.ctv" 2>/dev/null
[ ! -e "$T/never.ctv" ] && [ -z "$(ls -A "$T" | grep '\.tmp')" ] &&
    ok "bad: -o FILE not created on failure" || notok "bad: -o FILE" "$(ls "$T")"
if [ -c /dev/full ]; then
    expect_fail "write error: stdout on /dev/full" 1 'No space left' sh -c "$RL -f csv $D/answers.jsonl >/dev/full"
    expect_fail "write error: stream on /dev/full" 1 'No space left' sh -c "$RL $D/answers.jsonl >/dev/full"
    expect_fail "write error: -o /dev/full" 1 'No space left' $RL -f csv "$D"/answers.jsonl -o /dev/full
    [ -c /dev/full ] && ok "write error: -o leaves a device file in place" || notok "write error: -o /dev/full" "replaced"
fi
# a reader that goes away: one line naming the broken pipe, exit 1 (not a silent death by SIGPIPE, 141)
awk 'BEGIN { for (i = 0; i < 4000; i++)
    printf "{\"scan_id\": \"s%d\", \"findings\": {\"lung\": \"Clear lungs with no nodule, opacity or effusion seen.\"}, \"impression\": {}}\n", i }' >"$T/many.jsonl"
for f in csv jsonl; do
    ( $RL -f $f "$T/many.jsonl" 2>"$T/pipe-$f.err" | head -c 10 >/dev/null; echo "${PIPESTATUS[0]}" >"$T/pipe-$f.rc" )
    if [ "$(cat "$T/pipe-$f.rc")" = 1 ] && [ "$(wc -l <"$T/pipe-$f.err")" = 1 ] &&
        grep -q '^report-label: stdout: write: broken pipe' "$T/pipe-$f.err"; then ok "write error: broken pipe reported (-f $f)"
    else notok "write error: broken pipe reported (-f $f)" "rc $(cat "$T/pipe-$f.rc"): $(cat "$T/pipe-$f.err")"; fi
done
$RL -f csv "$D"/valid_101_a.json -o /dev/stdout >"$T/devout.csv"
$RL -f csv "$D"/valid_101_a.json >"$T/devout.want"
same "output: -o /dev/stdout writes to stdout" "$T/devout.csv" "$T/devout.want"

# usage: exit 2, the problem then "Try 'report-label --help'."
expect_usage() {
    local name=$1 pat=$2; shift 2
    "$@" >"$T/.out" 2>"$T/.err"
    local rc=$?
    if [ $rc -ne 2 ]; then notok "$name" "exit $rc, expected 2"
    elif [ -s "$T/.out" ]; then notok "$name" "wrote to stdout"
    elif ! head -1 "$T/.err" | grep -qE -- "$pat"; then notok "$name" "$(head -1 "$T/.err")"
    elif ! sed -n 2p "$T/.err" | grep -q "Try 'report-label --help'."; then notok "$name" "no Try line"
    else ok "$name"; fi
}
expect_usage "usage: --desc without --conc" "--desc and --conc go together" $RL --desc "$T/desc.json"
expect_usage "usage: bad --format" "expected stream, csv or jsonl" $RL -f xml "$D"/valid_101_a.json
expect_usage "usage: --prompts writes JSON lines" "JSON lines only" $RL --prompts -f csv "$D"/ct-rate-reports.csv
expect_usage "usage: two modes" "cannot be combined" $RL --labels --prompts "$D"/ct-rate-reports.csv
$RL --help | grep -q -- '--released-empty' && ok "usage: --help" || notok "usage: --help" "no --released-empty"
exit 0
