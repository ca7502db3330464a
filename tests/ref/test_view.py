"""ct-view: the PNG pixels against a numpy rendering of the same slice.

The PNG files are decoded here with zlib + struct (no imaging library: the decoder below reads
the chunks, checks every CRC and undoes the five PNG row filters), so libpng's output is checked
by code that shares nothing with it.  The grey values are exact by construction: both sides
compute g = (v - lo) / (hi - lo) in IEEE double and floor(g * 255 + 0.5) (docs/ct-view.md), so
they must agree bit for bit.  The geometry (which voxel each pixel shows) follows the stated
nearest-neighbour rule and is also checked against its meaning: a sphere stays round through
3 mm slices, and a marker at the patient's right-anterior-superior lands where the radiological
convention puts it, for several affines (nibabel's aff2axcodes names them independently).
Overlays are checked at the positions numpy computes (outline pixels, flag cells and borders,
anomaly cells placed through np.linalg.inv of the affines), with the documented blend rule.
"""
import os, struct, subprocess, tempfile, zlib
import numpy as np
import reflib
from reflib import check, ok, not_ok, skip, write_record

T = tempfile.mkdtemp(prefix="test_view.")


# ---- a PNG decoder (8-bit RGB, non-interlaced: what ct-view writes) ----
def png_read(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, hdr = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        crc, = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        assert zlib.crc32(kind + body) & 0xffffffff == crc, "bad CRC in %s" % kind
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        pos += 12 + n
    w, h, depth, ctype, _, _, interlace = hdr
    assert depth == 8 and ctype == 2 and interlace == 0, "unexpected PNG format %r" % (hdr,)
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + 3 * w)
    out = np.zeros((h, w, 3), np.int64)
    prev = np.zeros((w, 3), np.int64)
    for y in range(h):
        f, line = raw[y, 0], raw[y, 1:].astype(np.int64).reshape(w, 3)
        if f == 0:
            cur = line
        elif f == 1:                                        # Sub: running sum along the row
            cur = np.cumsum(line, axis=0) & 255
        elif f == 2:                                        # Up
            cur = (line + prev) & 255
        else:                                               # Average, Paeth: sequential in x
            cur = np.zeros((w, 3), np.int64)
            a = np.zeros(3, np.int64)
            c = np.zeros(3, np.int64)
            for x in range(w):
                b = prev[x]
                if f == 3:
                    pred = (a + b) // 2
                else:
                    pp = a + b - c
                    pa, pb, pc = np.abs(pp - a), np.abs(pp - b), np.abs(pp - c)
                    pred = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
                cur[x] = (line[x] + pred) & 255
                a, c = cur[x], b
        out[y] = cur
        prev = cur
    return out.reshape(h, w, 3)


# ---- the numpy rendering (docs/ct-view.md: geometry, grey, blend) ----
AXES = {"axial": (0, 1, 2), "coronal": (1, 0, 2), "sagittal": (2, 0, 1)}   # fixed, rows, cols


def ref_geometry(shape, plane, affine=None, spacing=None, scale=1.0, orient=True):
    fixed, ar, ac = AXES[plane]
    sp = np.ones(3) if spacing is None else np.asarray(spacing, float)
    if spacing is None and affine is not None:
        sp = np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(0))
    p = min(sp[ar], sp[ac]) / scale
    maps = []
    for ax in (ar, ac):
        n = shape[ax]
        out = max(1, int(np.floor(n * sp[ax] / p + 0.5)))
        o = np.arange(out)
        i = ((2 * o + 1) * n) // (2 * out)
        if affine is not None and orient:
            col = np.asarray(affine)[:3, ax]
            if col[np.argmax(np.abs(col))] > 0:
                i = n - 1 - i
        maps.append(i)
    return fixed, ar, ac, maps[0], maps[1]


def ref_voxels(shape, plane, index, **kw):
    """Per output pixel, the (a0, a1, a2) voxel index it shows: [H, W, 3]."""
    fixed, ar, ac, ir, ic = ref_geometry(shape, plane, **kw)
    H, W = len(ir), len(ic)
    v = np.zeros((H, W, 3), np.int64)
    v[..., fixed] = index
    v[..., ar] = ir[:, None]
    v[..., ac] = ic[None, :]
    return v


