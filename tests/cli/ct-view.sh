# ct-view: the command line, every bad-input class (one line on stderr, exit code, nothing on
# stdout, no file left behind), and the real pipeline ct-phantom | ct-resample | mask-pool into
# pictures.  Pixel values are checked against numpy in tests/ref/test_view.py.
source tests/cli/lib.sh

png_ok() {   # NAME FILE: FILE starts with the PNG signature
    if [ -s "$2" ] && [ "$(head -c 8 "$2" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]; then ok "$1"
    else notok "$1" "$2 is not a PNG"; fi
}
nothing_left() {   # NAME DIR: DIR holds no file (not even a temporary one)
    if [ -z "$(ls -A "$2")" ]; then ok "$1"; else notok "$1" "left behind: $(ls -A "$2" | tr '\n' ' ')"; fi
}

ct-phantom -o "$T/ph" --shape 48,40,16 --spacing 8,8,20 >/dev/null &&
    ct-resample "$T/ph/ct.nii.gz" --label "$T/ph/seg.nii.gz" --id ph --spacing 12,8,8 --pad-to 32,64,64 -o "$T/case.ctv" &&
    mask-pool --roi 32,64,64 "$T/case.ctv" -o "$T/win.ctv" || { notok setup "pipeline failed"; exit 0; }

# --- pictures from the pipeline ---
check "axial slice of a ct.case/1 image" ct-view -o "$T/a.png" "$T/case.ctv"
png_ok "output is a PNG" "$T/a.png"
check "three planes through the heart, outlines" ct-view -p a,c,s -O heart -m -o "$T/heart.png" "$T/case.ctv"
check "HU window + bbox centre" ct-view -w -600,1500 -O lung --centre bbox -p coronal -o "$T/lung.png" "$T/case.ctv"
check "flags of a window, -o pattern with %s %d %o" ct-view -f 4 -m -o "$T/w-%s-%d-%o.png" "$T/win.ctv"
n=$(ls "$T"/w-ph-*.png 2>/dev/null | wc -l)
nw=$(ct-ls "$T/win.ctv" | grep -c '^record ')
[ "$n" = "$nw" ] && ok "one picture per window ($n)" || notok "one picture per window" "$n files for $nw windows"
check "contact sheet of the case" ct-view --sheet -o "$T/sheet.png" "$T/win.ctv"
png_ok "contact sheet is a PNG" "$T/sheet.png"
ct-view -r 0 -o - "$T/win.ctv" >"$T/stdout.png" && png_ok "-o - writes the PNG to stdout" "$T/stdout.png"
check "ct-view reads stdin" sh -c "ct-view -r 0 -o '$T/stdin.png' <'$T/case.ctv'"
ct-import "$T/ph/ct.nii.gz" -l "$T/ph/seg.nii.gz" >"$T/img.ctv"
check "ct.image/1: HU volume, outlines from its 'label' tensor" ct-view -w 40,400 -p coronal -m -o "$T/img.png" "$T/img.ctv"
check "ct.organ-style 3-D tensor under another name (-t)" ct-view -t label -o "$T/label.png" "$T/img.ctv"
check "--help" ct-view --help
ct-view --help | grep -q '^Usage: ct-view' && ok "help: usage on stdout" || notok "help: usage on stdout" "no usage"

# --- usage errors (exit 2) ---
expect_fail "usage: no output" 2 "^ct-view: missing --output" ct-view "$T/case.ctv"
expect_fail "usage: bad plane" 2 "^ct-view: --plane: unknown plane 'top'" ct-view -p top -o "$T/x.png" "$T/case.ctv"
expect_fail "usage: bad HU window" 2 "^ct-view: --hu-window: expected two numbers" ct-view -w 40 -o "$T/x.png" "$T/case.ctv"
expect_fail "usage: HU window of width 0" 2 "^ct-view: --hu-window: '40,0': width must be > 0" ct-view -w 40,0 -o "$T/x.png" "$T/case.ctv"
expect_fail "usage: range LO >= HI" 2 "^ct-view: --range: '1,0': expected LO < HI" ct-view -R 1,0 -o "$T/x.png" "$T/case.ctv"
expect_fail "usage: bad flag stage" 2 "^ct-view: --flags: expected STAGE \(1..4\)" ct-view -f 5 -o "$T/x.png" "$T/win.ctv"
expect_fail "usage: bad pattern" 2 "^ct-view: --output: only %s, %d, %o" ct-view -o "$T/x-%x.png" "$T/case.ctv"
expect_fail "usage: --slice with two planes" 2 "^ct-view: --slice takes one plane" ct-view -p a,c -n 3 -o "$T/x.png" "$T/case.ctv"
expect_fail "usage: bad scale" 2 "^ct-view: --scale: expected a number in 0.05..32" ct-view -s 0 -o "$T/x.png" "$T/case.ctv"
expect_fail "usage: unknown option" 2 "unrecognized option" ct-view --bogus

# --- bad input (exit 1), nothing written ---
mkdir -p "$T/out"
expect_fail "missing tensor" 1 "^ct-view: record 0 \(id ph\): missing tensor 'nope'$" ct-view -t nope -o "$T/out/x.png" "$T/case.ctv"
expect_fail "tensor not 3-D" 1 "^ct-view: record 0 \(id ph\): tensor 'tok4/lung' is 1-D .*3-D" ct-view -t tok4/lung -o "$T/out/x.png" "$T/win.ctv"
expect_fail "slice index out of range" 1 "^ct-view: record 0 \(id ph\): axial slice 99 out of range 0..31$" ct-view -n 99 -o "$T/out/x.png" "$T/case.ctv"
expect_fail "unknown organ" 1 "^ct-view: record 0 \(id ph\): unknown organ 'liver' \(organs: lung, heart, esophagus, aorta\)$" ct-view -O liver -o "$T/out/x.png" "$T/case.ctv"
expect_fail "organ absent from a window's mask" 1 "organ 'lung' has no voxels in tensor 'mask'" ct-view -r 1 -O lung -o "$T/out/x.png" "$T/win.ctv"
expect_fail "flags of an organ without tok tensors" 1 "missing tensor 'tok4/heart'" ct-view -r 0 -f 4:heart -o "$T/out/x.png" "$T/win.ctv"
expect_fail "flags of a record without an organ" 1 "no meta organ: give --flags 4:ORGAN" ct-view -f 4 -o "$T/out/x.png" "$T/case.ctv"
expect_fail "outline without a mask" 1 "missing tensor 'mask'" sh -c "ct-pick -t image '$T/case.ctv' | ct-view -m -o '$T/out/x.png'"
expect_fail "two records for one file" 1 "more than one record selected" ct-view -o "$T/out/x.png" "$T/win.ctv"
ct-resample "$T/ph/ct.nii.gz" --label "$T/ph/seg.nii.gz" --id ph2 --spacing 12,8,8 --pad-to 32,64,64 | mask-pool --roi 32,64,64 >"$T/win2.ctv"
expect_fail "two cases for one sheet" 1 "record [0-9]+ \(id ph2\): a second case \(after ph\)" ct-view --sheet -o "$T/out/x.png" "$T/win.ctv" "$T/win2.ctv"
expect_fail "no record selected" 1 "^ct-view: no record selected$" ct-view -i nobody -o "$T/out/x.png" "$T/case.ctv"
expect_fail "anomaly file of another schema" 1 "record 0 \(id ph\): expected a ct.organ/1 record, got ct.case/1" ct-view -a "$T/case.ctv" -o "$T/out/x.png" "$T/case.ctv"
expect_fail "no anomaly map for the record" 1 "no ct.organ/1 record for id ph" ct-view -a /dev/null -o "$T/out/x.png" "$T/case.ctv"
head -c 100000 "$T/case.ctv" >"$T/trunc.ctv"
expect_fail "truncated stream" 1 "^ct-view: .*trunc" ct-view -o "$T/out/x.png" "$T/trunc.ctv"
expect_fail "missing input file" 1 "^ct-view: $T/none.ctv: No such file or directory$" ct-view -o "$T/out/x.png" "$T/none.ctv"
nothing_left "bad input leaves no file" "$T/out"
expect_fail "unwritable output" 1 "^ct-view: .*$T/nodir/x.png" ct-view -o "$T/nodir/x.png" "$T/case.ctv"
expect_fail "output is a directory" 1 "is a directory" ct-view -o "$T/out" "$T/case.ctv"
expect_fail "full disk" 1 "^ct-view: /dev/full: png: write: No space left on device$" ct-view -r 0 -o /dev/full "$T/case.ctv"
# noise: a PNG (~190 KB) far larger than a pipe's buffer, so the writer surely meets the closed reader
"$PYTHON" -c "
import sys; sys.path.insert(0, 'tests/ref')
import numpy as np, reflib
reflib.write_record(open('$T/noise.ctv', 'wb'), 'ct.image/1', 'noise', {'image': np.random.default_rng(1).random((4, 256, 256), dtype=np.float32)})"
expect_fail "broken pipe" 1 "^ct-view: stdout: png: write: broken pipe" bash -c "set -o pipefail; ct-view -o - '$T/noise.ctv' | head -c 1 >/dev/null"
# a failure on the 2nd record of a pattern run keeps the 1st picture whole and writes no 2nd
expect_fail "pattern run stops at the bad record" 1 "record 1 \(id ph\): unknown organ 'lung'|organ 'lung' has no voxels" ct-view -O lung -o "$T/out/%d.png" "$T/win.ctv"
[ -s "$T/out/0.png" ] && [ ! -e "$T/out/1.png" ] && [ "$(ls -A "$T/out" | wc -l)" = 1 ] &&
    ok "pattern run: earlier pictures complete, nothing partial" || notok "pattern run: earlier pictures complete, nothing partial" "$(ls -A "$T/out")"
check "one contact sheet per case with %s" ct-view --sheet -o "$T/sheet-%s.png" "$T/win.ctv" "$T/win2.ctv"
[ -s "$T/sheet-ph.png" ] && [ -s "$T/sheet-ph2.png" ] && ok "sheets named by case id" || notok "sheets named by case id" "$(ls "$T")"
check "sheet: a case record heading its windows, stage-3 flags" sh -c "cat '$T/case.ctv' '$T/win.ctv' | ct-view --sheet -f 3 -o '$T/sheet-case.png'"
expect_fail "sheet: stage flags missing from a window" 1 "missing tensor 'tok2/heart'" ct-view --sheet -f 2:heart -o "$T/out/x.png" "$T/win.ctv"
