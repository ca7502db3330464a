"""mask-pool against the reference: ViSD-Boost's windowing (eval.py center_crop + MONAI
DivisiblePadd, re-implemented here with numpy/torch), torch F.max_pool3d of the one-hot window
masks for the token flags (vit.py), and the boundary / whole-organ rules of model.py
forward_test_win (torch.unique semantics).  Windows, masks, images and flags must be identical
(tolerance: none; these are integer and copy operations).

Cases: random label maps of odd sizes (scattered blobs, salt noise, organs larger than the roi,
volumes smaller than the roi, absent organs, 70 organs for multi-word bitsets) and the real
TotalSegmentator label map in ../shared/data/ct-abdomen-totalseg, merged to the 4 CT-RATE organs,
resampled to 1x1x3 mm, transposed to (D,H,W), cropped and padded the fVLM way (method.md §1.4-1.5).

The helpers (make_case_from_nifti, ref_*) are also used by bench/mask-pool.sh.
"""
import io, os, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np
import reflib
from reflib import check, ok, not_ok, skip, run, records, write_record

ORGANS = ["lung", "heart", "esophagus", "aorta"]
ROI = (112, 256, 352)
CELLS = [(2, 4, 4), (4, 8, 8), (8, 16, 16), (16, 32, 32)]
MERGE = {1: (10, 11, 12, 13, 14), 2: (51, 61), 3: (15,), 4: (52,)}   # F data/resize.py


# ---------------------------------------------------------------- the reference, in Python