def ref_slice(vol, plane, index, **kw):
    v = ref_voxels(vol.shape, plane, index, **kw)
    return vol[v[..., 0], v[..., 1], v[..., 2]]


def ref_grey(vals, lo, hi):
    v = vals.astype(np.float64)
    with np.errstate(invalid="ignore"):
        g = (v - lo) / (hi - lo)
        pix = np.floor(g * 255 + 0.5)
        pix[~(g > 0)] = 0
        pix[g >= 1] = 255
    pix[np.isnan(v)] = 0
    return pix.astype(np.int32)


def blend(p, c, a):
    return (p * (256 - a) + np.asarray(c) * a + 128) >> 8


def grey3(g):
    return np.repeat(g[..., None], 3, axis=2)


def view(args, name="out.png"):
    path = os.path.join(T, name)
    if os.path.exists(path):
        os.remove(path)
    _, err, rc = reflib.run(["ct-view"] + args + ["-o", path], check_rc=False)
    if rc != 0:
        raise RuntimeError("ct-view %s: %s" % (" ".join(args), err.strip()))
    return png_read(path)


def stream(path, recs):
    with open(path, "wb") as f:
        for schema, id, tensors, meta in recs:
            write_record(f, schema, id, tensors, meta)
    return path


# ---- test volumes ----
rng = np.random.default_rng(7)
D, H, W = 16, 24, 20
# LPS-stored axial CT (dcm2niix): i -> left, j -> posterior, k -> superior; C order reverses the columns
AFF = np.array([[0, 0, -1.0, 30], [0, -1.0, 0, 20], [3.0, 0, 0, -10], [0, 0, 0, 1]])
SP = [3.0, 1.0, 1.0]
img = rng.random((D, H, W), dtype=np.float32)
img[0, 0, 0] = np.nan
mask = np.zeros((D, H, W), np.uint8)
zz, yy, xx = np.meshgrid(np.arange(D), np.arange(H), np.arange(W), indexing="ij")
mask[((zz - 8) * 3) ** 2 + (yy - 10) ** 2 + (xx - 6) ** 2 < 36] = 1            # a ball of radius 6 mm
mask[(np.abs(zz - 7) < 3) & (np.abs(yy - 14) < 4) & (np.abs(xx - 13) < 3)] = 2
case_meta = {"organs": ["lung", "heart"], "affine": AFF.tolist(), "spacing_mm": SP,
             "hu_window": [-1150, 350]}
case = stream(os.path.join(T, "case.ctv"), [("ct.case/1", "c1", {"image": img, "mask": mask}, case_meta)])

# 1. grey values, every plane, with aspect and orientation
for plane, idx in (("axial", 5), ("coronal", 11), ("sagittal", 7)):
    got = view(["--bare", "-p", plane, "-n", str(idx), case])
    exp = grey3(ref_grey(ref_slice(img, plane, idx, affine=AFF, spacing=SP), 0.0, 1.0))
    check("grey: %s slice, [0,1] window (meta hu_window), exact" % plane,
          got.shape == exp.shape and np.array_equal(got, exp),
          "shape %s vs %s, %d pixels differ" % (got.shape, exp.shape, (got != exp).any(-1).sum() if got.shape == exp.shape else -1))
got = view(["--bare", "-p", "coronal", "-n", "3", "-s", "2.5", "-w", "-600,1500", case])
lo, hi = (-600 - 750 + 1150) / 1500.0, (-600 + 750 + 1150) / 1500.0
exp = grey3(ref_grey(ref_slice(img, "coronal", 3, affine=AFF, spacing=SP, scale=2.5), lo, hi))
check("grey: -w L,W on a [0,1] image converts through meta hu_window; --scale 2.5", got.shape == exp.shape and np.array_equal(got, exp),
      "shape %s vs %s" % (got.shape, exp.shape))
