"""The peers of bench/ct-resample.sh: what a user runs today to get fVLM's preprocessed case.

  python  nibabel load + torch interpolate (trilinear / legacy nearest) + numpy merge, window,
          crop, pad: tests/ref/fvlm_ref.py, the same code the parity tests trust
  scipy   the same with scipy.ndimage.zoom(order=1) for the image and order=0 for the labels
          (its corner-aligned grid differs from torch's: a speed peer, not a parity one)

Both write their result as one ct.case-like record with the documented Python writer, so the
work matches ct-resample's end to end: read, resample, normalise, crop, pad, write the stream.

usage: ct-resample-peer.py python|scipy CT SEG OUT THREADS
"""
import os, sys, time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "ref"))
mode, ct, seg, out, threads = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
os.environ["OMP_NUM_THREADS"] = str(threads)
import numpy as np
import nibabel as nib
import torch
import reflib
import fvlm_ref

torch.set_num_threads(threads)
t0 = time.time()
if mode == "python":
    image, mask, info = fvlm_ref.preprocess(ct, seg)
else:
    import scipy.ndimage as ndi
    img, aff = fvlm_ref.load_f32(ct)
    size = fvlm_ref.target_size(img.shape, aff)
    zoom = [s / n for s, n in zip(size, img.shape)]
    image = ndi.zoom(img, zoom, order=1)
    del img
    lab = np.asanyarray(nib.load(seg).dataobj)
    m = ndi.zoom(fvlm_ref.merge(lab).astype(np.uint8), zoom, order=0)
    del lab
    image = fvlm_ref.window(np.ascontiguousarray(image.transpose(2, 1, 0)))
    mask = np.ascontiguousarray(m.transpose(2, 1, 0))
    lo, hi = fvlm_ref.crop_box(mask)
    sl = tuple(slice(a, b) for a, b in zip(lo, hi))
    image, _ = fvlm_ref.pad(image[sl])
    mask, _ = fvlm_ref.pad(mask[sl])
organs = [n for n, _ in fvlm_ref.CT_RATE]
meta = {"organs": organs, "organ_voxels": [int(np.count_nonzero(mask == k + 1)) for k in range(len(organs))]}
with open(out, "wb") as f:
    reflib.write_record(f, "ct.case/1", os.path.basename(ct).split(".")[0],
                        {"image": image.astype(np.float32), "mask": mask.astype(np.uint8)}, meta)
print("%s: %.3f s inside Python" % (mode, time.time() - t0), file=sys.stderr)
