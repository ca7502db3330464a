# Foundation tools: ct-phantom, ct-import, ct-ls, ct-pick, ct-export.
# Round trips, determinism, and every bad-input class of the stream format.
source "$(dirname "$0")/lib.sh"

ct-phantom -o "$T/ph" --shape 48,40,16 --spacing 8,8,20 || { notok setup "ct-phantom failed"; exit 1; }
check "phantom: writes ct and seg" test -s "$T/ph/ct.nii.gz" -a -s "$T/ph/seg.nii.gz"
ct-phantom -o "$T/ph2" --shape 48,40,16 --spacing 8,8,20
a=$(ct-import "$T/ph/ct.nii.gz" -l "$T/ph/seg.nii.gz" | ct-ls --crc -S | grep crc32)
b=$(ct-import "$T/ph2/ct.nii.gz" -l "$T/ph2/seg.nii.gz" | ct-ls --crc -S | grep crc32)
if [ -n "$a" ] && [ "$a" = "$b" ]; then ok "phantom: deterministic voxels"; else notok "phantom: deterministic voxels" "$a vs $b"; fi

ct-import "$T/ph/ct.nii.gz" -l "$T/ph/seg.nii.gz" >"$T/a.ctv"
ct-pick "$T/a.ctv" >"$T/b.ctv"
same "pick: write -> read -> write is byte-identical" "$T/a.ctv" "$T/b.ctv"
ct-pick -z zstd "$T/a.ctv" | ct-pick -z raw >"$T/c.ctv"
same "pick: raw -> zstd -> raw is byte-identical" "$T/a.ctv" "$T/c.ctv"
cat "$T/a.ctv" "$T/a.ctv" "$T/a.ctv" >"$T/three.ctv"
n=$(ct-ls "$T/three.ctv" | grep -c '^record ')
[ "$n" = 3 ] && ok "ls: concatenated streams are streams" || notok "ls: concatenated streams are streams" "$n records"
n=$(ct-pick -r 1- "$T/three.ctv" | ct-ls | grep -c '^record ')
[ "$n" = 2 ] && ok "pick: record range" || notok "pick: record range" "$n records"
ct-pick -t label "$T/a.ctv" | ct-ls | grep -q '^  image ' && notok "pick: tensor selection" "image kept" || ok "pick: tensor selection"
check "ls: --json is one object per record" sh -c "ct-ls --json '$T/three.ctv' | wc -l | grep -qx 3"
check "ls: --expect accepts the right schema" ct-ls --expect ct.image/1 "$T/a.ctv"
check "import: -o writes a file" ct-import -o "$T/o.ctv" "$T/ph/ct.nii.gz"
check "export: writes a .nii.gz" ct-export -t image -o "$T/x.nii.gz" "$T/a.ctv"

# --- usage ---
check "help: exit 0" ct-pick --help
ct-ls --help | grep -q '^Usage: ct-ls' && ok "help: usage on stdout" || notok "help: usage on stdout" "no usage"
expect_fail "usage: unknown option exits 2" 2 "unrecognized option" ct-pick --bogus
expect_fail "usage: bad compression" 2 "ct-pick: --compress: unknown compression 'lz4'" ct-pick -z lz4
expect_fail "usage: import needs a file" 2 "ct-import: no input file" ct-import

# --- bad NIfTI ---
expect_fail "import: missing file" 1 "^ct-import: $T/none.nii.gz: No such file or directory$" ct-import "$T/none.nii.gz"
head -c 3000 "$T/ph/ct.nii.gz" >"$T/trunc.nii.gz"
expect_fail "import: truncated .nii.gz" 1 "ct-import: $T/trunc.nii.gz: truncated file" ct-import "$T/trunc.nii.gz"
head -c 20000 /dev/urandom >"$T/noise.nii"
expect_fail "import: not NIfTI" 1 "ct-import: $T/noise.nii: not a NIfTI file" ct-import "$T/noise.nii"
gzip -dc "$T/ph/ct.nii.gz" | head -c 5000 >"$T/short.nii"
expect_fail "import: truncated .nii" 1 "truncated file \(5000 bytes; the header promises" ct-import "$T/short.nii"
ct-phantom -o "$T/other" --shape 48,40,17 --spacing 8,8,20
expect_fail "import: label on another grid" 1 "label map is on another grid" \
    ct-import "$T/ph/ct.nii.gz" -l "$T/other/seg.nii.gz"