hu = (rng.normal(0, 300, (D, H, W))).astype(np.int16)
hu_rec = stream(os.path.join(T, "hu.ctv"), [("ct.image/1", "h1", {"image": hu}, {"affine": AFF.tolist(), "spacing_mm": SP})])
got = view(["--bare", "-p", "sagittal", "-n", "4", "-w", "40,400", hu_rec])
exp = grey3(ref_grey(ref_slice(hu, "sagittal", 4, affine=AFF, spacing=SP), 40 - 200.0, 40 + 200.0))
check("grey: HU window on an int16 HU volume", got.shape == exp.shape and np.array_equal(got, exp))
got = view(["--bare", "-p", "sagittal", "-n", "4", "-w", "lung", hu_rec])
exp = grey3(ref_grey(ref_slice(hu, "sagittal", 4, affine=AFF, spacing=SP), -600 - 750.0, -600 + 750.0))
check("grey: -w lung is level -600, width 1500", np.array_equal(got, exp))
got = view(["--bare", "-n", "2", hu_rec])
exp = grey3(ref_grey(ref_slice(hu, "axial", 2, affine=AFF, spacing=SP), float(hu.min()), float(hu.max())))
check("grey: default window of a volume without hu_window is its min..max", np.array_equal(got, exp))
got = view(["--bare", "-p", "coronal", "-n", "3", "--no-aspect", "--no-orient", "-R", "0.2,0.7", case])
exp = grey3(ref_grey(img[:, 3, :], 0.2, 0.7))
check("grey: --no-aspect --no-orient is the plain index-order slice", got.shape == exp.shape and np.array_equal(got, exp))

# 2. orientation and aspect, by their meaning
import nibabel.orientations as nio
for name, A in (("LPS-stored", AFF),
                ("RAS-stored", np.array([[0, 0, 1.0, -30], [0, 1.0, 0, -20], [3.0, 0, 0, -10], [0, 0, 0, 1]])),
                ("inferior-first, flipped rows", np.array([[0, 0, -1.0, 30], [0, 1.0, 0, -20], [-3.0, 0, 0, 40], [0, 0, 0, 1]]))):
    # marker voxel nearest to the world point at the patient's right, anterior, superior corner
    world = np.array([[0, 0, 0, 1], [D - 1, H - 1, W - 1, 1]], float) @ A.T
    target = np.array([world[:, 0].max(), world[:, 1].max(), world[:, 2].max(), 1])     # R, A, S extremes
    vox = np.rint(np.linalg.solve(A, target)[:3]).astype(int)
    vol = np.zeros((D, H, W), np.float32)
    vol[vox[0], vox[1], vox[2]] = 1
    f = stream(os.path.join(T, "orient.ctv"), [("ct.image/1", "o", {"image": vol}, {"affine": A.tolist()})])
    codes = "".join(nio.aff2axcodes(A))
    places = []
    for plane in ("axial", "coronal", "sagittal"):
        fixed = AXES[plane][0]
        g = view(["--bare", "-p", plane, "-n", str(vox[fixed]), "-R", "0,1", "--no-aspect", f])[..., 0]
        r, c = np.argwhere(g == 255)[0]
        places.append((r < g.shape[0] / 2, c < g.shape[1] / 2))
    # axial: R on the left, A at the top; coronal: R left, S top; sagittal: A left, S top
    check("orientation (%s, axes %s): R/A/S corner shown top-left in every plane" % (name, codes),
          places == [(True, True)] * 3, repr(places))
ball = np.zeros((D, H, W), np.float32)
ball[((zz - 8) * 3.0) ** 2 + (yy - 12) ** 2 + (xx - 10) ** 2 <= 81] = 1        # radius 9 mm, 3 mm slices
f = stream(os.path.join(T, "ball.ctv"), [("ct.image/1", "b", {"image": ball}, {"affine": AFF.tolist(), "spacing_mm": SP})])
g = view(["--bare", "-p", "coronal", "-n", "12", "-R", "0,1", f])[..., 0]
rows, cols = np.nonzero(g.any(1))[0], np.nonzero(g.any(0))[0]
check("aspect: a sphere through 3 mm slices is round in coronal (height %d px, width %d px)" % (len(rows), len(cols)),
      abs(len(rows) - len(cols)) <= 3, "%d vs %d" % (len(rows), len(cols)))

