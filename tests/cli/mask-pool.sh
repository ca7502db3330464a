# mask-pool: command line, bad input (one clear line, exit code, nothing on
# stdout or at -o), recorded skips.  Parity with the reference is in
# tests/ref/test_maskpool.py.
source tests/cli/lib.sh

# ct.case/1 inputs, good and bad, written with the documented Python writer
"$PYTHON" - "$T" <<'EOF'
import os, sys
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "ref"))
import numpy as np
from reflib import write_record

T = sys.argv[1]
rng = np.random.default_rng(5)
shape = (20, 40, 40)
image = rng.random(shape, dtype=np.float32)
mask = np.zeros(shape, np.uint8)
mask[2:9, 5:30, 4:20] = 1          # lung
mask[10:15, 8:12, 30:33] = 4       # aorta; no heart, no esophagus
counts = [int((mask == k).sum()) for k in range(1, 5)]

def case(name, tensors=None, meta=None, schema="ct.case/1", mode="wb"):
    m = {"organ_voxels": counts}
    m.update(meta or {})
    t = {"image": image, "mask": mask} if tensors is None else tensors
    with open(os.path.join(T, name + ".ctv"), mode) as f:
        write_record(f, schema, "c", t, m)

case("good")
case("nomask", {"image": image})
case("noimage", {"mask": mask})
case("schema", schema="ct.image/1")
case("maskf32", {"image": image, "mask": mask.astype(np.float32)})
case("imgi16", {"image": image.astype(np.int16), "mask": mask})
case("shape", {"image": image[:, :, :39].copy(), "mask": mask})
bad = mask.copy(); bad[3, 4, 5] = 7
case("value", {"image": image, "mask": bad})
case("voxels", meta={"organ_voxels": [counts[0] + 1] + counts[1:]})
case("voxlen", meta={"organ_voxels": counts[:3]})
case("dupe", meta={"organs": ["lung", "lung", "x", "y"]})
case("slash", meta={"organs": ["lung", "a/b", "x", "y"]})
z = np.zeros(shape, np.uint8)
case("empty", {"image": image, "mask": z}, {"organ_voxels": [0, 0, 0, 0]})
case("emptyaxis", {"image": np.zeros((0, 32, 32), np.float32), "mask": np.zeros((0, 32, 32), np.uint8)},
     {"organ_voxels": [0, 0, 0, 0]})
case("noorganvoxels", meta={"organ_voxels": None})
with open(os.path.join(T, "noorganvoxels.ctv"), "wb") as f:
    write_record(f, "ct.case/1", "c", {"image": image, "mask": mask}, {})
# a good case followed by a bad one
case("goodbad")
case("goodbad", {"image": image}, mode="ab")
EOF

# ---- good input
check "runs on a good case" mask-pool -o "$T/out.ctv" "$T/good.ctv"
n=$(ct-ls "$T/out.ctv" 2>/dev/null | grep -c 'ct.window/1')
[ "$n" = 2 ] && ok "two windows (lung, aorta)" || notok "two windows (lung, aorta)" "got $n records"
check "stdin input equals file input" sh -c "mask-pool < '$T/good.ctv' > '$T/stdin.ctv'"
same "stdin and file outputs identical (history aside)" \
    <(ct-ls -S --crc "$T/out.ctv" | grep -v history) <(ct-ls -S --crc "$T/stdin.ctv" | grep -v history)
check "organ_voxels absent: computed" mask-pool -o "$T/nov.ctv" "$T/noorganvoxels.ctv"
"$PYTHON" - "$T" <<'EOF' && ok "computed organ_voxels equal the given ones" || notok "computed organ_voxels" "differ"
import os, sys
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "ref"))
from reflib import read_stream
T = sys.argv[1]
a = [r["meta"]["organ_voxels"] for r in read_stream(open(os.path.join(T, "out.ctv"), "rb"))]
b = [r["meta"]["organ_voxels"] for r in read_stream(open(os.path.join(T, "nov.ctv"), "rb"))]
sys.exit(0 if a == b and len(a) == 2 else 1)
EOF
mask-pool -v --organs lung,heart "$T/good.ctv" >"$T/v.ctv" 2>"$T/v.err"
grep -q 'no window for heart: no voxels' "$T/v.err" && ok "-v reports the skipped organ" \
    || notok "-v reports the skipped organ" "$(cat "$T/v.err")"

# ---- bad records: exit 1, one line, nothing on stdout
expect_fail "record without a mask" 1 "^mask-pool: .*record 0 \(id c\): no 'mask' tensor" mask-pool "$T/nomask.ctv"
expect_fail "record without an image" 1 "record 0 \(id c\): no 'image' tensor" mask-pool "$T/noimage.ctv"
expect_fail "wrong schema" 1 "record 0 \(id c\): .*ct.case" mask-pool "$T/schema.ctv"
expect_fail "float mask" 1 "mask is f32 \[20,40,40\]; ct.case/1 needs u8" mask-pool "$T/maskf32.ctv"
expect_fail "integer image" 1 "image is i16 .*needs f32" mask-pool "$T/imgi16.ctv"
expect_fail "image and mask shapes differ" 1 "image \[20,40,39\] and mask \[20,40,40\] differ" \
    mask-pool "$T/shape.ctv"
