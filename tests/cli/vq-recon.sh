#!/usr/bin/env bash
# vq-recon: command line, bad tokens, bad weights: one error line, nothing written.  Numerical
# parity is tests/ref/test_vqrecon.py.
source "$(dirname "$0")/lib.sh"
ROOT=${CT_ROOT:-$PWD}

if ! "$PYTHON" "$ROOT/tools/ctvis-convert.py" --random 3 -o "$T/w.ctv" 2>"$T/conv.err" ||
   ! "$PYTHON" "$ROOT/tools/ctvis-convert.py" --random 3 --no-vq -o "$T/novq.ctv" 2>"$T/conv.err"; then
    notok "convert --random" "$(tail -3 "$T/conv.err")"; exit 1
fi

# tokens and weights variants written with reflib, in one python run
cd "$ROOT"
"$PYTHON" - "$T" <<'PY'
import sys, numpy as np
sys.path.insert(0, "tests/ref")
import reflib
T = sys.argv[1]

def tokens(path, variant=""):
    rng = np.random.default_rng(0)
    grids = [[4, 8, 8], [2, 4, 4], [1, 2, 2], [1, 1, 1]]
    if variant == "hugegrid":           # a few kB claiming a 2^40-cell stage-4 grid
        grids = [[1 << 20, 1 << 20, 8], [1 << 20, 1 << 20, 4], [1 << 20, 1 << 20, 2], [1 << 20, 1 << 20, 1]]
    t = {}
    organ = "liver" if variant == "liver" else "heart"
    for s in range(4):
        n = [5, 5, 3, 1][s]
        c = 128 if variant == "channels" and s == 1 else 256
        e = rng.standard_normal((n, c)).astype(np.float32)
        if variant == "nan" and s == 3: e[0, 7] = np.nan
        if variant == "inf" and s == 0: e[2, 0] = np.inf
        t["emb%d/%s" % (s + 1, organ)] = e
        t["tok%d/%s" % (s + 1, organ)] = np.arange(n, dtype=np.int32)
    meta = {"organ": organ, "organs": ["lung", "heart", "esophagus", "aorta"], "window_organs": [organ],
            "window_offset": [0, 0, 0], "stage_grids": grids, "weights_id": "visd-random-3"}
    if variant == "noflags":
        meta["window_organs"] = ["heart", "aorta"]     # aorta has no emb/tok tensors
    schema = "ct.window/1" if variant == "schema" else "ct.tokens/1"
    with open(path, "wb") as f:
        reflib.write_record(f, schema, "c1", t, meta)
for v in ["", "nan", "inf", "channels", "noflags", "schema", "liver", "hugegrid"]:
    tokens("%s/tok%s.ctv" % (T, "-" + v if v else ""), v)

w = next(reflib.read_stream(open(T + "/w.ctv", "rb")))
def weights(path, change):
    t = dict(w["tensors"])
    change(t)
    with open(path, "wb") as f:
        reflib.write_record(f, "ct.weights/1", w["id"], t, w["meta"])
weights(T + "/w-shape.ctv", lambda t: t.__setitem__("encoder.input1.weight", np.zeros((512, 128), np.float32)))
weights(T + "/w-missing.ctv", lambda t: t.pop("decoder.output2.bias"))
weights(T + "/w-head.ctv", lambda t: t.pop("res_projs2.3.weight"))
PY

check "good tokens" vq-recon -w "$T/w.ctv" "$T/tok.ctv" -o "$T/good.ctv"
n=$(ct-ls -S "$T/good.ctv" | grep -c '^record')
[ "$n" = 1 ] && ok "good tokens: one ct.organ/1 record" || notok "good tokens: one ct.organ/1 record" "$n records"

# usage
vq-recon --help >"$T/help" && grep -q -- "--per-organ-codebook" "$T/help" && grep -q -- "--recon" "$T/help" &&
    ok "--help lists the options" || notok "--help lists the options" "$(head -3 "$T/help")"
expect_fail "no weights: usage" 2 "no weights" vq-recon "$T/tok.ctv"
expect_fail "unknown option" 2 "unrecognized|invalid|unknown" vq-recon -w "$T/w.ctv" --bogus "$T/tok.ctv"