def ref_window(mask, label, roi):
    """V eval.py center_crop geometry for organ `label`: (offset, size) per axis, C order."""
    idx = np.argwhere(mask == label)
    lo, hi = idx.min(0), idx.max(0)
    offset, size = [], []
    for a in range(3):
        s = max(roi[a], int(hi[a] - lo[a]))          # max - min, the released code's quirk
        c = int(lo[a] + hi[a]) // 2
        start = max(0, c - s // 2)
        end = min(mask.shape[a], start + s)
        if end - start < s:
            start = max(0, end - s)
        offset.append(start)
        size.append(end - start)
    return offset, size


def ref_divisible_pad(x, k=(16, 32, 32)):
    """MONAI DivisiblePadd(k, method='end', constant 0)."""
    return np.pad(x, [(0, (-n) % m) for n, m in zip(x.shape, k)])


def ref_window_arrays(image, mask, label, roi, multi=False, k=(16, 32, 32)):
    off, size = ref_window(mask, label, roi)
    sl = tuple(slice(o, o + s) for o, s in zip(off, size))
    win_img, win_mask = image[sl], mask[sl]
    if not multi:                                     # eval.py: only organ `label` survives
        win_mask = np.where(win_mask == label, label, 0).astype(np.uint8)
    return off, size, ref_divisible_pad(win_img, k), ref_divisible_pad(win_mask, k)


def ref_flags(win_mask):
    """vit.py: per label, F.max_pool3d of the one-hot float mask at the 4 stage cells, > 0,
    flattened row-major -> {(stage 0-3, label): ascending token indices}."""
    import torch
    import torch.nn.functional as F
    y = torch.from_numpy(win_mask.astype(np.float32))
    labels = torch.unique(y)
    labels = labels[labels != 0]
    if len(labels) == 0:
        return {}
    onehot = torch.stack([torch.eq(y, v) for v in labels]).float().unsqueeze(1)
    out = {}
    for s, cell in enumerate(CELLS):
        flags = F.max_pool3d(onehot, kernel_size=cell, stride=cell).flatten(1) > 0
        for i, v in enumerate(labels.tolist()):
            out[(s, int(v))] = torch.nonzero(flags[i]).flatten().numpy().astype(np.int32)
    return out


def ref_rules(win_mask, centre_label, whole, margin=2, min_fraction=0.9):
    """model.py forward_test_win: labels whose tokens are used, and the boundary labels."""
    import torch
    m = torch.from_numpy(win_mask.astype(np.float32))
    parts = []
    for d in range(3):
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[d] = slice(None, margin)
        hi[d] = slice(-margin, None)
        parts += [m[tuple(lo)][m[tuple(lo)] > 0], m[tuple(hi)][m[tuple(hi)] > 0]]
    b = torch.cat(parts)
    boundary = torch.unique(b[b > 0])
    touching = set(int(v) for v in boundary.tolist())
    boundary = boundary[boundary != centre_label]
    ids, counts = torch.unique(m, return_counts=True)
    kept = []
    for i, c in zip(ids.long().tolist(), counts.tolist()):
        if i == 0 or i in boundary.long().tolist():
            continue
        if c / whole[i - 1] != 1 and c / whole[i - 1] < min_fraction and i != centre_label:
            continue
        kept.append(i)
    return kept, touching


# ---------------------------------------------------------------- building ct.case/1 records

def case_record(f, cid, image, mask, organs=None, organ_voxels=True, extra=None):
    meta = {"spacing_mm": [3.0, 1.0, 1.0],
            "affine": [[0, 0, -1.0, 10.0], [0, -1.0, 0, 20.0], [3.0, 0, 0, -30.0], [0, 0, 0, 1.0]],
            "keep_me": "passed through"}
    if organs is not None:
        meta["organs"] = organs
    n = len(organs) if organs is not None else 4
    if organ_voxels:
        meta["organ_voxels"] = [int((mask == k).sum()) for k in range(1, n + 1)]
    meta.update(extra or {})
    write_record(f, "ct.case/1", cid, {"image": image.astype(np.float32), "mask": mask.astype(np.uint8)}, meta)


def random_case(rng, shape, n_organs, absent=(), salt=0.0005):
    """Blobs of labels 1..n_organs in a volume of `shape`, some organs in several pieces."""
    D, H, W = shape
    z, y, x = np.ogrid[:D, :H, :W]
    mask = np.zeros(shape, np.uint8)
    for k in range(1, n_organs + 1):
        if k in absent:
            continue
        for _ in range(rng.integers(1, 3)):
            c = [rng.uniform(0, n) for n in shape]
            r = [rng.uniform(1.5, max(2.0, n / 3)) for n in shape]
            e = ((z - c[0]) / r[0]) ** 2 + ((y - c[1]) / r[1]) ** 2 + ((x - c[2]) / r[2]) ** 2
            mask[e <= 1] = k
    noise = rng.random(shape) < salt
    labels = np.array([k for k in range(1, n_organs + 1) if k not in absent] or [0], np.uint8)
    mask[noise] = rng.choice(labels, int(noise.sum()))
    image = rng.random(shape, dtype=np.float32)
    return image, mask


def make_case_from_nifti(ct_path, seg_path, spacing_out=(1.0, 1.0, 3.0), target=ROI, resample=True):
    """The fVLM preprocessing of a CT and its TotalSegmentator labels (method.md §1.4-1.5), enough
    to feed mask-pool: merge to the 4 organs, resize (image trilinear, labels legacy nearest) to
    1x1x3 mm with resize.py's size rule, transpose to (D,H,W), HU -> [0,1], crop to the organs'
    box with margins (5,20,20), symmetric zero pad to >= target.  Returns image f32, mask u8."""
    import nibabel as nib
    import torch
    import torch.nn.functional as F
    ct, seg = nib.load(ct_path), nib.load(seg_path)
    hu = np.asarray(ct.dataobj, dtype=np.float32)
    ts = np.asarray(seg.dataobj).astype(np.int32)
    lab = np.zeros(ts.shape, np.float32)
    for k, ids in MERGE.items():
        lab[np.isin(ts, ids)] = k
    if resample:
        A = ct.affine
        sx, sy, sz = abs(A[0, 0]), abs(A[1, 1]), abs(A[2, 2])
        nx, ny, nz = hu.shape
        size = [int(nx * sy / spacing_out[0]), int(ny * sx / spacing_out[1]), int(nz * sz / spacing_out[2])]
        t = torch.from_numpy(hu)[None, None]
        hu = F.interpolate(t, size=size, mode="trilinear", align_corners=False)[0, 0].numpy()
        lab = F.interpolate(torch.from_numpy(lab)[None, None], size=size, mode="nearest")[0, 0].numpy()
    img = np.clip((hu.transpose(2, 1, 0) + 1150.0) / 1500.0, 0, 1).astype(np.float32)
    lab = lab.transpose(2, 1, 0).astype(np.uint8)
    idx = np.argwhere(lab > 0)
    lo = np.maximum(idx.min(0) - (5, 20, 20), 0)
    hi = np.minimum(idx.max(0) + (5, 20, 20), lab.shape)
    sl = tuple(slice(a, b) for a, b in zip(lo, hi))
    img, lab = img[sl], lab[sl]
    pad = [((max(t - s, 0)) // 2, max(t - s, 0) - (max(t - s, 0)) // 2) for t, s in zip(target, lab.shape)]
    return np.ascontiguousarray(np.pad(img, pad)), np.ascontiguousarray(np.pad(lab, pad))


# ---------------------------------------------------------------- comparing

def compare(name, stream, cases, roi=ROI, multi=False, margin=2, min_fraction=0.9, bits=False):
    """cases: [(id, image, mask, organs)] in stream order; checks every window record."""
    recs = records(stream)
    problems = []
    expect_ids = []
    for cid, image, mask, organs in cases:
        names = organs or ORGANS
        whole = [int((mask == k).sum()) for k in range(1, len(names) + 1)]
        for k, organ in enumerate(names, 1):
            if whole[k - 1] == 0:
                continue
            off, size, wimg, wmask = ref_window_arrays(image, mask, k, roi, multi)
            if not (wmask == k).any():
                continue                                    # centre organ cut out: no window
            expect_ids.append((cid, organ, off, size, wimg, wmask, whole, names, k))
    if len(recs) != len(expect_ids):
        not_ok(name, "%d window records, reference has %d" % (len(recs), len(expect_ids)))
        return recs
    for r, (cid, organ, off, size, wimg, wmask, whole, names, k) in zip(recs, expect_ids):
        m, t = r["meta"], r["tensors"]
        where = "%s/%s" % (cid, organ)
        if r["schema"] != "ct.window/1" or r["id"] != cid or m["organ"] != organ or m["organ_index"] != k - 1:
            problems.append("%s: header %s %s %s" % (where, r["schema"], r["id"], m.get("organ")))
            continue
        if m["window_offset"] != off or m["window_size"] != size:
            problems.append("%s: window %s+%s, reference %s+%s" % (where, m["window_offset"], m["window_size"],
                                                                  off, size))
            continue
        if t["image"].shape != wimg.shape or not np.array_equal(t["image"], wimg):
            problems.append("%s: image window differs" % where)
        if t["mask"].shape != wmask.shape or not np.array_equal(t["mask"], wmask):
            problems.append("%s: mask window differs" % where)
        if m["organ_voxels"] != whole or m["organs"] != names:
            problems.append("%s: organ_voxels/organs %s %s" % (where, m["organ_voxels"], m["organs"]))
        wv = [int((wmask == j).sum()) for j in range(1, len(names) + 1)]
        if m["window_voxels"] != wv:
            problems.append("%s: window_voxels %s, numpy %s" % (where, m["window_voxels"], wv))
        if m["window_fraction"] != [v / w if w else 0.0 for v, w in zip(wv, whole)]:
            problems.append("%s: window_fraction" % where)
        flags = ref_flags(wmask)
        kept_ref, touching = ref_rules(wmask, k, whole, margin, min_fraction) if multi else ([k], None)
        if touching is None:
            _, touching = ref_rules(wmask, k, whole, margin, min_fraction)
        if m["boundary"] != [j in touching for j in range(1, len(names) + 1)]:
            problems.append("%s: boundary %s, reference %s" % (where, m["boundary"], sorted(touching)))
        kept_names = [names[j - 1] for j in sorted(kept_ref)]
        if m["window_organs"] != kept_names:
            problems.append("%s: window_organs %s, reference %s" % (where, m["window_organs"], kept_names))
        want = {"image", "mask"} | {"tok%d/%s" % (s + 1, n) for s in range(4) for n in kept_names}
        if bits:
            want |= {"bits%d/%s" % (s + 1, n) for s in range(4) for n in kept_names}
        if set(t) != want:
            problems.append("%s: tensors %s" % (where, sorted(set(t) ^ want)))
            continue
        grids = [[n // c for n, c in zip(wmask.shape, cell)] for cell in CELLS]
        if m["token_grids"] != grids:
            problems.append("%s: token_grids %s" % (where, m["token_grids"]))
        for j in kept_ref:
            for s in range(4):
                mine, ref = t["tok%d/%s" % (s + 1, names[j - 1])], flags[(s, j)]
                if mine.dtype != np.int32 or not np.array_equal(mine, ref):
                    problems.append("%s: tok%d/%s: %d tokens, torch %d" % (where, s + 1, names[j - 1],
                                                                           len(mine), len(ref)))
                if bits:
                    n_tok = int(np.prod(grids[s]))
                    unpacked = np.unpackbits(t["bits%d/%s" % (s + 1, names[j - 1])], bitorder="little")
                    dense = np.zeros(n_tok, bool)
                    dense[ref] = True
                    if len(unpacked) != (n_tok + 7) // 8 * 8 or not np.array_equal(unpacked[:n_tok], dense) \
                            or unpacked[n_tok:].any():
                        problems.append("%s: bits%d/%s differ" % (where, s + 1, names[j - 1]))
        if multi:
            ex = {e["organ"]: e["reason"] for e in m["excluded"]}
            for j, n in enumerate(names, 1):
                if j in kept_ref:
                    if n in ex:
                        problems.append("%s: %s kept and excluded" % (where, n))
                    continue
                if whole[j - 1] == 0:
                    want_reason = "no voxels"
                elif wv[j - 1] == 0:
                    want_reason = "not in window"
                elif j in touching:
                    want_reason = "boundary"
                else:
                    want_reason = "incomplete"
                if ex.get(n) != want_reason:
                    problems.append("%s: %s excluded as %r, expected %r" % (where, n, ex.get(n), want_reason))
        # the window affine maps window voxel 0 to case voxel `off`
        A = np.array(m["case_affine"])
        if not np.allclose(np.array(m["affine"]), np.c_[A[:, :3], A @ np.r_[off, 1]], rtol=0, atol=1e-9):
            problems.append("%s: window affine" % where)
        if m.get("keep_me") != "passed through":
            problems.append("%s: meta not passed through" % where)
    check(name, not problems, "; ".join(problems[:6]) + (" (+%d more)" % (len(problems) - 6)
                                                         if len(problems) > 6 else ""))
    return recs


def run_maskpool(args, stream_bytes):
    return run(["mask-pool"] + args, input=stream_bytes)[0]


# ---------------------------------------------------------------- the tests

def test_random():
    rng = np.random.default_rng(20250407)
    shapes = [(37, 45, 61), (19, 33, 35), (53, 71, 29), (16, 32, 32), (1, 7, 90), (41, 100, 77)]
    rois = [(16, 32, 32), (24, 40, 36), (13, 50, 33), (112, 256, 352), (5, 5, 5)]
    cases = []
    buf = io.BytesIO()
    for i in range(18):
        shape = shapes[i % len(shapes)]
        n = int(rng.integers(1, 7))
        absent = {int(rng.integers(1, n + 1))} if i % 3 == 0 and n > 1 else set()
        image, mask = random_case(rng, shape, n, absent, salt=0.002 if i % 4 == 0 else 0.0003)
        organs = None if n == 4 and i % 2 else ["o%d" % k for k in range(1, n + 1)]
        if not (mask > 0).any():
            mask.flat[0] = 1
        cases.append(("rand%02d" % i, image, mask, organs))
    for roi in rois:
        buf = io.BytesIO()
        for cid, image, mask, organs in cases:
            case_record(buf, cid, image, mask, organs, organ_voxels=(cid[-1] != "3"))
        arg = ["--roi", ",".join(map(str, roi))]
        compare("random cases, roi %s: windows and flags = reference" % (roi,), run_maskpool(arg, buf.getvalue()),
                cases, roi)
        compare("random cases, roi %s, --multi: rules = reference" % (roi,),
                run_maskpool(arg + ["--multi"], buf.getvalue()), cases, roi, multi=True)
    # margin and threshold other than the defaults, and the bit-packed option
    buf = io.BytesIO()
    for cid, image, mask, organs in cases:
        case_record(buf, cid, image, mask, organs)
    compare("random cases, --multi --margin 1 --min-fraction 0.5 --bits",
            run_maskpool(["--roi", "16,32,32", "--multi", "--margin", "1", "--min-fraction", "0.5", "--bits"],
                         buf.getvalue()), cases, (16, 32, 32), multi=True, margin=1, min_fraction=0.5, bits=True)


def test_many_organs():
    """70 labels: the per-cell organ sets span two 64-bit words."""
    rng = np.random.default_rng(7)
    shape = (33, 70, 65)
    mask = rng.integers(0, 71, size=shape).astype(np.uint8)
    mask[rng.random(shape) < 0.97] = 0
    mask[10:20, 5:40, 30:60] = 70
    mask[0, 0, 0] = 65
    image = rng.random(shape, dtype=np.float32)
    organs = ["organ%d" % k for k in range(1, 71)]
    buf = io.BytesIO()
    case_record(buf, "many", image, mask, organs)
    compare("70 organs (two-word bitsets), --multi = reference",
            run_maskpool(["--roi", "16,32,32", "--multi", "--margin", "3"], buf.getvalue()),
            [("many", image, mask, organs)], (16, 32, 32), multi=True, margin=3)
    compare("70 organs, single-organ windows = reference",
            run_maskpool(["--roi", "20,40,40", "--bits"], buf.getvalue()), [("many", image, mask, organs)],
            (20, 40, 40), bits=True)


def test_quirk_and_cut():
    """max - min: an organ longer than the roi loses its last plane; an organ whose every voxel
    lies on a cut plane gets no window (the reference yields no result) and is recorded."""
    shape = (60, 64, 40)
    mask = np.zeros(shape, np.uint8)
    mask[3:55, 10, 10] = 1                      # 52 planes along D, roi 16: window 51 planes
    mask[0, 50, 5] = 2                          # heart: two voxels, each cut on one axis
    mask[50, 0, 5] = 2
    image = (np.arange(np.prod(shape)).reshape(shape) / np.prod(shape)).astype(np.float32)
    buf = io.BytesIO()
    case_record(buf, "quirk", image, mask, ["lung", "heart"])
    out = run_maskpool(["--roi", "16,32,32"], buf.getvalue())
    recs = compare("max-min quirk and a cut-out organ = reference", out, [("quirk", image, mask, ["lung", "heart"])],
                   (16, 32, 32))
    r = recs[0] if recs else None
    check("max-min quirk: lung window keeps 51 of 52 planes",
          r is not None and len(recs) == 1 and r["meta"]["window_size"][0] == 51
          and r["meta"]["window_voxels"][0] == 51 and r["meta"]["window_fraction"][0] == 51 / 52)
    check("cut-out organ listed in 'skipped' as 'not in window'",
          r is not None and r["meta"]["skipped"] == [{"organ": "heart", "reason": "not in window"}],
          str(r and r["meta"]["skipped"]))


def test_slab():
    """A window of whole planes needing no padding is written straight from the case image:
    check it at a nonzero offset, next to a padded window of the same case."""
    rng = np.random.default_rng(17)
    shape = (48, 32, 32)
    image = rng.random(shape, dtype=np.float32)
    mask = np.zeros(shape, np.uint8)
    mask[20:27, 3:30, 5:9] = 1                  # extent 6 < 16: window [23 - 8, 23 + 8) = [15, 31)
    mask[40:47, 1:3, 1:3] = 2                   # start 43 - 8 = 35 runs past the end: back to 32
    mask[2:40, 10:12, 10:12] = 3                # extent 37 planes: window [2, 39), padded to 48
    buf = io.BytesIO()
    organs = ["a", "b", "c"]
    case_record(buf, "slab", image, mask, organs)
    recs = compare("whole-plane windows (no copy) at an offset = reference",
                   run_maskpool(["--roi", "16,32,32"], buf.getvalue()), [("slab", image, mask, organs)],
                   (16, 32, 32))
    check("slab windows: offsets 15 and 32, then a padded one",
          [r["meta"]["window_offset"][0] for r in recs] == [15, 32, 2]
          and recs[2]["tensors"]["image"].shape == (48, 32, 32),
          str([(r["meta"]["window_offset"], r["meta"]["window_size"]) for r in recs]))


def test_zero_voxel_organs():
    rng = np.random.default_rng(3)
    image, mask = random_case(rng, (20, 40, 40), 4, absent={2, 3})
    buf = io.BytesIO()
    case_record(buf, "noheart", image, mask)
    recs = records(run_maskpool(["--roi", "16,32,32"], buf.getvalue()))
    want = [{"organ": "heart", "reason": "no voxels"}, {"organ": "esophagus", "reason": "no voxels"}]
    check("zero-voxel organs: no window, listed in 'skipped' of the case's windows",
          [r["meta"]["organ"] for r in recs] == ["lung", "aorta"] and all(r["meta"]["skipped"] == want for r in recs),
          str([(r["meta"]["organ"], r["meta"]["skipped"]) for r in recs]))
    recs = records(run_maskpool(["--roi", "16,32,32", "--organs", "aorta,heart"], buf.getvalue()))
    check("--organs: only the selected centre organs, skips of selected organs only",
          [r["meta"]["organ"] for r in recs] == ["aorta"]
          and recs[0]["meta"]["skipped"] == [{"organ": "heart", "reason": "no voxels"}],
          str([(r["meta"]["organ"], r["meta"]["skipped"]) for r in recs]))
    out, err, rc = run(["mask-pool", "--organs", "heart"], input=buf.getvalue(), check_rc=False)
    check("a case left with no window is an error by default",
          rc == 1 and out == b"" and "no window to write: heart: no voxels" in err, "rc %d err %r" % (rc, err))
    out, err, rc = run(["mask-pool", "--organs", "heart", "--allow-empty"], input=buf.getvalue(), check_rc=False)
    check("--allow-empty: that case writes nothing and warns",
          rc == 0 and out == b"" and "no window written: heart: no voxels" in err, "rc %d err %r" % (rc, err))


def test_real_data():
    sub = "ct-abdomen-totalseg"
    name = "real TotalSegmentator label map (merged, 1x1x3 mm, padded)"
    if not reflib.have_data(sub):
        skip(name, "../shared/data absent")
        return
    d = os.path.join(reflib.DATA, sub)
    image, mask = make_case_from_nifti(os.path.join(d, "example_ct_sm.nii.gz"), os.path.join(d, "example_seg.nii.gz"))
    check("real case: shape >= 112x256x352 and lung + aorta present, heart + esophagus absent",
          all(s >= r for s, r in zip(mask.shape, ROI)) and (mask == 1).any() and (mask == 4).any()
          and not (mask == 2).any() and not (mask == 3).any(), "shape %s labels %s" % (mask.shape, np.unique(mask)))
    buf = io.BytesIO()
    case_record(buf, "example_seg", image, mask)
    cases = [("example_seg", image, mask, None)]
    recs = compare(name + ": windows and flags = reference", run_maskpool([], buf.getvalue()), cases)
    check("real case: heart and esophagus skipped (no voxels)",
          len(recs) == 2 and recs[0]["meta"]["skipped"] == [{"organ": "heart", "reason": "no voxels"},
                                                            {"organ": "esophagus", "reason": "no voxels"}])
    compare(name + ", --multi: rules = reference", run_maskpool(["--multi", "--bits"], buf.getvalue()), cases,
            multi=True, bits=True)
    compare(name + ", fVLM roi 112,288,352", run_maskpool(["--roi", "112,288,352"], buf.getvalue()), cases,
            roi=(112, 288, 352))


def test_zstd_and_python_reader_doc():
    """The output read with the documented reader, zstd-compressed, equals the raw output."""
    rng = np.random.default_rng(11)
    image, mask = random_case(rng, (30, 50, 44), 4)
    buf = io.BytesIO()
    case_record(buf, "z", image, mask)
    raw = records(run_maskpool(["--roi", "16,32,32"], buf.getvalue()))
    z = records(run_maskpool(["--roi", "16,32,32", "-z", "zstd"], buf.getvalue()))
    check("-z zstd: same tensors as raw",
          len(raw) == len(z) and all(set(a["tensors"]) == set(b["tensors"])
                                     and all(np.array_equal(a["tensors"][k], b["tensors"][k]) for k in a["tensors"])
                                     for a, b in zip(raw, z)))


def test_doc_reader():
    """The Python block of docs/mask-pool.md: dense flags equal torch's max_pool3d flags, and a
    flagged token's voxel box holds a voxel of the organ."""
    import re
    text = open(os.path.join(reflib.ROOT, "docs", "mask-pool.md")).read()
    m = re.search(r"<!-- python-window-reader[^>]*-->\s*```python\n(.*?)```", text, re.S)
    if not check("docs/mask-pool.md has the python-window-reader block", m is not None):
        return
    ns = {}
    exec(m.group(1), ns)
    rng = np.random.default_rng(29)
    image, mask = random_case(rng, (40, 70, 50), 4)
    buf = io.BytesIO()
    case_record(buf, "doc", image, mask)
    recs = records(run_maskpool(["--roi", "16,32,32"], buf.getvalue()))
    problems = []
    for r in recs:
        organ, k = r["meta"]["organ"], r["meta"]["organ_index"] + 1
        import torch
        import torch.nn.functional as F
        y = torch.from_numpy((r["tensors"]["mask"] == k).astype(np.float32))[None, None]
        for s, cell in enumerate(CELLS, 1):
            ref = (F.max_pool3d(y, kernel_size=cell, stride=cell)[0, 0] > 0).numpy()
            if not np.array_equal(ns["organ_tokens"](r, organ, s), ref):
                problems.append("%s stage %d dense flags" % (organ, s))
            t = int(r["tensors"]["tok%d/%s" % (s, organ)][-1])
            lo, hi = ns["token_voxels"](r, s, t)
            if not (mask[tuple(slice(a, b) for a, b in zip(lo, hi))] == k).any():
                problems.append("%s stage %d token %d box %s-%s has no voxel" % (organ, s, t, lo, hi))
    check("docs/mask-pool.md Python block: dense flags and token -> voxel boxes", recs and not problems,
          "; ".join(problems[:5]))


def test_schema():
    """Every key mask-pool writes is in schemas/ct.window.v1.yaml, every required key is written."""
    import re
    import yaml
    sch = yaml.safe_load(open(os.path.join(reflib.ROOT, "schemas", "ct.window.v1.yaml")))
    rng = np.random.default_rng(23)
    image, mask = random_case(rng, (24, 40, 40), 4)
    buf = io.BytesIO()
    case_record(buf, "s", image, mask)
    passthrough = {"spacing_mm", "keep_me"}
    for mode, args in (("single", ["--bits"]), ("multi", ["--multi"])):
        recs = records(run_maskpool(["--roi", "16,32,32"] + args, buf.getvalue()))
        problems = []
        for r in recs:
            m = r["meta"]
            unknown = set(m) - set(sch["meta"]) - passthrough
            missing = {k for k, v in sch["meta"].items() if v.get("required") is True and k not in m}
            if mode == "multi":
                missing |= {k for k, v in sch["meta"].items()
                            if str(v.get("required")).startswith("in multi") and k not in m}
            pats = [re.compile("^" + re.escape(k).replace(r"\{s\}", "[1-4]").replace(r"\{X\}", "[^/]+") + "$")
                    for k in sch["tensors"]]
            bad_t = [n for n in r["tensors"] if not any(p.match(n) for p in pats)]
            types = {"tok": "int32", "bits": "uint8", "image": "float32", "mask": "uint8"}
            bad_d = [n for n, a in r["tensors"].items() if a.dtype != types[n.split("/")[0].rstrip("1234")]]
            if unknown or missing or bad_t or bad_d or r["schema"] != sch["schema"]:
                problems.append("%s: unknown %s missing %s tensors %s dtypes %s" % (m["organ"], unknown, missing,
                                                                                   bad_t, bad_d))
        check("schema: %s-organ records match schemas/ct.window.v1.yaml" % mode, recs and not problems,
              "; ".join(problems))


if __name__ == "__main__":
    test_random()
    test_many_organs()
    test_quirk_and_cut()
    test_slab()
    test_zero_voxel_organs()
    test_real_data()
    test_zstd_and_python_reader_doc()
    test_schema()
    test_doc_reader()
    reflib.done()
