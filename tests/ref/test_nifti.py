"""lib/nii.c (through ct-import) against nibabel 5: voxels, scaling and the affine, bit for bit.

Files are written byte by byte from nibabel header objects (so the raw fields are exactly what
the test says, not what nibabel's writer would normalise them to): every common datatype, both
byte orders, NIfTI-1 and NIfTI-2, .nii and .nii.gz, scl_slope/scl_inter, qform-only headers with
random quaternions and qfac -1, sform + qform, no transform at all, and the header defects nibabel
fixes on load (zero/negative pixdim, qfac 0, xform codes outside 0..5).  Plus the three real
edge-case files of ../shared/data/nifti-edge-cases-nibabel and libnifti's sibling-file trap.

Tolerance: none.  The image must equal np.asanyarray(img.dataobj) (cast to float32 when scaled,
as MONAI does) and the affine must equal img.affine exactly.
"""
import gzip, os, sys, tempfile
import numpy as np
import nibabel as nib
import reflib
from reflib import check, ok, not_ok, skip, run, records

T = tempfile.mkdtemp()
rng = np.random.default_rng(7)


def write_raw(path, hdr, data):
    """header bytes (+ 4 extension bytes for NIfTI-1) + data at vox_offset; gzip by suffix."""
    blk = hdr.binaryblock
    off = int(hdr["vox_offset"])
    head = blk + b"\0" * (off - len(blk))
    order = ">" if hdr.endianness == ">" else "<"
    body = np.asarray(data).astype(data.dtype.newbyteorder(order)).tobytes(order="F")
    raw = head + body
    if path.endswith(".gz"):
        with gzip.open(path, "wb", compresslevel=1) as f:
            f.write(raw)
    else:
        with open(path, "wb") as f:
            f.write(raw)


def make_hdr(version, data, endian="<"):
    H = nib.Nifti1Header if version == 1 else nib.Nifti2Header
    h = H(endianness=endian)
    h.set_data_dtype(data.dtype)
    h.set_data_shape(data.shape)
    h["vox_offset"] = 352 if version == 1 else 544
    return h


def ours(path):
    out, err, rc = run(["ct-import", path], check_rc=False)
    if rc != 0:
        return None, err.strip()
    return records(out)[0], None


def compare(name, path):
    img = nib.load(path)
    r, err = ours(path)
    if r is None:
        return not_ok(name, "ct-import failed: " + err)
    ref = np.asanyarray(img.dataobj)
    scaled = img.dataobj.slope != 1 or img.dataobj.inter != 0
    if scaled:
        ref = ref.astype(np.float32)
    got = r["tensors"]["image"]
    why = []
    if got.shape != ref.T.shape:
        why.append("shape %s vs %s" % (got.shape, ref.T.shape))
    elif got.dtype.newbyteorder("=") != ref.dtype.newbyteorder("="):
        why.append("dtype %s vs %s" % (got.dtype, ref.dtype))
    elif not np.array_equal(got, ref.T, equal_nan=True):
        why.append("voxels differ (max %g)" % np.nanmax(np.abs(got.astype(float) - ref.T.astype(float))))
    A = np.array(r["meta"]["affine"])[:, [2, 1, 0, 3]]
    if not np.array_equal(A, img.affine):
        why.append("affine differs by %g (%s)" % (np.abs(A - img.affine).max(), r["meta"]["nifti"]["affine_source"]))
    check(name, not why, "; ".join(why))


# ---- every datatype, both byte orders, NIfTI-1 and -2, plain and gzip ----
shape = (7, 5, 3)
for dt in ["u1", "i1", "u2", "i2", "i4", "u4", "i8", "f4", "f8"]:
    for version in (1, 2):
        for endian in ("<", ">"):
            for ext in (".nii", ".nii.gz"):
                if np.dtype(dt).kind == "f":
                    data = rng.normal(0, 1000, shape).astype(dt)
                else:
                    info = np.iinfo(dt)
                    data = rng.integers(info.min, info.max, shape, dtype=dt, endpoint=True)
                h = make_hdr(version, data, endian)
                h.set_zooms((0.7, 0.8, 1.5))
                h.set_qform(np.diag([-0.7, -0.8, 1.5, 1.0]) + np.array([[0, 0, 0, 10], [0, 0, 0, -20], [0, 0, 0, 30], [0, 0, 0, 0]]), code=1)
                h.set_sform(None, code=0)
                p = os.path.join(T, "v%d_%s_%s%s" % (version, dt, "be" if endian == ">" else "le", ext))
                write_raw(p, h, data)
                compare("nifti: %s" % os.path.basename(p), p)