if have_data; then
    expect_fail "import: 4-D volume" 1 "4-D volume" ct-import "$CT_DATA/nifti-edge-cases-nibabel/functional.nii"
else
    skip "import: 4-D volume" "../shared/data absent"
fi

# --- bad streams (crafted with the documented Python writer) ---
craft() {  # craft FILE PYTHON-EXPR-WRITING-TO-f
    "$PYTHON" - "$1" "$2" <<'PY'
import sys, msgpack, numpy as np
sys.path.insert(0, "tests/ref")
import reflib
path, body = sys.argv[1], sys.argv[2]
f = open(path, "wb")
a = np.arange(6, dtype=np.float32).reshape(2, 3)
def tensor(**kw):
    t = {"dtype": "f32", "shape": [2, 3], "codec": "raw", "data": a.tobytes()}
    t.update(kw)
    return t
def rec(schema="ct.image/1", id="c1", **tensors):
    return msgpack.packb({"schema": schema, "id": id, "meta": {}, "tensors": tensors})
exec(body)
PY
}
craft "$T/ok.ctv" 'f.write(rec(id="c0", x=tensor()))'
craft "$T/size.ctv" 'f.write(rec(id="c7", x=tensor(shape=[2, 4])))'
expect_fail "stream: payload size vs shape" 1 \
    "^ct-ls: $T/size.ctv: record 0 \(id c7\): tensor 'x': payload is 24 bytes but shape \[2,4\] of f32 needs 32$" \
    ct-ls "$T/size.ctv"
craft "$T/size2.ctv" 'f.write(rec(id="c0", x=tensor())); f.write(rec(id="c7", x=tensor(shape=[2, 4])))'
ct-pick "$T/size2.ctv" >"$T/size2.out" 2>"$T/size2.err"
rc=$?
n=$(ct-ls "$T/size2.out" 2>/dev/null | grep -c '^record ')
if [ $rc = 1 ] && [ "$n" = 1 ] && grep -q "record 1 (id c7)" "$T/size2.err"; then ok "stream: records before a bad one pass, then the error"
else notok "stream: records before a bad one pass, then the error" "rc $rc, $n records, $(cat "$T/size2.err")"; fi
craft "$T/dtype.ctv" 'f.write(rec(x=tensor(dtype="bf16")))'
expect_fail "stream: unknown dtype" 1 "^ct-pick: record 0 \(id c1\): tensor 'x': unknown dtype 'bf16'" \
    sh -c "ct-pick <'$T/dtype.ctv'"
craft "$T/zstd.ctv" 'import zstandard; z = bytearray(zstandard.ZstdCompressor(write_checksum=True).compress(a.tobytes())); z[len(z) // 2] ^= 0x10; f.write(rec(x=tensor(codec="zstd", data=bytes(z))))'
expect_fail "stream: corrupt zstd frame (checksum)" 1 "record 0 \(id c1\): tensor 'x': corrupt zstd frame" \
    sh -c "ct-pick <'$T/zstd.ctv'"
craft "$T/zstd2.ctv" 'import zstandard; z = bytearray(zstandard.ZstdCompressor().compress(a.tobytes())); z[0] ^= 0xff; f.write(rec(x=tensor(codec="zstd", data=bytes(z))))'
expect_fail "stream: corrupt zstd frame (header)" 1 "record 0 \(id c1\): tensor 'x': corrupt zstd frame" \
    sh -c "ct-pick <'$T/zstd2.ctv'"
