#!/usr/bin/env bash
# Issue 15 items 3, 5, 6, 10, 14: the stream reader against hostile records built here:
# zstd bombs and over-limit shapes refused before allocating, many meta keys read in
# linear time, meta bounded by its decoded size, one or more zstd frames (skippable
# ones too), error lines that name the record once and never repeat a prefix.
source "$(dirname "$0")/lib.sh"
asan=0; case "${CT_BUILD:-build}" in *asan*) asan=1 ;; esac

"$PYTHON" - "$T" <<'PY' || { notok setup "crafting failed"; exit 1; }
import os, sys, struct, msgpack, numpy as np, zstandard
T = sys.argv[1]
def rec(id, tensors=None, meta=None, schema="ct.x/1"):
    return msgpack.packb({"schema": schema, "id": id, "meta": meta or {}, "tensors": tensors or {}})
def put(name, *recs):
    with open(os.path.join(T, name), "wb") as f:
        for r in recs: f.write(r)

def rle_frame(total, content_size=True):
    """A zstd frame of `total` zero bytes made of 128 KiB RLE blocks (4 bytes each)."""
    if content_size:   # single segment, 8-byte content size
        out = struct.pack("<IB", 0xFD2FB528, 0xE0) + struct.pack("<Q", total)
    else:              # no content size: a 128 KiB window descriptor instead
        out = struct.pack("<IBB", 0xFD2FB528, 0x00, 7 << 3)
    left, blocks = total, []
    while left:
        k = min(left, 128 << 10); left -= k
        blocks.append(struct.pack("<I", (k << 3) | (1 << 1) | (left == 0))[:3] + b"\0")
    return out + b"".join(blocks)

G5 = 5 << 30
put("bomb.ctv", rec("b5", {"x": {"dtype": "u8", "shape": [G5], "codec": "zstd", "data": rle_frame(G5)}}))
put("bomb-small-shape.ctv", rec("b1", {"x": {"dtype": "u8", "shape": [64 << 20], "codec": "zstd", "data": rle_frame(G5)}}))
put("bomb-nosize.ctv", rec("b2", {"x": {"dtype": "u8", "shape": [64 << 20], "codec": "zstd", "data": rle_frame(G5, False)}}))
put("bomb-blob.ctv", msgpack.packb({"schema": "ct.x/1", "id": "b3", "tensors": {"x": {"data": rle_frame(G5), "codec": "zstd", "dtype": "u8", "shape": [64 << 20]}}}))
put("over.ctv", rec("o1", {"x": {"dtype": "f32", "shape": [1 << 30], "codec": "raw", "data": b""}}))
put("over2.ctv", msgpack.packb({"schema": "ct.x/1", "id": "o2", "tensors": {"x": {"shape": [1 << 16, 1 << 16], "dtype": "u8", "codec": "raw", "data": b"\0" * 16}}}))
put("limit-ok.ctv", rec("l1", {"x": {"dtype": "u8", "shape": [(1 << 32) - 1], "codec": "raw", "data": b""}}))

# frames: two frames that record their sizes, skippable frames before, between, after
a = np.arange(50000, dtype=np.float32)
raw = a.tobytes()
z = zstandard.ZstdCompressor(write_content_size=True)
skip = struct.pack("<II", 0x184D2A50, 5) + b"hello"
two = z.compress(raw[:80000]) + z.compress(raw[80000:])
def t(data, first="dtype"):
    d = {"dtype": "f32", "shape": [50000], "codec": "zstd", "data": data}
    return d if first == "dtype" else {"data": data, "codec": "zstd", "dtype": "f32", "shape": [50000]}
put("raw.ctv", rec("f", {"x": {"dtype": "f32", "shape": [50000], "codec": "raw", "data": raw}}))
put("two.ctv", rec("f", {"x": t(two)}))
put("two-blob.ctv", rec("f", {"x": t(two, "data")}))
put("skip.ctv", rec("f", {"x": t(skip + z.compress(raw))}))
put("skip-blob.ctv", rec("f", {"x": t(skip + z.compress(raw), "data")}))
put("skip-mid.ctv", rec("f", {"x": t(z.compress(raw[:80000]) + skip + z.compress(raw[80000:]) + skip)}))
nosize = zstandard.ZstdCompressor(write_content_size=False)
put("two-nosize.ctv", rec("f", {"x": t(nosize.compress(raw[:4000]) + nosize.compress(raw[4000:]))}))
put("two-short.ctv", rec("s", {"x": t(z.compress(raw[:80000]) + z.compress(raw[80000:120000]))}))
put("two-long.ctv", rec("s", {"x": t(two + z.compress(b"\0" * 8))}))