# ---- scaling: slope/inter on ints and floats, NIfTI-1 (f32 factors) and -2 (f64) ----
for dt in ["u1", "i2", "i4", "f4", "f8"]:
    for version in (1, 2):
        data = (rng.integers(-2000, 2000, shape) if dt != "u1" else rng.integers(0, 255, shape)).astype(dt)
        h = make_hdr(version, data)
        h.set_zooms((1, 1, 1))
        h["scl_slope"] = 0.0754070
        h["scl_inter"] = 3100.76
        h.set_qform(np.eye(4), code=1)
        p = os.path.join(T, "scaled_v%d_%s.nii.gz" % (version, dt))
        write_raw(p, h, data)
        compare("nifti: scaled v%d %s" % (version, dt), p)
# slope 1 / inter 0, slope 0 and slope NaN mean "no scaling": the stored type is kept
for slope, inter, tag in [(1.0, 0.0, "1,0"), (0.0, 5.0, "0,5"), (np.nan, 5.0, "nan,5")]:
    data = rng.integers(-1000, 1000, shape).astype("i2")
    h = make_hdr(1, data)
    h["scl_slope"], h["scl_inter"] = slope, inter
    h.set_qform(np.eye(4), code=1)
    p = os.path.join(T, "noscale_%s.nii" % tag.replace(",", "_"))
    write_raw(p, h, data)
    r, err = ours(p)
    check("nifti: slope,inter = %s keeps int16" % tag, r is not None and r["tensors"]["image"].dtype == np.int16,
          err or (r and str(r["tensors"]["image"].dtype)))
# a valid slope with an infinite intercept: nibabel refuses the file, so do we
data = rng.integers(-1000, 1000, shape).astype("i2")
h = make_hdr(1, data)
h["scl_slope"], h["scl_inter"] = 2.0, np.inf
p = os.path.join(T, "badinter.nii")
write_raw(p, h, data)
try:
    nib.load(p).get_fdata()
    nib_refuses = False
except Exception:
    nib_refuses = True
r, err = ours(p)
check("nifti: infinite scl_inter refused like nibabel", nib_refuses and r is None and "scl_inter" in (err or ""),
      "nibabel refuses: %s, ours: %s" % (nib_refuses, err))

# ---- geometry: random qforms (qfac +-1), sform precedence, no transform, header defects ----
def rand_quat():
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    if q[0] < 0:
        q = -q
    return q


for i in range(12):
    version = 1 + i % 2
    data = rng.integers(-1000, 1000, shape).astype("i2")
    h = make_hdr(version, data)
    q = rand_quat()
    h["quatern_b"], h["quatern_c"], h["quatern_d"] = q[1:]
    h["qoffset_x"], h["qoffset_y"], h["qoffset_z"] = rng.normal(0, 100, 3)
    h["pixdim"][0] = -1 if i % 3 == 0 else 1
    h["pixdim"][1:4] = rng.uniform(0.3, 5.0, 3)
    h["qform_code"] = 1 + i % 4
    h["sform_code"] = 0
    if i % 4 == 3:                                           # an sform too: it wins
        h["sform_code"] = 2
        h["srow_x"] = rng.normal(0, 1, 4)
        h["srow_y"] = rng.normal(0, 1, 4)
        h["srow_z"] = rng.normal(0, 1, 4)
    p = os.path.join(T, "geom%d_v%d.nii" % (i, version))
    write_raw(p, h, data)
    compare("nifti: geometry %d (v%d, qfac %g, sform_code %d)" % (i, version, h["pixdim"][0], h["sform_code"]), p)

