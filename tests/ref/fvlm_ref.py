"""The fVLM preprocessing (data/resize.py + data/preprocess.py, MONAI 1.3) re-implemented with
nibabel, numpy and torch only: the independent reference ct-resample is checked against
(tests/ref/test_resample.py) and the "Python path" peer of bench/ct-resample.sh.

Each step is the library call MONAI makes underneath:
  LoadImaged (NibabelReader)     np.asanyarray(nib.load(p).dataobj, order="C") -> float32, (x, y, z)
  merge (resize.py)              fused[mask == tsid] = organ_index + 1, on the input grid
  spacing                        |affine[i, i]| of nibabel's img.affine
  target size                    scale = [sx / 1, sy / 1, sz / 3] (spacing / target spacing), then
                                 [int(nx * scale[1]), int(ny * scale[0]), int(nz * scale[2])]  (x/y swapped)
  Resized(trilinear / nearest)   torch.nn.functional.interpolate(align_corners=False / legacy nearest)
  Transposed((0, 3, 2, 1))       (x, y, z) -> (z, y, x)
  ScaleIntensityRanged           (v - a_min) / (a_max - a_min), clamp to [0, 1]   (float32 torch ops)
  crop (preprocess.py)           [max(min - e, 0) : min(max + e, n)) per axis, e = (5, 20, 20)
  SpatialPadd                    symmetric zero pad: before = (t - s) // 2
No code is taken from MONAI or fVLM.
"""
import numpy as np
import nibabel as nib
import torch

CT_RATE = [("lung", [10, 11, 12, 13, 14]), ("heart", [51, 61]), ("esophagus", [15]), ("aorta", [52])]


def load_f32(path):
    """MONAI 1.3's NibabelReader: np.asanyarray(img.dataobj, order="C") (a C-ordered (x, y, z) copy,
    scaled by nibabel), then float32.  The layout matters to the last bit: torch's trilinear kernel
    rounds differently on C- and Fortran-ordered inputs (by one float ulp)."""
    img = nib.load(path)
    return np.asanyarray(img.dataobj, order="C").astype(np.float32), img.affine


def merge(label, organs=CT_RATE):
    """fused[label == tsid] = k + 1 for each class tsid of organ k (resize.py's loop), as one lookup."""
    lut = np.zeros(max(256, max(max(ids) for _, ids in organs) + 1), np.float32)
    for k, (_, ids) in enumerate(organs):
        lut[ids] = k + 1
    if label.dtype == np.uint8:
        return lut[label]
    out = np.zeros(label.shape, np.float32)
    hit = (label >= 0) & (label < len(lut)) & (label == np.floor(label))
    out[hit] = lut[label[hit].astype(np.int64)]
    return out


def target_size(shape_xyz, affine, spacing_zyx=(3.0, 1.0, 1.0), xy_swap=True):
    sx, sy, sz = (abs(float(affine[i, i])) for i in range(3))
    tz, ty, tx = spacing_zyx
    nx, ny, nz = shape_xyz
    scale = [sx / tx, sy / ty, sz / tz]
    if xy_swap:
        return [int(nx * scale[1]), int(ny * scale[0]), int(nz * scale[2])]
    return [int(nx * (sx / tx)), int(ny * (sy / ty)), int(nz * (sz / tz))]


def resize(vol_xyz, size, mode):
    t = torch.from_numpy(vol_xyz)[None, None]
    if mode == "trilinear":
        out = torch.nn.functional.interpolate(t, size=size, mode="trilinear", align_corners=False)
    else:
        out = torch.nn.functional.interpolate(t, size=size, mode="nearest")
    return out[0, 0].numpy()


def window(img, a_min=-1150.0, a_max=350.0):
    t = torch.from_numpy(img)
    t = (t - a_min) / (a_max - a_min)
    return torch.clamp(t, 0.0, 1.0).numpy()


def crop_box(mask, margin=(5, 20, 20)):
    nz = np.nonzero(mask)
    lo = [max(int(a.min()) - e, 0) for a, e in zip(nz, margin)]
    hi = [min(int(a.max()) + e, n) for a, e, n in zip(nz, margin, mask.shape)]
    return lo, hi


def pad(vol, size=(112, 256, 352)):
    w = [(max(t - s, 0) // 2, max(t - s, 0) - max(t - s, 0) // 2) for s, t in zip(vol.shape, size)]
    return np.pad(vol, w, mode="constant", constant_values=0), w


def preprocess(ct_path, seg_path=None, organs=CT_RATE, spacing=(3.0, 1.0, 1.0), xy_swap=True,
               hu=(-1150.0, 350.0), margin=(5, 20, 20), pad_to=(112, 256, 352)):
    """Returns (image f32 [D,H,W], mask u8 [D,H,W] or None, info dict)."""
    img, aff = load_f32(ct_path)
    size = target_size(img.shape, aff, spacing, xy_swap)
    image = resize(img, size, "trilinear")
    del img
    image = np.ascontiguousarray(image.transpose(2, 1, 0))
    image = window(image, *hu)
    info = {"resampled_shape": list(image.shape), "affine_in": aff}
    mask = None
    if seg_path is not None:
        lab = np.asanyarray(nib.load(seg_path).dataobj)      # stored type (uint8 from TotalSegmentator)
        m = resize(merge(lab, organs), size, "nearest")
        del lab
        mask = np.ascontiguousarray(m.transpose(2, 1, 0))
        lo, hi = crop_box(mask, margin)
        sl = tuple(slice(a, b) for a, b in zip(lo, hi))
        image, mask = image[sl], mask[sl]
        info.update(crop_lo=lo, crop_hi=hi)
        mask, _ = pad(mask, pad_to)
        mask = mask.astype(np.uint8)
    image, w = pad(image, pad_to)
    info["pad_before"] = [a for a, _ in w]
    info["pad_after"] = [b for _, b in w]
    return image, mask, info