# bad tokens
expect_fail "NaN token" 1 "emb4/heart.*non-finite" vq-recon -w "$T/w.ctv" "$T/tok-nan.ctv"
expect_fail "Inf token" 1 "emb1/heart.*non-finite" vq-recon -w "$T/w.ctv" "$T/tok-inf.ctv"
expect_fail "wrong channel count" 1 "emb2/heart.*must be f32 \[N, 256\]" vq-recon -w "$T/w.ctv" "$T/tok-channels.ctv"
expect_fail "tokens without the flags' organ" 1 "organ 'aorta'.*no 'emb1/aorta'" vq-recon -w "$T/w.ctv" "$T/tok-noflags.ctv"
expect_fail "wrong schema" 1 "expected a ct.tokens/1 record, got ct.window/1" vq-recon -w "$T/w.ctv" "$T/tok-schema.ctv"
expect_fail "organ the model does not know" 1 "'liver' is not one of the model's organs" vq-recon -w "$T/w.ctv" "$T/tok-liver.ctv"
head -c 3000 "$T/tok.ctv" >"$T/tok-trunc.ctv"
expect_fail "stage grid larger than any window (bounded before allocating)" 1 "stage-4 grid 1048576x1048576x1 is larger" \
    vq-recon -w "$T/w.ctv" "$T/tok-hugegrid.ctv"
expect_fail "truncated tokens stream" 1 "truncated" vq-recon -w "$T/w.ctv" "$T/tok-trunc.ctv"
# nothing partial: a good record then a bad one, to a file and to stdout
cat "$T/tok.ctv" "$T/tok-nan.ctv" >"$T/tok-goodbad.ctv"
# on stdout the complete records before the bad one stay (a pipe cannot take bytes back), no partial one
vq-recon -w "$T/w.ctv" "$T/tok-goodbad.ctv" >"$T/goodbad.out" 2>"$T/goodbad.err"
rc=$?
n=$(ct-ls -S "$T/goodbad.out" 2>/dev/null | grep -c '^record')
[ "$rc" = 1 ] && [ "$n" = 1 ] && [ "$(wc -l <"$T/goodbad.err")" = 1 ] && grep -q "record 1 .*non-finite" "$T/goodbad.err" &&
    ok "good then bad record: exit 1, one error line, only the good record on stdout" ||
    notok "good then bad record: exit 1, one error line, only the good record on stdout" "rc $rc, $n records: $(cat "$T/goodbad.err")"
vq-recon -w "$T/w.ctv" "$T/tok-goodbad.ctv" -o "$T/partial.ctv" 2>/dev/null
[ ! -e "$T/partial.ctv" ] && ok "good then bad record: no output file" || notok "good then bad record: no output file" "written"

# bad weights
expect_fail "weights without the VQ-VAE" 1 "checkpoint_vqvae.pth" vq-recon -w "$T/novq.ctv" "$T/tok.ctv"
expect_fail "weights of another architecture (mis-shaped key)" 1 "encoder.input1.weight is f32 \[512,128\], expected f32 \[512,256\]" \
    vq-recon -w "$T/w-shape.ctv" "$T/tok.ctv"
expect_fail "weights missing a decoder key" 1 "missing key decoder.output2.bias \[256\]" vq-recon -w "$T/w-missing.ctv" "$T/tok.ctv"
expect_fail "weights missing a head key" 1 "missing key res_projs2.3.weight \[256,256\]" vq-recon -w "$T/w-head.ctv" "$T/tok.ctv"
head -c 100000 "$T/w.ctv" >"$T/w-trunc.ctv"
expect_fail "truncated weights" 1 "truncated" vq-recon -w "$T/w-trunc.ctv" "$T/tok.ctv"
expect_fail "weights file of another schema" 1 "expected a ct.weights/1 record" vq-recon -w "$T/tok.ctv" "$T/tok.ctv"
expect_fail "missing weights file" 1 "nonexistent" vq-recon -w "$T/nonexistent.ctv" "$T/tok.ctv"