# 3. outlines
got = view(["--bare", "-p", "axial", "-n", "8", "-m", case])
g = ref_grey(ref_slice(img, "axial", 8, affine=AFF, spacing=SP), 0.0, 1.0)
lab = ref_slice(mask, "axial", 8, affine=AFF, spacing=SP).astype(int)
pad = np.pad(lab, 1, constant_values=-1)
edge = (lab > 0) & ((pad[:-2, 1:-1] != lab) | (pad[2:, 1:-1] != lab) | (pad[1:-1, :-2] != lab) | (pad[1:-1, 2:] != lab))
check("outline: pixels off the outline keep their grey value", np.array_equal(got[~edge], grey3(g)[~edge]))
cols = {k: {tuple(p) for p in got[edge & (lab == k)]} for k in (1, 2)}
check("outline: each organ's outline is one colour, the organs differ, and it is not grey",
      all(len(v) == 1 for v in cols.values()) and cols[1] != cols[2] and
      all(len(set(next(iter(v)))) > 1 for v in cols.values()) and edge.sum() > 10, repr(cols))
got = view(["--bare", "-p", "coronal", "-O", "heart", "--centre", "com", "-m", case])
com = int(np.floor(np.argwhere(mask == 2)[:, 1].mean() + 0.5))
exp = grey3(ref_grey(ref_slice(img, "coronal", com, affine=AFF, spacing=SP), 0.0, 1.0))
lab = ref_slice(mask, "coronal", com, affine=AFF, spacing=SP)
check("organ centre: -O heart slices through its centre of mass (coronal %d)" % com,
      np.array_equal(got[lab == 0], exp[lab == 0]) and (lab == 2).any())