# meta: many keys, decoded size
put("keys.ctv", rec("k", meta={"k%06d" % i: i for i in range(65000)}))
put("keys-over.ctv", rec("k2", meta={"k%06d" % i: i for i in range(160000)}))
put("nils.ctv", rec("n", meta={"a": [None] * 10_000_000}))
put("nils-nested.ctv", rec("n2", meta={"a": [[None] * 15] * 1_000_000}))
put("meta-ok.ctv", rec("m", meta={"a": [None] * 100_000, "s": "x" * (32 << 20)}))

# organ_voxels of 2^64 - 1
sys.path.insert(0, "tests/ref")
import reflib
img = np.zeros((8, 8, 8), np.float32); m = np.zeros((8, 8, 8), np.uint8); m[1:3, 1:3, 1:3] = 1
with open(os.path.join(T, "vox.ctv"), "wb") as f:
    reflib.write_record(f, "ct.case/1", "v1", {"image": img, "mask": m},
                        {"organ_voxels": [2**64 - 1, 0, 0, 0], "organs": ["lung", "heart", "esophagus", "aorta"]})
PY

# ---- item 5: sizes over the limit refused before allocating, from the shape and the frame header ----
lim() { if [ $asan = 1 ]; then "$@"; else (ulimit -v 4000000; "$@"); fi; }   # 4 GB of address space
expect_fail "zstd bomb: a 5 GiB shape is over the 4 GiB - 1 limit" 1 \
    "^ct-ls: $T/bomb.ctv: record 0 \(id b5\): tensor 'x': shape \[5368709120\] of u8 needs 5368709120 bytes; a tensor is limited to 4 GiB - 1" \
    lim ct-ls "$T/bomb.ctv"
expect_fail "zstd bomb: a frame header larger than the shape" 1 \
    "record 0 \(id b1\): tensor 'x': zstd payload holds 5368709120 bytes but its shape needs 67108864$" \
    lim ct-ls "$T/bomb-small-shape.ctv"
expect_fail "zstd bomb: a frame without content size stops at the shape's size" 1 \
    "record 0 \(id b2\): tensor 'x': zstd payload decompresses to more than the 67108864 bytes its shape needs" \
    lim ct-ls "$T/bomb-nosize.ctv"
expect_fail "zstd bomb: data before shape, checked from the frame headers" 1 \
    "record 0 \(id b3\): tensor 'x': zstd payload holds .* bytes but its shape needs 67108864$" \
    lim ct-ls "$T/bomb-blob.ctv"
expect_fail "raw: a 4 GiB shape refused before reading" 1 \
    "record 0 \(id o1\): tensor 'x': shape \[1073741824\] of f32 needs 4294967296 bytes; a tensor is limited" \
    lim ct-ls "$T/over.ctv"
expect_fail "raw: the limit when shape comes before dtype" 1 \
    "record 0 \(id o2\): tensor 'x': shape \[65536,65536\] of u8 needs 4294967296 bytes" lim ct-ls "$T/over2.ctv"
expect_fail "raw: 4 GiB - 1 is within the limit (then the payload is short)" 1 \
    "record 0 \(id l1\): tensor 'x': payload is 0 bytes but shape \[4294967295\] of u8 needs 4294967295$" \
    lim ct-ls "$T/limit-ok.ctv"

# ---- item 10: one or more zstd frames ----
want=$(ct-ls --crc -S "$T/raw.ctv" | grep -o 'crc32=.*')
for f in two two-blob skip skip-blob skip-mid two-nosize; do
    got=$(ct-ls --crc -S "$T/$f.ctv" 2>&1 | grep -o 'crc32=.*\|ct-ls:.*')
    [ -n "$want" ] && [ "$got" = "$want" ] && ok "zstd frames: $f.ctv decodes to the raw values" ||
        notok "zstd frames: $f.ctv decodes to the raw values" "$got"
done
expect_fail "zstd frames: frames that hold too little" 1 "record 0 \(id s\): tensor 'x': zstd payload (decompresses to|holds) 120000 bytes but its shape needs 200000$" \
    ct-ls "$T/two-short.ctv"
