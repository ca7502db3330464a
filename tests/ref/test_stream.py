"""Streams against independent readers: the documented Python snippet (msgpack + numpy) and nibabel.

- ct-import output read with the schemas/README.md snippet equals nibabel's arrays and affine;
- the same after zstd recompression by ct-pick;
- records written by the documented Python writer, every dtype and odd shapes, survive a pass
  through the C reader/writer (raw and zstd) bit for bit, and ct-ls --json statistics match numpy;
- ct-export writes NIfTI that nibabel reads back identical.
"""
import json, os, tempfile
import numpy as np
import nibabel as nib
import reflib
from reflib import check, run, records, skip

tmp = tempfile.mkdtemp(prefix="ctvis-ref-stream-")
run(["ct-phantom", "-o", tmp, "--shape", "40,36,12", "--spacing", "8,8,20"])
ct_path, seg_path = os.path.join(tmp, "ct.nii.gz"), os.path.join(tmp, "seg.nii.gz")
img, seg = nib.load(ct_path), nib.load(seg_path)
ct_ref = np.asarray(img.dataobj)       # (x, y, z)
seg_ref = np.asarray(seg.dataobj)

out, _, _ = run(["ct-import", ct_path, "--label", seg_path])
recs = records(out)
check("import: one record", len(recs) == 1)
r = recs[0]
check("import: schema and id", r["schema"] == "ct.image/1" and r["id"] == "ct")
check("import: image equals nibabel's array (C order = .T)",
      r["tensors"]["image"].dtype == np.int16 and np.array_equal(r["tensors"]["image"], ct_ref.T))
check("import: label equals nibabel's array", np.array_equal(r["tensors"]["label"], seg_ref.T))
A = np.array(r["meta"]["affine"])
check("import: meta affine is nibabel's affine with the axes reversed",
      np.allclose(A[:, [2, 1, 0, 3]], img.affine, atol=1e-6), str(A))
check("import: spacing_mm per C axis", np.allclose(r["meta"]["spacing_mm"], img.header.get_zooms()[::-1]))
# a voxel index maps to the same world point both ways
idx = np.array([5, 7, 9])
check("import: world coordinates agree",
      np.allclose(A @ np.r_[idx, 1], img.affine @ np.r_[idx[::-1], 1]))

zout, _, _ = run(["ct-pick", "-z", "zstd:3"], input=out)
zr = records(zout)[0]
check("zstd: payloads are zstd in the stream",
      all(t["codec"] == "zstd" for t in __import__("msgpack").unpackb(zout, raw=False)["tensors"].values()))
check("zstd: arrays identical after recompression",
      np.array_equal(zr["tensors"]["image"], ct_ref.T) and np.array_equal(zr["tensors"]["label"], seg_ref.T))
check("zstd: smaller than raw", len(zout) < len(out) * 0.7, "%d vs %d" % (len(zout), len(out)))

# every dtype through the C reader and writer
rng = np.random.default_rng(7)
arrays = {}
for name, dt in reflib.DTYPES.items():
    d = np.dtype(dt)
    if d.kind == "f":
        a = rng.standard_normal((3, 5, 7)).astype(d)
        a[0, 0, 0], a[0, 0, 1], a[1, 2, 3] = np.nan, np.inf, -np.inf
    else:
        info = np.iinfo(d)
        a = rng.integers(info.min, info.max, size=(3, 5, 7), dtype=d, endpoint=True)
    arrays["t_" + name] = a
arrays["scalar"] = np.array(2.5, dtype=np.float32)
arrays["empty"] = np.zeros((0, 4), dtype=np.int32)
arrays["big_f32"] = rng.standard_normal((17, 33, 65)).astype(np.float32)
path = os.path.join(tmp, "py.ctv")
with open(path, "wb") as f:
    reflib.write_record(f, "ct.test/1", "py-1", arrays, {"note": "from python", "v": [1, 2.5]})
    reflib.write_record(f, "ct.test/1", "py-2", {"x": np.arange(10, dtype=np.uint16)})
for codec in ("raw", "zstd"):
    o, _, _ = run(["ct-pick", "-z", codec, path])
    back = records(o)
    good = len(back) == 2 and back[0]["meta"]["note"] == "from python" and back[1]["id"] == "py-2"
    for k, a in arrays.items():
        b = back[0]["tensors"].get(k)
        good = good and b is not None and b.dtype == a.dtype and b.shape == a.shape and \
            a.tobytes() == b.tobytes()
    check("python writer -> C %s -> python reader: every dtype bit-identical" % codec, good)

js, _, _ = run(["ct-ls", "--json", path])
lines = [json.loads(l) for l in js.decode().splitlines()]
t = lines[0]["tensors"]["t_f32"]
a = arrays["t_f32"].astype(np.float64)
fin = a[np.isfinite(a)]
check("ct-ls --json: statistics agree with numpy",
      t["nan"] == 1 and t["inf"] == 2 and np.isclose(t["min"], fin.min()) and np.isclose(t["max"], fin.max())
      and np.isclose(t["mean"], fin.mean(), rtol=1e-7), str(t))
t = lines[0]["tensors"]["t_i64"]
check("ct-ls --json: integer statistics", t["min"] == float(arrays["t_i64"].min()) and t["nan"] == 0, str(t))

# NIfTI export round trip
nii = os.path.join(tmp, "back.nii.gz")
run(["ct-export", "-t", "image", "-o", nii], input=out)
b = nib.load(nii)
check("export: nibabel reads the voxels back identical",
      np.array_equal(np.asarray(b.dataobj), ct_ref) and b.get_data_dtype() == np.int16)
check("export: affine preserved (sform and qform)",
      np.allclose(b.affine, img.affine, atol=1e-5) and np.allclose(b.get_qform(), img.affine, atol=1e-4))
run(["ct-export", "-t", "label", "-o", os.path.join(tmp, "%s_label.nii")], input=out)
lb = nib.load(os.path.join(tmp, "ct_label.nii"))
check("export: %s names the file by record id, .nii uncompressed",
      np.array_equal(np.asarray(lb.dataobj), seg_ref) and lb.get_data_dtype() == np.uint8)

# big-endian NIfTI through ct-import
edge = os.path.join(reflib.DATA, "nifti-edge-cases-nibabel", "anatomical.nii")
if os.path.exists(edge):
    o, _, _ = run(["ct-import", edge])
    e = records(o)[0]
    ref = nib.load(edge)
    check("import: big-endian int16 file equals nibabel",
          np.array_equal(e["tensors"]["image"], np.asarray(ref.dataobj).T))
else:
    skip("import: big-endian int16 file equals nibabel", "../shared/data absent")
reflib.done()