defects = {
    "no transform (pixdim only)": dict(qform_code=0, sform_code=0),
    "negative pixdim": dict(pixdim=[1, -0.7, 0.8, -2.5, 1, 1, 1, 1]),
    "zero pixdim": dict(pixdim=[1, 0.7, 0.0, 2.5, 1, 1, 1, 1]),
    "qfac 0": dict(pixdim=[0, 0.7, 0.8, 2.5, 1, 1, 1, 1]),
    "qform_code 7 (invalid)": dict(qform_code=7, sform_code=0),
    "sform_code -1 (invalid), qform used": dict(qform_code=1, sform_code=-1),
    "no transform, negative pixdim": dict(qform_code=0, sform_code=0, pixdim=[1, -0.7, 0.8, 2.5, 1, 1, 1, 1]),
}
for name, fields in defects.items():
    data = rng.integers(-1000, 1000, shape).astype("i2")
    h = make_hdr(1, data)
    q = rand_quat()
    h["quatern_b"], h["quatern_c"], h["quatern_d"] = q[1:]
    h["qoffset_x"], h["qoffset_y"], h["qoffset_z"] = 1.5, -2.5, 3.5
    h["pixdim"] = [1, 0.7, 0.8, 2.5, 1, 1, 1, 1]
    h["qform_code"], h["sform_code"] = 1, 0
    h["srow_x"], h["srow_y"], h["srow_z"] = [0.7, 0, 0, 1], [0, 0.8, 0, 2], [0, 0, 2.5, 3]
    for k, v in fields.items():
        h[k] = v
    p = os.path.join(T, "defect_%s.nii" % name.split()[0])
    write_raw(p, h, data)
    compare("nifti: header defect: " + name, p)

# ---- the real edge-case files ----
EDGE = os.path.join(reflib.DATA, "nifti-edge-cases-nibabel")
if not os.path.isdir(EDGE):
    skip("nifti: real edge-case files", "../shared/data absent")
else:
    compare("nifti: anatomical.nii (big-endian int16)", os.path.join(EDGE, "anatomical.nii"))
    # 4-D files: ct-import reads 3-D volumes, so check the first volume of each as a 3-D copy
    # with the file's own header (scaling, NIfTI-2, gzip) and refuse the 4-D original
    for fn in ["functional.nii", "example_nifti2.nii.gz"]:
        src = nib.load(os.path.join(EDGE, fn))
        opener = gzip.open if fn.endswith(".gz") else open
        with opener(os.path.join(EDGE, fn), "rb") as f:      # the raw header, scale factors included
            h = type(src.header).from_fileobj(f)
        raw = np.asanyarray(src.dataobj.get_unscaled())[..., 0]
        h.set_data_shape(raw.shape)
        h["vox_offset"] = 352 if isinstance(h, nib.Nifti2Header) is False else 544   # extensions dropped
        p = os.path.join(T, "first_" + fn)
        write_raw(p, h, raw.astype(src.get_data_dtype()))
        compare("nifti: %s, first volume, own header" % fn, p)
        _, err = ours(os.path.join(EDGE, fn))
        check("nifti: %s (4-D) refused by ct-import" % fn, err is not None and "4-D" in err, err)

# ---- libnifti's trap: x.nii next to x.nii.gz; we must read the file we were given ----
a = np.zeros(shape, "i2")
b = np.ones(shape, "i2")
h = make_hdr(1, a)
h.set_qform(np.eye(4), code=1)
write_raw(os.path.join(T, "twin.nii"), h, a)
write_raw(os.path.join(T, "twin.nii.gz"), h, b)
r, err = ours(os.path.join(T, "twin.nii.gz"))
check("nifti: reads x.nii.gz, not its sibling x.nii", r is not None and r["tensors"]["image"].min() == 1, err)

# ---- truncated files ----
with open(os.path.join(T, "v1_i2_le.nii"), "rb") as f:
    whole = f.read()
with open(os.path.join(T, "trunc.nii"), "wb") as f:
    f.write(whole[:-10])
_, err = ours(os.path.join(T, "trunc.nii"))
check("nifti: truncated .nii", err is not None and "truncated" in err, err)
with open(os.path.join(T, "v1_i2_le.nii.gz"), "rb") as f:
    whole = f.read()
with open(os.path.join(T, "trunc.nii.gz"), "wb") as f:
    f.write(whole[: len(whole) // 2])
_, err = ours(os.path.join(T, "trunc.nii.gz"))
check("nifti: truncated .nii.gz", err is not None and ("truncated" in err or "corrupt" in err), err)

reflib.done()