expect_fail "zstd frames: frames that hold too much" 1 "record 0 \(id s\): tensor 'x': zstd payload decompresses to more than the 200000 bytes" \
    ct-ls "$T/two-long.ctv"
"$PYTHON" - "$T" <<'PY' && ok "zstd frames: the documented Python reader reads them too" || notok "zstd frames: the documented Python reader reads them too" "see above"
import sys, numpy as np
sys.path.insert(0, "tests/ref")
import reflib
T = sys.argv[1]
a = np.arange(50000, dtype=np.float32)
for f in ["two", "two-blob", "skip", "skip-mid", "two-nosize"]:
    r = list(reflib.read_stream(open("%s/%s.ctv" % (T, f), "rb")))
    assert np.array_equal(r[0]["tensors"]["x"], a), f
for f in ["two-short", "two-long", "bomb-nosize"]:
    try:
        list(reflib.read_stream(open("%s/%s.ctv" % (T, f), "rb")))
        raise SystemExit("%s read" % f)
    except ValueError:
        pass
PY

# ---- items 3 and 6: meta ----
t0=$(date +%s.%N)
n=$(timeout 20 ct-pick "$T/keys.ctv" | timeout 20 ct-ls -S | grep -c '^  meta ')
t1=$(date +%s.%N)
secs=$(echo "$t1 - $t0" | bc)
if [ "$n" = 65000 ] && [ "$(echo "$secs < 8" | bc)" = 1 ]; then ok "meta: 65000 keys read, copied and read again in ${secs}s (< 8 s; quadratic took > 20 s)"
else notok "meta: 65000 keys read, copied and read again in ${secs}s (< 8 s)" "$n keys"; fi
expect_fail "meta: more than 65536 keys refused" 1 "record 0 \(id k2\): meta: 160000 keys \(at most 65536\)$" \
    ct-ls "$T/keys-over.ctv"
expect_fail "meta: 10 million nils are 640 MB decoded" 1 \
    "record 0 \(id n\): meta 'a': metadata value larger than 64 MiB \(decoded: 10000000 items" lim ct-ls "$T/nils.ctv"
expect_fail "meta: nested small arrays count too" 1 "record 0 \(id n2\): meta 'a': metadata value larger than 64 MiB" \
    lim ct-ls "$T/nils-nested.ctv"
check "meta: 100000 nils and a 32 MiB string are within the bound" ct-ls -S "$T/meta-ok.ctv"

# ---- item 14: error lines ----
# a bin32 header promising 3 GiB, then 10 bytes: through a pipe the reader allocates the tensor first
"$PYTHON" -c 'import msgpack, sys, struct; p = msgpack.Packer(); sys.stdout.buffer.write(p.pack_map_header(3) + p.pack("schema") + p.pack("ct.x/1") + p.pack("id") + p.pack("big1") + p.pack("tensors") + p.pack_map_header(1) + p.pack("x") + p.pack_map_header(4) + p.pack("dtype") + p.pack("u8") + p.pack("shape") + p.pack([3 << 30]) + p.pack("codec") + p.pack("raw") + p.pack("data") + b"\xc6" + struct.pack(">I", 3 << 30) + b"\0" * 10)' >"$T/oom.ctv"
if [ $asan = 1 ]; then skip "out of memory names the record" "ulimit -v does not work under AddressSanitizer"
else
    # through a pipe the reader cannot know the input is short: it allocates, and must say for what
    expect_fail "out of memory names the record" 1 "^ct-ls: record 0 \(id big1\): out of memory" \
        sh -c "ulimit -v 1000000; cat '$T/oom.ctv' | ct-ls"
fi
# a regular file tells how much is left: the 3 GiB payload is refused before its buffer exists
expect_fail "a payload longer than the rest of the file is refused before allocating" 1 \
    "^ct-ls: $T/oom.ctv: record 0 \(id big1\): tensor 'x': truncated stream \(a payload of 3221225472 bytes, but the input ends 10 bytes later\)$" \
    lim ct-ls "$T/oom.ctv"
head -c 60 "$T/raw.ctv" >"$T/wt.ctv"
expect_fail "no repeated prefix: encode -w truncated weights" 1 "^encode: $T/wt.ctv: record 0 \(id f\): (tensor 'x': )?truncated stream" \
    sh -c "encode -w '$T/wt.ctv' </dev/null"
expect_fail "organ_voxels 2^64-1 is not -1" 1 "18446744073709551615" mask-pool "$T/vox.ctv"