expect_fail "mask value without an organ" 1 "mask value 7 at voxel \(3,4,5\) has no organ \(4 organs\)" \
    mask-pool "$T/value.ctv"
expect_fail "organ_voxels disagree with the mask" 1 "organ_voxels' gives lung [0-9]+ voxels but the mask holds" \
    mask-pool "$T/voxels.ctv"
expect_fail "organ_voxels of the wrong length" 1 "has 3 counts for 4 organs" mask-pool "$T/voxlen.ctv"
expect_fail "duplicate organ names" 1 "names 'lung' twice" mask-pool "$T/dupe.ctv"
expect_fail "organ name with a slash" 1 "'organs'\[1\] is not an organ name" mask-pool "$T/slash.ctv"
expect_fail "unknown organ name" 1 \
    "record 0 \(id c\): unknown organ 'liver' \(the case's organs: lung, heart, esophagus, aorta\)" \
    mask-pool --organs lung,liver "$T/good.ctv"
expect_fail "empty mask: no window is an error" 1 "no window to write: the mask holds no organ voxels" \
    mask-pool "$T/empty.ctv"
expect_fail "selected organ without voxels: no window is an error" 1 "no window to write: heart: no voxels" \
    mask-pool --organs heart "$T/good.ctv"
expect_fail "volume with an empty axis cannot be windowed" 1 "mask \[0,32,32\] is empty" \
    mask-pool "$T/emptyaxis.ctv"
head -c 3000 "$T/good.ctv" >"$T/trunc.ctv"
expect_fail "truncated stream" 1 "trunc.ctv: .*record 0" mask-pool "$T/trunc.ctv"
expect_fail "missing input file" 1 "nonexistent.ctv" mask-pool "$T/nonexistent.ctv"
expect_fail "write error (/dev/full)" 1 "No space left" sh -c "mask-pool '$T/good.ctv' >/dev/full"

# --allow-empty: a recorded skip (one warning line), exit 0
mask-pool --allow-empty "$T/empty.ctv" "$T/good.ctv" >"$T/ae.ctv" 2>"$T/ae.err"
rc=$?
n=$(ct-ls "$T/ae.ctv" 2>/dev/null | grep -c 'ct.window/1')
if [ $rc -eq 0 ] && [ "$n" = 2 ] && [ "$(wc -l <"$T/ae.err")" = 1 ] \
    && grep -q 'record 0 (id c): no window written: the mask holds no organ voxels' "$T/ae.err"; then
    ok "--allow-empty: empty case warned and skipped, the next case written"
else
    notok "--allow-empty" "rc $rc, $n records, stderr: $(cat "$T/ae.err")"
fi

# -o: nothing is left when a later record fails
rm -f "$T/gb.ctv"
expect_fail "bad second record" 1 "record 1 \(id c\): no 'mask' tensor" mask-pool -o "$T/gb.ctv" "$T/goodbad.ctv"
if [ ! -e "$T/gb.ctv" ] && [ -z "$(ls "$T" | grep -E '^gb\.ctv.+')" ]; then ok "-o: no partial file, no temp file"
else notok "-o: no partial file" "$(ls "$T")"; fi

# ---- usage errors: exit 2, nothing on stdout, the problem then "Try 'mask-pool --help'."
expect_usage() {
    local name=$1 pat=$2; shift 2
    "$@" >"$T/.out" 2>"$T/.err"
    local rc=$?
    if [ $rc -ne 2 ]; then notok "$name" "exit $rc, expected 2 :: $(head -c 300 "$T/.err")"
    elif [ -s "$T/.out" ]; then notok "$name" "wrote to stdout"
    elif [ "$(wc -l <"$T/.err")" -ne 2 ] || ! head -1 "$T/.err" | grep -qE -- "^mask-pool: $pat" \
        || ! sed -n 2p "$T/.err" | grep -q "^Try 'mask-pool --help'.$"; then
        notok "$name" "stderr '$(cat "$T/.err")' does not match '$pat'"
    else ok "$name"; fi
}
expect_usage "pad multiple that cannot align tokens" \
    "--pad-multiple: cannot pad windows to multiples of 16,32,30: each must be a positive multiple of the stage-4 cell 16,32,32" \
    mask-pool --pad-multiple 16,32,30 "$T/good.ctv"
expect_usage "bad --roi" "--roi: " mask-pool --roi 112,256 "$T/good.ctv"
expect_usage "zero --roi" "--roi: '0,256,352' must be three positive integers" mask-pool --roi 0,256,352 "$T/good.ctv"
expect_usage "--margin without --multi" "--margin and --min-fraction apply to --multi" mask-pool --margin 3 "$T/good.ctv"
expect_usage "bad --min-fraction" "--min-fraction: '1.5'" mask-pool --multi --min-fraction 1.5 "$T/good.ctv"
expect_usage "bad --margin" "--margin: '0'" mask-pool --multi --margin 0 "$T/good.ctv"
expect_usage "empty --organs" "--organs: no organ name" mask-pool --organs , "$T/good.ctv"
out=$(mask-pool --help 2>&1)
missing=""
for o in --organs --multi --margin --min-fraction --roi --pad-multiple --bits --allow-empty --output --compress; do
    case "$out" in *"$o"*) ;; *) missing="$missing $o" ;; esac
done
[ -z "$missing" ] && ok "--help lists every option" || notok "--help lists every option" "missing:$missing"