ct-pick -z zstd "$T/a.ctv" >"$T/z.ctv"
"$PYTHON" - "$T/z.ctv" <<'PY'
import sys, msgpack
recs = list(msgpack.Unpacker(open(sys.argv[1], "rb"), raw=False))
t = recs[0]["tensors"]["image"]
d = bytearray(t["data"]); d[len(d) // 2] ^= 0x01; t["data"] = bytes(d)
open(sys.argv[1], "wb").write(msgpack.packb(recs[0]))
PY
expect_fail "stream: our zstd frames carry a checksum" 1 "tensor 'image': corrupt zstd frame" ct-ls "$T/z.ctv"
craft "$T/major.ctv" 'f.write(rec(schema="ct.image/2", id="v2"))'
expect_fail "stream: wrong schema major" 1 \
    "^ct-pick: record 0 \(id v2\): schema ct.image/2 has major version 2; this tool reads ct.image/1$" \
    ct-pick --expect ct.image/1 "$T/major.ctv"
craft "$T/noid.ctv" 'f.write(msgpack.packb({"schema": "ct.image/1", "tensors": {}}))'
expect_fail "stream: missing required key" 1 "record 0 \(id \?\): missing required key 'id'" ct-ls "$T/noid.ctv"
# a key repeated after the payload must not change the tensor's size (it used to read past the buffer)
"$PYTHON" - "$T/dup.ctv" <<'PY'
import sys, msgpack
# msgpack.packb cannot write a map with a repeated key: assemble the bytes by hand
p = msgpack.Packer()
b = p.pack_map_header(3) + p.pack("schema") + p.pack("ct.x/1") + p.pack("id") + p.pack("d1") + p.pack("tensors")
b += p.pack_map_header(1) + p.pack("x") + p.pack_map_header(4)
b += p.pack("dtype") + p.pack("f32") + p.pack("shape") + p.pack([1]) + p.pack("data") + p.pack(b"\0\0\0\0")
b += p.pack("shape") + p.pack([400000000])
open(sys.argv[1], "wb").write(b)
PY
expect_fail "stream: a key repeated after the data" 1 "record 0 \(id d1\): tensor 'x': duplicate key 'shape'" \
    ct-ls "$T/dup.ctv"
craft "$T/ovf.ctv" 'f.write(rec(id="o1", x=tensor(dtype="f64", shape=[2**40, 2**22], data=b"")))'
expect_fail "stream: a shape whose byte count overflows" 1 "record 0 \(id o1\): tensor 'x': shape holds more than 2\^56 elements" \
    ct-ls "$T/ovf.ctv"
craft "$T/bigmeta.ctv" 'f.write(msgpack.packb({"schema": "ct.x/1", "id": "m1", "meta": {"blob": b"x" * (65 << 20)}, "tensors": {}}))'
expect_fail "stream: an oversized meta value is refused" 1 "record 0 \(id m1\): meta 'blob': metadata value larger than 64 MiB" \
    ct-ls "$T/bigmeta.ctv"
craft "$T/esc.ctv" 'f.write(rec(id="e\"1", **{"a\"b\\": tensor()}))'
ct-ls --json "$T/esc.ctv" | "$PYTHON" -c 'import json, sys; r = json.loads(sys.stdin.read()); assert r["id"] == "e\"1" and "a\"b\\" in r["tensors"]' &&
    ok "ls: --json escapes ids and tensor names" || notok "ls: --json escapes ids and tensor names" "not valid JSON"
craft "$T/long.ctv" 'f.write(msgpack.packb({"schema": "ct.x/1", "id": "l1", "meta": {"v": list(range(40))}, "tensors": {}}))'
ct-ls --json "$T/long.ctv" | "$PYTHON" -c 'import json, sys; assert json.loads(sys.stdin.read())["meta"]["v"] == list(range(40))' &&
    ok "ls: --json keeps long metadata arrays whole" || notok "ls: --json keeps long metadata arrays whole" "cut"

head -c 100 "$T/a.ctv" >"$T/trunc.ctv"
expect_fail "stream: truncated" 1 "^ct-ls: record 0 \(id ct\): (meta 'affine': )?truncated stream" sh -c "ct-ls <'$T/trunc.ctv'"
expect_fail "stream: a NIfTI file is not a stream" 1 "not a ctvis record \(expected a msgpack map" \
    ct-ls "$T/ph/ct.nii.gz"
expect_fail "export: tensor missing" 1 "record 0 \(id ct\): missing tensor 'mask'" \
    ct-export -t mask -o "$T/m.nii.gz" "$T/a.ctv"
expect_fail "export: several records need %s" 1 "more than one record selected" \
    ct-export -t image -o "$T/m.nii.gz" "$T/three.ctv"
[ ! -e "$T/m.nii.gz" ] && ok "export: a refused selection leaves no file" || notok "export: a refused selection leaves no file" "m.nii.gz exists"
mkdir -p "$T/ex"
expect_fail "export: two records would write the same file" 1 "record 1 \(id ct\): another record with id 'ct' was written to $T/ex/ct.nii" \
    ct-export -t image -o "$T/ex/%s.nii" "$T/three.ctv"

# --- nothing half-written ---
cat "$T/a.ctv" "$T/trunc.ctv" >"$T/good-then-bad.ctv"
ct-pick -o "$T/out.ctv" "$T/good-then-bad.ctv" 2>/dev/null
if [ ! -e "$T/out.ctv" ] && [ -z "$(ls -A "$T" | grep tmp)" ]; then ok "pick: failed -o leaves no file"
else notok "pick: failed -o leaves no file" "$(ls "$T")"; fi

# --- write errors ---
expect_fail "write: full disk" 1 "^ct-import: stdout: write: No space left on device$" \
    sh -c "ct-import '$T/ph/ct.nii.gz' >/dev/full"
expect_fail "write: full disk (ct-pick)" 1 "No space left on device" sh -c "ct-pick '$T/a.ctv' >/dev/full"
ct-phantom -o "$T/big" --shape 160,160,64
( ct-import "$T/big/ct.nii.gz" "$T/big/ct.nii.gz" 2>"$T/pipe.err" | head -c 100 >/dev/null
  echo "${PIPESTATUS[0]}" >"$T/pipe.rc" )
if [ "$(cat "$T/pipe.rc")" = 1 ] && grep -q "broken pipe" "$T/pipe.err"; then ok "write: broken pipe reported"
else notok "write: broken pipe reported" "rc $(cat "$T/pipe.rc"): $(cat "$T/pipe.err")"; fi

# --- -o onto special files: written through, never replaced ---
if [ "$(id -u)" = 0 ] && mknod "$T/null" c 1 3 2>/dev/null; then
    # a private null device: a regression cannot damage the shared /dev/null
    ct-pick -o "$T/null" "$T/a.ctv"
    if [ -c "$T/null" ]; then ok "output: -o onto a device writes through it"
    else notok "output: -o onto a device writes through it" "$(ls -l "$T/null")"; fi
else
    skip "output: -o onto a device writes through it" "mknod needs root"
fi
ct-pick -o /dev/stdout "$T/a.ctv" >"$T/via-stdout.ctv"
same "output: -o /dev/stdout writes to stdout" "$T/a.ctv" "$T/via-stdout.ctv"
mkfifo "$T/fifo"
ct-ls -S "$T/fifo" >"$T/fifo.out" &
ct-pick -o "$T/fifo" "$T/a.ctv"
wait
if [ -p "$T/fifo" ] && grep -q '^record 0' "$T/fifo.out"; then ok "output: -o FIFO writes through the pipe"
else notok "output: -o FIFO writes through the pipe" "$(ls -l "$T/fifo")"; fi
ln -s target.ctv "$T/link.ctv"
ct-pick -o "$T/link.ctv" "$T/a.ctv"
if [ -L "$T/link.ctv" ] && cmp -s "$T/target.ctv" "$T/a.ctv"; then ok "output: -o symlink writes its target, keeps the link"
else notok "output: -o symlink writes its target, keeps the link" "$(ls -l "$T")"; fi