bb = np.argwhere(mask == 1)[:, 2]
got = view(["--bare", "-p", "sagittal", "-O", "lung", "--centre", "bbox", case])
exp = grey3(ref_grey(ref_slice(img, "sagittal", (bb.min() + bb.max()) // 2, affine=AFF, spacing=SP), 0.0, 1.0))
check("organ centre: --centre bbox", np.array_equal(got, exp))
cnt = np.bincount(np.argwhere(mask == 2)[:, 0], minlength=D)
got = view(["--bare", "-p", "axial", "-O", "heart", "--centre", "area", case])
exp = grey3(ref_grey(ref_slice(img, "axial", int(np.argmax(cnt)), affine=AFF, spacing=SP), 0.0, 1.0))
check("organ centre: --centre area takes the slice with most of the organ", np.array_equal(got, exp))

# 4. token flags of a window (mask-pool's layout: stage s cells (2,4,4) * 2^(s-1))
wd, wh, ww = 64, 128, 128
wimg = rng.random((wd, wh, ww), dtype=np.float32)
wmask = np.zeros((wd, wh, ww), np.uint8)
wmask[10:30, 40:80, 50:90] = 2
grids = [[wd // (2 << s), wh // (4 << s), ww // (4 << s)] for s in range(4)]
toks = {}
for s in range(4):
    c = (2 << s, 4 << s, 4 << s)
    pooled = wmask.reshape(grids[s][0], c[0], grids[s][1], c[1], grids[s][2], c[2]).max(axis=(1, 3, 5))
    toks[s + 1] = np.flatnonzero(pooled.ravel() == 2).astype(np.int32)
WAFF = AFF.copy()
WAFF[:3, 3] = AFF[:3, :3] @ np.array([4, 8, 2]) + AFF[:3, 3]
wmeta = {"organ": "heart", "organ_index": 1, "organs": ["lung", "heart"], "window_organs": ["heart"],
         "window_offset": [4, 8, 2], "token_grids": grids, "affine": WAFF.tolist(), "case_affine": AFF.tolist(),
         "spacing_mm": SP, "hu_window": [-1150, 350]}
win = stream(os.path.join(T, "win.ctv"), [("ct.window/1", "c1", dict({"image": wimg, "mask": wmask},
                                           **{"tok%d/heart" % s: toks[s] for s in toks}), wmeta)])
FLAG = (255, 0, 255)                                   # magenta (docs/ct-view.md)
for plane, idx, stage in (("axial", 13, 3), ("coronal", 50, 2), ("sagittal", 60, 1), ("axial", 20, 4)):
    got = view(["--bare", "-p", plane, "-n", str(idx), "-f", str(stage), win])
    kw = dict(affine=WAFF, spacing=SP)
    g = grey3(ref_grey(ref_slice(wimg, plane, idx, **kw), 0.0, 1.0))
    v = ref_voxels(wimg.shape, plane, idx, **kw)
    cell = np.array([2, 4, 4]) << (stage - 1)
    cv = v // cell
    fixed, ar, ac = AXES[plane]
    border = np.zeros(g.shape[:2], bool)
    border[1:, :] |= (cv[1:, :, ar] != cv[:-1, :, ar])
    border[:, 1:] |= (cv[:, 1:, ac] != cv[:, :-1, ac])
    gr = grids[stage - 1]
    flagged = np.isin((cv[..., 0] * gr[1] + cv[..., 1]) * gr[2] + cv[..., 2], toks[stage])
    exp = g.copy()
    exp[border] = blend(g[border], (255, 255, 255), 96)
    fill = flagged & ~border
    exp[fill] = blend(g[fill], FLAG, 112)
    check("flags: stage %d on a %s slice: borders and %d flagged pixels exact" % (stage, plane, fill.sum()),
          fill.sum() > 0 and np.array_equal(got, exp), "%d pixels differ" % (got != exp).any(-1).sum())
# the same flags from a ct.tokens/1 record (no image: a black canvas)
tk = stream(os.path.join(T, "tokens.ctv"), [("ct.tokens/1", "c1", {"tok4/heart": toks[4], "emb4/heart": np.zeros((len(toks[4]), 256), np.float32)},
                                             dict(wmeta, stage_grids=grids))])
got = view(["--bare", "-p", "axial", "-n", "13", "-f", "4", tk])
ref = view(["--bare", "-p", "axial", "-n", "13", "-f", "4", "-R", "5,6", win])      # grey 0 everywhere
check("flags: a ct.tokens/1 record draws the same cells on a black canvas", np.array_equal(got, ref))

# 5. the anomaly map of a ct.organ/1 record, placed through the affines
g4 = grids[3]
anom = np.zeros(g4, np.float32)
anom.ravel()[toks[4]] = np.linspace(0.5, 3.0, len(toks[4]), dtype=np.float32)
anom[0, 1, 1] = 4.0                                # the largest value: the cell of window voxel (15, 50, 60)
S4 = np.diag([16.0, 32, 32, 1])
S4[:3, 3] = np.array([16, 32, 32]) / 2 - 0.5                       # cell centre (c - 1) / 2
OAFF = WAFF @ S4
org = stream(os.path.join(T, "organ.ctv"), [("ct.organ/1", "c1", {"feature": np.zeros(256, np.float32),
              "err4": anom.ravel()[toks[4]], "tok4": toks[4], "code4": np.zeros(len(toks[4]), np.int32), "anomaly": anom},
              {"organ": "heart", "window_organ": "heart", "organs": ["lung", "heart"], "window_offset": [4, 8, 2],
               "affine": OAFF.tolist(), "weights_untrained": True, "empty": False})])
M = np.linalg.inv(OAFF)
bigimg = rng.random((72, 140, 136), dtype=np.float32)          # the case the window was cut from
big = stream(os.path.join(T, "big.ctv"), [("ct.case/1", "c1", {"image": bigimg}, dict(case_meta, organs=[]))])
for base, base_aff, data, name in ((win, WAFF, wimg, "window"), (big, AFF, bigimg, "case")):
    shp = data.shape
    for plane in ("axial", "coronal"):
        idx = (15 if plane == "axial" else 50) + (0 if name == "window" else 4 if plane == "axial" else 8)
        got = view(["--bare", "-p", plane, "-n", str(idx), "-a", org, base])
        kw = dict(affine=base_aff, spacing=SP)
        g = grey3(ref_grey(ref_slice(data, plane, idx, **kw), 0.0, 1.0))
        v = ref_voxels(shp, plane, idx, **kw)
        homog = np.concatenate([v, np.ones(v.shape[:2] + (1,), np.int64)], -1).astype(float)
        cellf = homog @ (M @ base_aff).T
        cell = np.rint(cellf[..., :3]).astype(int)
        inside = ((cell >= 0) & (cell < np.array(g4))).all(-1)
        val = np.zeros(g.shape[:2], np.float32)
        ci = np.where(inside[..., None], cell, 0)
        val[inside] = anom[ci[..., 0], ci[..., 1], ci[..., 2]][inside]
        painted = val > 0
        top = val == anom.max()
        same_grey = np.array_equal(got[~painted], g[~painted])
        top_ok = top.any() and np.array_equal(got[top], blend(g[top], (253, 231, 37), 128))
        check("anomaly on the %s, %s: %d of %d pixels painted where numpy places the cells, the largest value in "
              "the map's top colour" % (name, plane, painted.sum(), painted.size),
              painted.sum() > 0 and (~painted).sum() > 0 and same_grey and (got[painted] != g[painted]).any(-1).all() and top_ok,
              "grey kept %s, top %s" % (same_grey, top_ok))
# without affines the map is placed by window_offset (stage-4 cells of 16x32x32 voxels)
noaff = stream(os.path.join(T, "organ-noaff.ctv"), [("ct.organ/1", "c1", {"anomaly": anom},
               {"organ": "heart", "window_organ": "heart", "window_offset": [4, 8, 2], "empty": False})])
win_noaff = stream(os.path.join(T, "win-noaff.ctv"), [("ct.window/1", "c1", dict({"image": wimg, "mask": wmask},
                   **{"tok%d/heart" % s: toks[s] for s in toks}), {k: v for k, v in wmeta.items() if k != "affine"})])
a1 = view(["--bare", "-p", "coronal", "-n", "50", "-a", org, win])
a2 = view(["--bare", "-p", "coronal", "-n", "50", "-a", noaff, win_noaff, "--no-aspect"])
a3 = view(["--bare", "-p", "coronal", "-n", "50", "-a", org, win, "--no-aspect", "--no-orient"])
check("anomaly: without affines, window_offset places the map as the affines do", np.array_equal(a2, a3) and not np.array_equal(a1, a3))
got = view(["-p", "axial", "-n", "13", "-a", org, win], "bar.png")
bar = np.all(got == (253, 231, 37), -1)
check("anomaly: the scale bar shows the map's top colour right of the slice",
      bar[:, 8 + ref_geometry(wimg.shape, "axial", affine=WAFF, spacing=SP)[4].size:].sum() >= 12)  # margin 8, bar 12 wide

# 6. contact sheet and output patterns
pr = stream(os.path.join(T, "probs.ctv"), [("ct.probs/1", "c1", {"p_pos": np.array([0.25, np.nan]), "n_windows": np.array([1, 0], np.int32)},
             {"items": [{"organ": "heart", "abnormality": "effusion", "negative": "n", "positive": "p"},
                        {"organ": "lung", "abnormality": "nodule", "negative": "n", "positive": "p"}]})])
both = os.path.join(T, "both.ctv")
open(both, "wb").write(open(win, "rb").read() * 2)
sheet = view(["--sheet", "-a", org, "--probs", pr, "-r", "0", both], "sheet.png")
tinted = (sheet[..., 0] - sheet[..., 1] > 50) & (sheet[..., 0] == sheet[..., 2])   # magenta blended over grey
check("sheet: one picture with flag cells (%d magenta-tinted pixels) and the anomaly scale bar" % tinted.sum(),
      sheet.shape[1] > 4 * 64 and tinted.sum() > 100 and np.all(sheet == (253, 231, 37), -1).any())
pat = os.path.join(T, "many-%s-%d-%o.png")
reflib.run(["ct-view", "-p", "coronal", "-o", pat, both])
names = sorted(f for f in os.listdir(T) if f.startswith("many-"))
check("-o pattern: one file per record (%s)" % ", ".join(names), names == ["many-c1-0-heart.png", "many-c1-1-heart.png"])
reflib.done()
