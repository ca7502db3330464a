#!/usr/bin/env bash
# encode: command line, bad windows, bad weights.  Numerical parity is tests/ref/test_encode.py.
source "$(dirname "$0")/lib.sh"
ROOT=${CT_ROOT:-$PWD}

# seeded random (untrained) weights, encoder only, through the converter
if ! "$PYTHON" "$ROOT/tools/ctvis-convert.py" --random 3 --no-vq --encoder-only -o "$T/w.ctv" 2>"$T/conv.err"; then
    notok "convert --random" "$(tail -3 "$T/conv.err")"; exit 1
fi

# window records written with reflib.write_record, all in one python run: OUT:SHAPE[:OPTION...]
cd "$ROOT"
"$PYTHON" - "$T/ok.ctv:16,32,32" "$T/shape.ctv:16,32,30" "$T/noflag.ctv:16,32,32:noflag3" \
    "$T/noorgans.ctv:16,32,32:noorgans" "$T/nan.ctv:16,32,32:nan" "$T/unsorted.ctv:16,32,32:unsorted" \
    "$T/outside.ctv:32,64,64:outside" "$T/image.ctv:16,32,32:image" <<'PY'
import sys, numpy as np
sys.path.insert(0, "tests/ref")
import reflib

def grids(d, h, w):   # stage grids of a window: ceil halvings (method.md 2.2)
    g, out = [d, h, w], []
    for k in ((2, 4, 4), (4, 8, 8), (8, 16, 16), (16, 32, 32)):
        out.append([-(-n // f) for n, f in zip(g, k)])
    return out

for spec in sys.argv[1:]:
    out, shape, *opts = spec.split(":")
    shape = tuple(int(x) for x in shape.split(","))
    rng = np.random.default_rng(0)
    img = rng.random(shape, dtype=np.float32)
    if "nan" in opts: img[1, 2, 3] = np.nan
    t = {"image": img, "mask": np.zeros(shape, np.uint8)}
    for s, g in enumerate(grids(*shape)):
        L = int(np.prod(g))
        tok = np.arange(0, L, 3, dtype=np.int32)
        if "unsorted" in opts and s == 1: tok = tok[::-1].copy()
        if "outside" in opts and s == 2: tok[-1] = L
        if not ("noflag3" in opts and s == 2): t["tok%d/liver" % (s + 1)] = tok
    meta = {"organ": "liver", "window_organs": ["liver"], "organs": ["liver"]}
    if "noorgans" in opts: del meta["window_organs"]
    schema = "ct.image/1" if "image" in opts else "ct.window/1"
    with open(out, "wb") as f:
        reflib.write_record(f, schema, "case1", t, meta)
PY

check "encode a 16x32x32 window" encode -w "$T/w.ctv" -o "$T/out.ctv" "$T/ok.ctv"
if ct-ls "$T/out.ctv" >"$T/ls.txt" 2>&1 && grep -q 'ct.tokens/1' "$T/ls.txt" && grep -q 'emb4/liver' "$T/ls.txt"; then
    ok "ct-ls lists the ct.tokens/1 record"
else notok "ct-ls lists the ct.tokens/1 record" "$(head -c 300 "$T/ls.txt")"; fi
if encode -w "$T/w.ctv" "$T/ok.ctv" 2>"$T/warn.err" >"$T/stdout.ctv" && [ "$(stat -c %s "$T/stdout.ctv")" -gt 100000 ] \
    && grep -q 'untrained (random) weights: the 1 records written' "$T/warn.err"; then
    ok "stdout output; untrained weights announced on stderr after the run"
else notok "stdout output; untrained weights announced on stderr after the run" "$(cat "$T/warn.err")"; fi

usage_fail() {  # usage_fail NAME PATTERN CMD...: exit 2, nothing on stdout, "encode: PATTERN" + "Try" line
    local name=$1 pat=$2; shift 2
    "$@" >"$T/.out" 2>"$T/.err"
    local rc=$?
    if [ "$rc" -eq 2 ] && [ ! -s "$T/.out" ] && head -1 "$T/.err" | grep -qE "$pat" && grep -q "^Try 'encode --help'" "$T/.err"; then
        ok "$name"
    else notok "$name" "exit $rc :: $(head -c 300 "$T/.err")"; fi
}

usage_fail "no weights is a usage error" '^encode: no weights' encode "$T/ok.ctv"
usage_fail "--any-shape without --maps" '^encode: --any-shape needs --maps' encode -w "$T/w.ctv" --any-shape "$T/ok.ctv"
usage_fail "bad --threads" '^encode: ' encode -w "$T/w.ctv" -j zero "$T/ok.ctv"
expect_fail "window not a multiple of (16,32,32)" 1 '^encode: record 0 \(id case1\): window shape \[16,32,30\] is not a multiple of \(16,32,32\)' \
    encode -w "$T/w.ctv" "$T/shape.ctv"
expect_fail "missing token flags" 1 "^encode: record 0 \(id case1\): missing token flags 'tok3/liver'" encode -w "$T/w.ctv" "$T/noflag.ctv"
expect_fail "missing window_organs" 1 "^encode: record 0 \(id case1\): missing meta 'window_organs'" encode -w "$T/w.ctv" "$T/noorgans.ctv"
expect_fail "NaN in the image" 1 "^encode: record 0 \(id case1\): 'image' has 1 non-finite voxels" encode -w "$T/w.ctv" "$T/nan.ctv"
expect_fail "token flags not ascending" 1 "'tok2/liver': token indices are not strictly ascending" encode -w "$T/w.ctv" "$T/unsorted.ctv"
expect_fail "token outside the stage grid" 1 "'tok3/liver': token 64 outside the stage grid \[0, 64\)" encode -w "$T/w.ctv" "$T/outside.ctv"
expect_fail "wrong input schema" 1 '^encode: record 0 \(id case1\): .*ct.image/1' encode -w "$T/w.ctv" "$T/image.ctv"
expect_fail "failed record leaves no -o file" 1 'non-finite' encode -w "$T/w.ctv" -o "$T/bad-out.ctv" "$T/ok.ctv" "$T/nan.ctv"
if [ -e "$T/bad-out.ctv" ]; then notok "no partial output file" "$T/bad-out.ctv exists"; else ok "no partial output file"; fi

# weights of another architecture / not weights at all
"$PYTHON" - "$T" <<'PY'
import sys, numpy as np
sys.path.insert(0, "tests/ref")
import reflib
T = sys.argv[1]
with open(T + "/arch.ctv", "wb") as f:   # a 3-channel stem: another model
    reflib.write_record(f, "ct.weights/1", "other", {"visual_encoder.res_model.conv1.weight": np.zeros((64, 3, 7, 7, 7), np.float32)})
with open(T + "/empty.ctv", "wb") as f:
    reflib.write_record(f, "ct.weights/1", "none", {"text_proj.weight": np.zeros((256, 768), np.float32)})
with open(T + "/f64.ctv", "wb") as f:
    reflib.write_record(f, "ct.weights/1", "f64", {"visual_encoder.res_model.conv1.weight": np.zeros((64, 1, 7, 7, 7), np.float64)})
PY
expect_fail "weights of another architecture" 1 "^encode: $T/arch.ctv: weights: key 'visual_encoder.res_model.conv1.weight' has shape \[64,3,7,7,7\], expected \[64,1,7,7,7\]" \
    encode -w "$T/arch.ctv" "$T/ok.ctv"
expect_fail "weights without the encoder" 1 "weights: missing key 'visual_encoder.res_model.conv1.weight'" encode -w "$T/empty.ctv" "$T/ok.ctv"
expect_fail "f64 weights" 1 "weights: key 'visual_encoder.res_model.conv1.weight' is f64, expected f32" encode -w "$T/f64.ctv" "$T/ok.ctv"
expect_fail "a window stream as weights" 1 "ok.ctv: .*ct.weights" encode -w "$T/ok.ctv" "$T/ok.ctv"
expect_fail "missing weights file" 1 "nothere.ctv" encode -w "$T/nothere.ctv" "$T/ok.ctv"
