#!/usr/bin/env bash
# Issue 15 items 7, 8, 9, 12, 13: NIfTI headers that lie, labels of another dimensionality,
# tensors ct-export must not write, and names that would drive the terminal.  Inputs are
# built here with nibabel and the documented Python writer.
source "$(dirname "$0")/lib.sh"
asan=0; case "${CT_BUILD:-build}" in *asan*) asan=1 ;; esac
lim() { if [ $asan = 1 ]; then "$@"; else (ulimit -v 3000000; "$@"); fi; }

"$PYTHON" - "$T" <<'PY' || { notok setup "crafting failed"; exit 1; }
import os, sys, numpy as np, nibabel as nib
sys.path.insert(0, "tests/ref")
import reflib
T = sys.argv[1]
A = np.diag([1.5, 1.5, 3.0, 1.0])
ct = ((np.arange(24 * 20 * 10).reshape(24, 20, 10) % 200 - 100) * 10).astype(np.int16)   # to +-1000 HU
nib.save(nib.Nifti1Image(ct, A), T + "/ct.nii.gz")
seg = np.zeros(ct.shape, np.uint8); seg[5:15, 5:15, 3:7] = 1
nib.save(nib.Nifti1Image(seg, A), T + "/seg.nii.gz")
# item 7: a small file whose voxels claim 6000 mm
big = nib.Nifti1Image(np.zeros((8, 8, 8), np.int16), np.diag([6000.0, 6000.0, 6000.0, 1.0]))
nib.save(big, T + "/huge-pixdim.nii.gz")
# item 8: an int16 CT whose scl_slope overflows float32
import struct
def patch(path, off, fmt, value):   # nibabel recomputes scaling and dims on save: patch the bytes
    b = bytearray(open(path, "rb").read()); b[off:off + struct.calcsize(fmt)] = struct.pack(fmt, value)
    open(path, "wb").write(bytes(b))
nib.save(nib.Nifti1Image(ct, A), T + "/slope.nii"); patch(T + "/slope.nii", 112, "<f", 1e36)
nib.save(nib.Nifti1Image(ct.astype(np.float32), A), T + "/slope-f32.nii"); patch(T + "/slope-f32.nii", 112, "<f", 1e36)
# item 9: label maps of another dimensionality
nib.save(nib.Nifti1Image(np.stack([seg, seg], -1), A), T + "/seg4d.nii.gz")
nib.save(nib.Nifti1Image(seg[:, :, :1], A), T + "/seg-flat.nii.gz")
nib.save(nib.Nifti1Image(seg, A), T + "/seg-dim2.nii"); patch(T + "/seg-dim2.nii", 40, "<h", 2)
# item 12: records ct-export must refuse
def w(name, tensors, meta, id="e1"):
    with open(os.path.join(T, name), "wb") as f:
        reflib.write_record(f, "ct.image/1", id, tensors, meta)
cube = np.zeros((4, 4, 4), np.float32)
w("empty.ctv", {"image": np.zeros((0, 4, 4), np.float32)}, {"spacing_mm": [1.0, 1.0, 1.0]})
w("nan-affine.ctv", {"image": cube}, {"affine": [[float("nan"), 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]})
w("inf-affine.ctv", {"image": cube}, {"affine": [[1, 0, 0, float("inf")], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]})
w("neg-spacing.ctv", {"image": cube}, {"spacing_mm": [1.0, -2.0, 1.0]})
w("zero-affine.ctv", {"image": cube}, {"affine": [[0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]})
w("no-geometry.ctv", {"image": np.zeros((0, 4, 4), np.float32)}, {})
# item 13: names that are terminal escape sequences, and bytes that are not UTF-8
import msgpack
def raw(name, rec):
    open(os.path.join(T, name), "wb").write(msgpack.packb(rec, use_bin_type=True))
t = {"dtype": "f32", "shape": [2], "codec": "raw", "data": b"\0" * 8}
esc = "\x1b]0;pwned\x07\x1b[2J\u009b31m"
raw("esc.ctv", {"schema": "ct.x" + esc + "/1", "id": "id" + esc, "meta": {"key" + esc: "v" + esc}, "tensors": {"t" + esc: t}})
p = msgpack.Packer()
raw_id = p.pack_map_header(4) + p.pack("schema") + p.pack("ct.x/1") + p.pack("id") + b"\xa4a\xff\xfeb" + \
    p.pack("meta") + p.pack_map_header(1) + b"\xa2k\xc3" + b"\xa3\xed\xa0\x80" + p.pack("tensors") + p.pack({"x\x80": t})
open(os.path.join(T, "badutf8.ctv"), "wb").write(raw_id)
PY

# ---- item 7: the output size from the header, before any work ----
t0=$(date +%s.%N)
expect_fail "resample: a pixdim of 6000 mm is refused from the header, naming the file" 1 \
    "^ct-resample: $T/huge-pixdim.nii.gz: resampled to \[.*\] voxels .* a tensor is limited to 4 GiB - 1" \
    lim ct-resample "$T/huge-pixdim.nii.gz" -o "$T/h.ctv"
secs=$(echo "$(date +%s.%N) - $t0" | bc)
[ "$(echo "$secs < 2" | bc)" = 1 ] && ok "resample: refused in ${secs}s (< 2 s)" || notok "resample: refused in ${secs}s (< 2 s)" slow
[ ! -e "$T/h.ctv" ] && ok "resample: nothing written" || notok "resample: nothing written" "h.ctv exists"

# ---- item 8: non-finite after scaling ----
expect_fail "resample: int16 with scl_slope 1e36 is refused" 1 \
    "^ct-resample: $T/slope.nii: [0-9]+ voxels are NaN or infinite once scaled by scl_slope 1e\+36" \
    ct-resample "$T/slope.nii" -o /dev/null
expect_fail "resample: float32 with scl_slope 1e36 is refused" 1 "slope-f32.nii: [0-9]+ voxels are NaN or infinite once scaled" \
    ct-resample "$T/slope-f32.nii" -o /dev/null
check "resample: the same CT unscaled passes" ct-resample "$T/ct.nii.gz" -o /dev/null

# ---- item 9: ct-import and label maps of another dimensionality ----
check "import: a 3-D label map" ct-import "$T/ct.nii.gz" -l "$T/seg.nii.gz" -o "$T/ok.ctv"
expect_fail "import: a 4-D label map is refused" 1 "^ct-import: $T/seg4d.nii.gz: 4-D label map \(ct-import reads 3-D label maps\)$" \
    ct-import "$T/ct.nii.gz" -l "$T/seg4d.nii.gz"
expect_fail "import: a label map with dim[0] = 2 is refused" 1 "seg-dim2.nii: (2-D label map|label map is on another grid)" \
    ct-import "$T/ct.nii.gz" -l "$T/seg-dim2.nii"

# ---- item 12: ct-export writes nothing the toolkit refuses; one line per failure ----
for c in "empty:shape \[0,4,4\] has an empty axis" "nan-affine:meta 'affine' holds nan" "inf-affine:meta 'affine' holds inf" \
         "neg-spacing:meta 'spacing_mm': voxel size -2 is not a positive finite number" "zero-affine:affine column . is zero" \
         "no-geometry:shape \[0,4,4\] has an empty axis"; do
    f=${c%%:*} msg=${c#*:}
    expect_fail "export: $f refused in one line" 1 "^ct-export: .*record 0 \(id e1\): .*$msg" ct-export -t image -o "$T/$f.nii" "$T/$f.ctv"
    [ ! -e "$T/$f.nii" ] && ok "export: $f leaves no file" || notok "export: $f leaves no file" "$f.nii exists"
done
ct-export -t image -o "$T/rt.nii.gz" "$T/ok.ctv" && ct-import "$T/rt.nii.gz" >/dev/null && ok "export: a good record still round-trips" ||
    notok "export: a good record still round-trips" "failed"

# ---- item 13: ct-ls output is inert on a terminal and --json is valid UTF-8 ----
ct-ls -S "$T/esc.ctv" >"$T/esc.txt" 2>&1
if [ -s "$T/esc.txt" ] && ! LC_ALL=C grep -q $'\x1b\|\x07\|\xc2\x9b' "$T/esc.txt" && grep -q 'id=id\\x1b' "$T/esc.txt"; then
    ok "ls: escape sequences in ids, schemas, meta keys and tensor names are shown escaped"
else notok "ls: escape sequences in ids, schemas, meta keys and tensor names are shown escaped" "$(cat -v "$T/esc.txt" | head -c 300)"; fi
ct-ls -S --json "$T/esc.ctv" >"$T/esc.json"
"$PYTHON" -c '
import json, sys
raw = open(sys.argv[1], "rb").read()
assert b"\x1b" not in raw and b"\x07" not in raw and b"\xc2\x9b" not in raw, raw
r = json.loads(raw.decode("utf-8"))
esc = "\x1b]0;pwned\x07\x1b[2J\u009b31m"
assert r["id"] == "id" + esc and r["schema"] == "ct.x" + esc + "/1" and r["meta"]["key" + esc] == "v" + esc and ("t" + esc) in r["tensors"], r
' "$T/esc.json" && ok "ls --json: control characters escaped, the values decode back exactly" ||
    notok "ls --json: control characters escaped, the values decode back exactly" "$(cat -v "$T/esc.json" | head -c 300)"
ct-ls -S --json "$T/badutf8.ctv" >"$T/bad.json"
"$PYTHON" -c '
import json, sys
r = json.loads(open(sys.argv[1], "rb").read().decode("utf-8"))   # strict: fails on invalid UTF-8
assert r["id"] == "a\ufffd\ufffdb" and "x\x80" in r["tensors"] and r["meta"]["k\ufffd"] == "\ufffd\ufffd\ufffd", r
' "$T/bad.json" && ok "ls --json: invalid UTF-8 becomes U+FFFD (valid UTF-8 out)" ||
    notok "ls --json: invalid UTF-8 becomes U+FFFD (valid UTF-8 out)" "$(cat -v "$T/bad.json" | head -c 300)"
ct-ls -S "$T/badutf8.ctv" | grep -q 'id=a\\xff\\xfeb' && ok "ls: invalid UTF-8 shown as \\xNN" || notok "ls: invalid UTF-8 shown as \\xNN" "$(ct-ls -S "$T/badutf8.ctv" | cat -v)"
ct-pick --expect ct.y/1 "$T/esc.ctv" 2>"$T/esc.err" >/dev/null
! LC_ALL=C grep -q $'\x1b\|\x07' "$T/esc.err" && [ -s "$T/esc.err" ] && ok "errors: ids with escape sequences are inert on stderr" ||
    notok "errors: ids with escape sequences are inert on stderr" "$(cat -v "$T/esc.err")"
